"""Where the server's CPU per transition goes, without HTTP and without the machine's other load.

    python -m bench.bench_cpu_split [--backend sqlite|postgres|both] [--runs 2000] [--clients 64]
                                    [--rounds 3] [--threads] [--hot] [--admin-url URL]

In this one process: C clients each create flow runs and take them Pending -> Running ->
Completed through the commands (commands/flow_runs.create and set_state, the group commit and
the inline projections included, as bench_server's clients do over HTTP); then each
asynchronous projection (registry.async_projections) folds the log they wrote from its
checkpoint, as its service does, with its fold (``changes``) and its write timed apart. Every
figure is CPU time of this process (all its threads: the SQLite driver's thread is where SQLite
works) divided by the transitions made, the best of --rounds rounds, each on a fresh database.
On PostgreSQL, ``postgres backends`` is the CPU time of the database's own processes serving
the bench's database (pg_stat_activity; a backend that started during the commands counted
whole) over the commands' window, per transition: not in the total, which is this process's.

``--threads`` splits the commands' CPU per transition by the thread it ran on (Linux's
/proc/self/task/*/schedstat, else psutil's threads()): the event loop's (``main``), and on
SQLite each aiosqlite connection's driver thread (``sqlite writer``, where the group commit's
statements and the inline projections' SQL run; ``sqlite reader``), the rest as ``other``. The
line shows the round whose commands figure was the best; its parts add up to about that
figure. (PostgreSQL's driver works on the main thread: there it is all ``main``.)

``--hot`` (PostgreSQL) also prints, per table written on the transition path (flow_runs,
flow_run_counts and its deltas where a checkout has them, run_history_cells, events),
pg_stat_user_tables' n_tup_ins, n_tup_upd, n_tup_hot_upd (and their ratio) and n_dead_tup, read after the round's store has closed (a backend sends its
table statistics when it ends, so none is missing): they cover the whole round, warm-up and
asynchronous projections included, per transition of the round, for the round with the best
commands figure.

CPU time is what a loaded machine changes least, so this compares two checkouts on a shared
machine: run it with each checkout's own interpreter (`/path/to/checkout/.venv/bin/python -m
bench.bench_cpu_split` from that checkout; a checkout that lacks this file can run this file
by its path). A projection that a checkout does not have is not listed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid

import asyncpg
import psutil

from runlog.commands import flow_runs, flows
from runlog.commands.integrity import KnownIds
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import open_store
from runlog.projections.cache import ViewCache
from runlog.projections.checkpoints import CHECKPOINTS
from runlog.projections.registry import async_projections, inline_projections
from runlog.schema.events import StateType

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WARMUP_RUNS_PER_CLIENT = 10


SQL_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = $1"
HOT_TABLES = ("flow_runs", "flow_run_counts", "flow_run_count_deltas", "run_history_cells", "events")
SQL_HOT = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables "
    "WHERE relname = ANY($1::text[])"
)


async def table_stats(url: str, total: int) -> dict[str, float]:
    """pg_stat_user_tables' row counts of HOT_TABLES in the database at ``url``, as ``hot TABLE
    COLUMN`` figures per transition (``total``), and each table's HOT share of its updates."""
    figures: dict[str, float] = {}
    conn = await asyncpg.connect(url)
    try:
        # The statistics of the backends that just ended reach the shared counters when each
        # exits; this one's own reads are of no interest. Poll until they stop moving.
        previous = None
        for _ in range(20):
            rows = await conn.fetch(SQL_HOT, list(HOT_TABLES))
            if rows == previous:
                break
            previous = rows
            await asyncio.sleep(0.2)
            await conn.execute("SELECT pg_stat_clear_snapshot()")
    finally:
        await conn.close()
    for relname, inserted, updated, hot, dead in sorted(previous or ()):
        figures[f"hot {relname} ins"] = inserted / total
        figures[f"hot {relname} upd"] = updated / total
        figures[f"hot {relname} hot_upd"] = hot / total
        figures[f"hot {relname} hot%"] = 100.0 * hot / updated if updated else 0.0
        figures[f"hot {relname} dead"] = dead / total
    return figures


async def backend_cpu(admin: asyncpg.Connection | None, name: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL process serving database ``name`` (none on SQLite)."""
    if admin is None:
        return {}
    seconds = {}
    for (pid,) in await admin.fetch(SQL_BACKENDS, name):
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
    return seconds


def thread_cpu() -> dict[int, float]:
    """CPU seconds so far of each thread of this process, by its native id: from
    /proc/self/task/TID/schedstat in nanoseconds where Linux has it, else psutil's threads() (in
    clock ticks, 10 ms, which a small round's split would show)."""
    seconds = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/self/task/{tid}/schedstat") as stat:
                seconds[int(tid)] = int(stat.read().split()[0]) / 1e9
    if seconds:
        return seconds
    return {thread.id: thread.user_time + thread.system_time for thread in psutil.Process().threads()}


def thread_roles(store: object) -> dict[int, str]:
    """The native ids of the threads whose role is known: the event loop's, and on SQLite each
    connection's aiosqlite thread (read from the store's and aiosqlite's private attributes: a
    bench may look inside; a checkout without them shows them as ``other``)."""
    roles = {threading.get_native_id(): "main"}
    for attribute, role in (("_writer_conn", "sqlite writer"), ("_reader_conn", "sqlite reader")):
        thread = getattr(getattr(store, attribute, None), "_thread", None)
        if thread is not None and thread.native_id is not None:
            roles.setdefault(thread.native_id, role)  # in memory the reader is the writer's connection
    return roles


async def one_round(backend: str, runs: int, clients: int, admin_url: str, hot: bool = False) -> dict[str, float]:
    """µs of CPU per transition: the commands, then each projection's fold and write; the
    commands' split by thread as ``thread ROLE`` parts; with ``hot`` (PostgreSQL), the tables'
    row statistics as ``hot ...`` parts (``table_stats``)."""
    name = None
    admin = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-cpu-')}/runlog.db"
    else:
        name = "bench_cpu_" + uuid.uuid4().hex[:12]
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + "/" + name
    figures: dict[str, float] = {}
    cache = ViewCache()
    store = open_store(url, migrate=True, projections=inline_projections(cache))
    try:
        await store.open()
        known = KnownIds()
        flow_ids = [(await flows.register(store, f"bench-flow-{i}"))[0].id for i in range(clients)]

        async def client(index: int, count: int) -> None:
            for _ in range(count):
                view, _ = await flow_runs.create(
                    store, flow_runs.NewFlowRun(flow_id=flow_ids[index], state=ProposedState(type=StateType.PENDING)),
                    cache=cache, known_flows=known,
                )
                await flow_runs.set_state(store, view.id, ProposedState(type=StateType.RUNNING), cache=cache)
                await flow_runs.set_state(store, view.id, ProposedState(type=StateType.COMPLETED), cache=cache)

        await asyncio.gather(*(client(i, WARMUP_RUNS_PER_CLIENT) for i in range(clients)))
        per_client = max(1, runs // clients)
        backends = await backend_cpu(admin, name)
        threads = thread_cpu()
        started = time.process_time()
        await asyncio.gather(*(client(i, per_client) for i in range(clients)))
        transitions = 2 * per_client * clients  # Running and Completed, as bench_server counts
        figures["commands"] = (time.process_time() - started) / transitions * 1e6
        roles = thread_roles(store)
        for tid, seconds in thread_cpu().items():
            part = f"thread {roles.get(tid, 'other')}"
            figures[part] = figures.get(part, 0.0) + (seconds - threads.get(tid, 0.0)) / transitions * 1e6
        if admin is not None:
            used = sum(cpu - backends.get(pid, 0.0) for pid, cpu in (await backend_cpu(admin, name)).items())
            figures["postgres backends"] = used / transitions * 1e6
        # Every transition of the log, warm-up included, is folded by the projections.
        total = transitions + 2 * WARMUP_RUNS_PER_CLIENT * clients
        for projection in async_projections(store):
            fold = write = 0.0
            after = 0
            while True:
                page = [record async for record in store.read_all(after=after, limit=500)]
                if not page:
                    break
                started = time.process_time()
                changes = await projection.changes(page)
                fold += time.process_time() - started
                after = page[-1].position
                changes.upsert(CHECKPOINTS, (projection.name, after))
                started = time.process_time()
                await store.write_tables(changes)
                write += time.process_time() - started
            figures[f"{projection.name} fold"] = fold / total * 1e6
            figures[f"{projection.name} write"] = write / total * 1e6
    finally:
        with contextlib.suppress(Exception):
            await store.aclose()
        if admin is not None and hot:
            with contextlib.suppress(Exception):
                figures.update(await table_stats(url, total))
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return figures


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=2000, help="flow runs measured per round (2000)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="fresh databases; the best of them is shown (3)")
    parser.add_argument("--threads", action="store_true",
                        help="also the commands' CPU split by thread: the event loop's, SQLite's driver threads")
    parser.add_argument("--hot", action="store_true",
                        help="PostgreSQL: also pg_stat_user_tables' updates, HOT updates and dead rows "
                             "of the tables written per transition, over the whole round")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(f"CPU per transition, µs (best of {args.rounds}; {args.runs:,} runs by {args.clients} clients), "
          f"python {sys.executable}")
    for backend in backends:
        best: dict[str, float] = {}
        split: dict[str, float] = {}  # the threads of the round with the best commands figure
        for _ in range(args.rounds):
            figures = await one_round(backend, args.runs, args.clients, args.admin_url, args.hot)
            if figures["commands"] <= best.get("commands", figures["commands"]):
                split = {part: value for part, value in figures.items() if part.startswith(("thread ", "hot "))}
            for part, value in figures.items():
                if not part.startswith(("thread ", "hot ")):
                    best[part] = min(value, best.get(part, value))
        mine = {part: value for part, value in best.items() if part != "postgres backends"}
        print(f"| {backend} | " + " | ".join(f"{part} {value:.0f}" for part, value in best.items())
              + f" | total {sum(mine.values()):.0f} (this process) |")
        if args.threads:
            print(f"| {backend} commands by thread | "
                  + " | ".join(f"{part.removeprefix('thread ')} {value:.0f}" for part, value in sorted(split.items()))
                  + f" | of commands {best['commands']:.0f} |")
        hot = {part.removeprefix("hot "): value for part, value in split.items() if part.startswith("hot ")}
        if hot:
            print(f"| {backend} table rows per transition (whole round) | " + " | ".join(
                f"{part} {value:.0f}" if part.endswith("%") else f"{part} {value:.2f}" for part, value in hot.items()
            ) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
