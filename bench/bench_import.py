"""Import benchmark: how many Prefect flow runs (with their states, task runs and logs) per second
`runlog import prefect` appends, into either of runlog's backends.

    python -m bench.bench_import [--runs N] [--tasks-per-run K] [--logs-per-run L]
                                 [--backend sqlite|postgres|both] [--source PATH] [--postgres-url URL]
                                 [--floor]

The source is a Prefect 3.8.8 SQLite database: its schema made by Prefect's own migrations
(`prefect server database reset -y`, from the Prefect found beside this Python or at
RUNLOG_BENCH_PREFECT, /work/prefect-venv/bin/prefect by default), then filled directly with
--runs flow runs of one flow (default 20,000), each Pending, Running, Completed, with K task
runs (default 1) of three states each and L log lines (default 3). --source keeps the file to
use it again (it is made only when missing). The import runs through the same Importer the
CLI uses, into a new runlog database on each backend, and prints runs/s, runs per CPU-second of
the import's process, events/s and the load average; into PostgreSQL also the CPU of its server
processes serving the import's database (read from /proc: a server on this machine).

--floor (SQLite): after the import, SQLite's own cost of storing what it stored. Every row the
import left in runlog's tables (the events, the log lines, the views) is read out and written
again through the sqlite3 module, with no runlog code, into a new database migrated the same
way and opened with the import's connection settings, in transactions of GROUP_EVENTS events'
rows as the import's appends are: the CPU it takes is a floor under any import into today's
schema from Python, before a single source row is read or converted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from bench.bench_store import asyncpg_dsn, postgres_databases
from runlog.commands.import_prefect import import_database, open_source
from runlog.commands.import_prefect.importer import GROUP_EVENTS
from runlog.eventstore import open_store
from runlog.eventstore.sqlite import BULK_PRAGMAS

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE = datetime(2026, 1, 1)


def _prefect() -> str:
    beside = Path(sys.executable).with_name("prefect")
    return os.environ.get("RUNLOG_BENCH_PREFECT") or (str(beside) if beside.exists() else "/work/prefect-venv/bin/prefect")


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def make_source(path: Path, runs: int, tasks_per_run: int, logs_per_run: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
            "PREFECT_HOME": home, "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{path}",
        }
        subprocess.run([_prefect(), "server", "database", "reset", "-y"], env=env, check=True, capture_output=True)
    db = sqlite3.connect(path)
    flow_id = str(uuid.uuid4())
    db.execute("INSERT INTO flow (id, created, updated, name, tags) VALUES (?, ?, ?, 'bench', '[]')",
               (flow_id, _t(BASE), _t(BASE)))
    details = lambda run, task=None: json.dumps({"flow_run_id": run, "task_run_id": task})  # noqa: E731
    for start in range(0, runs, 5000):
        run_rows, run_states, task_rows, task_states, logs = [], [], [], [], []
        for i in range(start, min(start + 5000, runs)):
            run_id, at = str(uuid.uuid4()), BASE + timedelta(seconds=i)
            states = [(str(uuid.uuid4()), kind, at + timedelta(seconds=n)) for n, kind in
                      enumerate(("PENDING", "RUNNING", "COMPLETED"))]
            for state_id, kind, when in states:
                run_states.append((state_id, _t(when), _t(when), kind, _t(when), kind.title(), details(run_id), run_id))
            last = states[-1]
            run_rows.append((
                run_id, _t(at), _t(last[2]), f"run-{i}", "COMPLETED", 1, _t(at), _t(at + timedelta(seconds=1)),
                _t(last[2]), _t(BASE.replace(year=1970, month=1, day=1) + timedelta(seconds=1)), flow_id, last[0],
                "Completed", _t(last[2]), '{"max_retries": 0}', "[]", "{}",
            ))
            for k in range(tasks_per_run):
                task_id = str(uuid.uuid4())
                t_states = [(str(uuid.uuid4()), kind, at + timedelta(seconds=1, milliseconds=100 * n + k)) for n, kind in
                            enumerate(("PENDING", "RUNNING", "COMPLETED"))]
                for state_id, kind, when in t_states:
                    task_states.append((state_id, _t(when), _t(when), kind, _t(when), kind.title(),
                                        details(run_id, task_id), task_id))
                task_rows.append((
                    task_id, _t(at), _t(at), f"step-{k}", "COMPLETED", 1, f"step-{k}", str(i), run_id,
                    t_states[-1][0], "Completed", _t(t_states[-1][2]), 1,
                ))
            for n in range(logs_per_run):
                logs.append((str(uuid.uuid4()), _t(at), _t(at), "prefect.flow_runs", 20, run_id,
                             f"log line {n} of run {i}", _t(at + timedelta(milliseconds=n))))
        db.executemany(
            "INSERT INTO flow_run (id, created, updated, name, state_type, run_count, expected_start_time, start_time,"
            " end_time, total_run_time, flow_id, state_id, state_name, state_timestamp, empirical_policy, tags, labels)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run_rows)
        db.executemany(
            "INSERT INTO flow_run_state (id, created, updated, type, timestamp, name, state_details, flow_run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", run_states)
        db.executemany(
            "INSERT INTO task_run (id, created, updated, name, state_type, run_count, task_key, dynamic_key,"
            " flow_run_id, state_id, state_name, state_timestamp, flow_run_run_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", task_rows)
        db.executemany(
            "INSERT INTO task_run_state (id, created, updated, type, timestamp, name, state_details, task_run_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", task_states)
        db.executemany(
            "INSERT INTO log (id, created, updated, name, level, flow_run_id, message, timestamp)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", logs)
        db.commit()
    db.close()


class BackendsCPU:
    """The CPU seconds of the PostgreSQL server processes serving one database, as the kernel
    counts them (/proc/PID/stat: the server on this machine): its connections' pids are looked
    up every POLL seconds and each one's CPU is the last seen (at most POLL of a connection's
    last work is missed). Zero where /proc cannot be read."""

    POLL = 0.2

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url, self.database = admin_url, database
        self.seen: dict[int, float] = {}

    async def __aenter__(self) -> BackendsCPU:
        self._admin = await asyncpg.connect(asyncpg_dsn(self.admin_url))
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._admin.close()

    async def _watch(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while True:
            for (pid,) in await self._admin.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database):
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.seen[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            await asyncio.sleep(self.POLL)

    @property
    def cpu(self) -> float:
        return sum(self.seen.values())


async def import_into(source_url: str, target_url: str, admin_url: str | None = None,
                      ) -> tuple[float, float, dict[str, int], int, float | None]:
    """The import as `runlog import prefect` makes it into an empty database: its wall-clock
    seconds, this process's CPU seconds, the rows imported per table, the events in the log and
    (``admin_url``: a PostgreSQL target) the CPU seconds of PostgreSQL's processes serving it."""
    backends = None
    async with await open_source(source_url) as source, contextlib.AsyncExitStack() as stack:
        if admin_url is not None:
            backends = await stack.enter_async_context(
                BackendsCPU(admin_url, target_url.rsplit("/", 1)[1].split("?")[0]))
        started, cpu = time.perf_counter(), time.process_time()
        report = await import_database(source, target_url)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    async with open_store(target_url) as store:
        head = await store.head()
    return (elapsed, cpu, {name: table.imported for name, table in report.tables.items()}, head,
            None if backends is None else backends.cpu)


async def import_into_postgres(source_url: str, admin_url: str,
                               ) -> tuple[float, float, dict[str, int], int, float | None]:
    async with postgres_databases(admin_url, "import") as (url,):
        return await import_into(source_url, url, admin_url)


async def _migrated(path: Path) -> None:
    async with open_store(f"sqlite:///{path}"):
        pass


def floor(imported: Path, target: Path, *, deferred: bool = False, synchronous: str = "NORMAL") -> tuple[float, float, int]:
    """Store the rows of the runlog database ``imported`` again into a new one at ``target``
    through sqlite3 alone: wall seconds, this process's CPU seconds, rows written.
    ``deferred``: the secondary indexes that are not unique (none of them checks anything) dropped
    first and made again at the end, their making counted; ``synchronous``: that pragma's value
    while writing (a checkpoint with an fsync at the end is counted)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    asyncio.run(_migrated(target))
    source = sqlite3.connect(imported)
    # A virtual table (FTS5's name trigrams, migration 0035) and its shadow tables are filled by
    # triggers on the tables they index: they are written as those are, not copied.
    virtual = [name for (name,) in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
    tables = [name for (name,) in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        " AND name NOT IN ('runlog_migrations')")
        if not any(name == v or name.startswith(f"{v}_") for v in virtual)]
    # What the migrations wrote (projection versions, the server's key...) is not the import's.
    db = sqlite3.connect(target, isolation_level=None)
    for table in tables:
        db.execute(f"DELETE FROM {table}")
    db.close()
    contents = {}
    for table in tables:
        rows = source.execute(f"SELECT * FROM {table} ORDER BY rowid" if _has_rowid(source, table)
                              else f"SELECT * FROM {table}").fetchall()
        if rows:
            contents[table] = rows
    source.close()
    events = len(contents.get("events", ()))
    batches = max(1, -(-events // GROUP_EVENTS))
    db = sqlite3.connect(target, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    for pragma in BULK_PRAGMAS:
        db.execute(pragma)
    started, cpu = time.perf_counter(), time.process_time()
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND sql NOT LIKE 'CREATE UNIQUE%'").fetchall() if deferred else []
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    for batch in range(batches):  # each table's rows spread over the batches as the appends spread them
        db.execute("BEGIN IMMEDIATE")
        for table, rows in contents.items():
            size = -(-len(rows) // batches)
            part = rows[batch * size:(batch + 1) * size]
            if part:
                db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(part[0]))})", part)
        db.execute("COMMIT")
    for _, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA wal_checkpoint(FULL)")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return elapsed, cpu, sum(len(rows) for rows in contents.values())


def _has_rowid(db: sqlite3.Connection, table: str) -> bool:
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
    return "WITHOUT ROWID" not in sql.upper()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--tasks-per-run", type=int, default=1)
    parser.add_argument("--logs-per-run", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--source", type=Path, default=None)
    parser.add_argument("--postgres-url", default=os.environ.get("RUNLOG_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL))
    parser.add_argument("--floor", action="store_true",
                        help="after the SQLite import, the same rows stored through sqlite3 alone (see above)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        source = args.source or workdir / "prefect.db"
        if not source.exists():
            started = time.perf_counter()
            make_source(source, args.runs, args.tasks_per_run, args.logs_per_run)
            print(f"source: {args.runs} runs, {args.tasks_per_run} task run(s) and {args.logs_per_run} log line(s) "
                  f"each, made in {time.perf_counter() - started:.1f}s ({source})")
        source_url = f"sqlite+aiosqlite:///{source}"
        backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
        for backend in backends:
            if backend == "sqlite":
                target = workdir / "runlog.db"
                elapsed, cpu, imported, head, server = asyncio.run(import_into(source_url, f"sqlite:///{target}"))
            else:
                elapsed, cpu, imported, head, server = asyncio.run(import_into_postgres(source_url, args.postgres_url))
            runs = imported.get("flow_run", 0)
            print(f"{backend:8} imported {runs} runs, {imported.get('task_run', 0)} task runs, "
                  f"{imported.get('log', 0)} log lines, {head} events in {elapsed:.1f}s ({cpu:.1f} CPU s): "
                  f"{runs / elapsed:,.0f} runs/s, {runs / cpu:,.0f} runs per CPU-second, "
                  f"{head / elapsed:,.0f} events/s (load {os.getloadavg()[0]:.1f})")
            if server is not None:
                print(f"{backend:8} PostgreSQL's processes {server:.1f} CPU s; with the import's: "
                      f"{runs / (cpu + server):,.0f} runs per CPU-second")
            if backend == "sqlite" and args.floor:
                for what, options in (("as the import", {}), ("indexes deferred", {"deferred": True}),
                                      ("synchronous=OFF", {"synchronous": "OFF"}),
                                      ("both", {"deferred": True, "synchronous": "OFF"})):
                    elapsed, cpu, rows = floor(workdir / "runlog.db", workdir / "floor.db", **options)
                    print(f"floor    the same {rows} rows through sqlite3 alone, {what}, in {elapsed:.1f}s ({cpu:.2f} CPU s): "
                          f"{runs / cpu:,.0f} runs per CPU-second (load {os.getloadavg()[0]:.1f})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
