"""The SQLite backend: one WAL-mode file, one writer connection, a separate reader connection.

SQLite admits one writer at a time, so the group-commit writer task is the only one in this
process; it opens every transaction with BEGIN IMMEDIATE, taking the write lock up front so a
transaction never has to upgrade a read lock (the upgrade is what fails with "database is
locked" regardless of the busy timeout). Another process on the same file waits for the lock
for up to ``busy_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from uuid import UUID
from typing import Any, Literal

import aiosqlite
import msgspec
import structlog

from runlog.schema.ids import id_texts
from runlog.schema.sqlite_commit import BEFORE_COMMIT

from . import deferred_indexes, metrics, migrate
from .base import InlineProjection, RecordedEvent
from .errors import EventStoreError, InvalidEvent, SchemaError, StorageUnavailable, StoreClosed, WriteRejected
from .planning import AppendRequest, BatchPlan, plan_batch
from .tables import RowChanges, grouped_columns, persist
from .tx import SqliteTx
from .urls import DatabaseURL
from .writer import HEAD_WITH_LOOKS_AT_MOST, first_or_maybe, SQL_STREAM_VERSION, BatchingStore

log = structlog.get_logger("runlog.eventstore")

_COLUMNS = "position, stream_id, version, id, type, data, recorded_at"
SQL_HEAD = "SELECT coalesce(max(position), 0) FROM events"
SQL_HEAD_WITH = (
    "SELECT (SELECT coalesce(max(position), 0) FROM events), (SELECT min(position) FROM events "
    "WHERE position > ? AND position <= ? AND substr(type, 1, ?) = ?)"
)
# One index probe per stream (SQLite's max() optimisation); a GROUP BY over the streams would
# read every version of every stream, making appends slower as streams grow.
SQL_VERSIONS = (
    "SELECT s.value, coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = s.value), 0) "
    "FROM json_each(?) s"
)
SQL_STORED = f"SELECT {_COLUMNS} FROM events WHERE id IN (SELECT value FROM json_each(?))"
SQL_INSERT = f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
SQL_PAGE = f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?"
SQL_BY_ID = f"SELECT {_COLUMNS} FROM events WHERE id = ?"
SQL_STREAM_PAGE = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version > ? ORDER BY version LIMIT ?"
)
SQL_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runlog_migrations ("
    "revision INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)
SQL_APPLIED = "SELECT revision, name, applied_at FROM runlog_migrations ORDER BY revision"
SQL_CURRENT = "SELECT coalesce(max(revision), 0) FROM runlog_migrations"
SQL_RECORD = "INSERT INTO runlog_migrations (revision, name, applied_at) VALUES (?, ?, ?)"
SQL_UNRECORD = "DELETE FROM runlog_migrations WHERE revision = ?"


def _now_iso() -> str:
    """The recorded_at column's form: fixed-width ISO 8601 in UTC, so text order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _records(rows: list[tuple]) -> list[RecordedEvent]:
    """Row tuples to records in one C call: msgspec parses the id and timestamp columns."""
    return msgspec.convert(rows, list[RecordedEvent])


# SQLite's primary result codes (the low byte of the extended code sqlite3 reports), by what
# they mean for the caller: https://www.sqlite.org/rescode.html
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_REJECTED = {sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH}
_INVALID = {sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_RANGE}
_UNAVAILABLE = {
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_NOLFS,
    sqlite3.SQLITE_AUTH, sqlite3.SQLITE_PERM, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB,
}


def _classify(exc: sqlite3.Error, where: str) -> EventStoreError:
    """The store's error for one sqlite3 error, chosen by its result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary in _BUSY:
        return StorageUnavailable(f"the SQLite database at {where} stayed locked by another process: {exc}")
    if primary in _UNAVAILABLE:
        return StorageUnavailable(f"the SQLite database at {where} is unavailable: {exc}")
    if primary in _REJECTED:
        return WriteRejected(f"the SQLite database at {where} refused the write: {exc}")
    if primary in _INVALID:
        return InvalidEvent(f"SQLite cannot store this value: {exc}")
    if primary == sqlite3.SQLITE_ERROR and _names_a_missing_object(exc):
        return SchemaError(
            f"the SQLite database at {where} has no runlog schema ({exc}); run 'runlog database upgrade'"
        )
    # SQLITE_ERROR for anything else is a statement we got wrong: a bug, not an outage.
    return EventStoreError(f"SQLite error on {where}: {exc}")


def _names_a_missing_object(exc: sqlite3.Error) -> bool:
    # SQLITE_ERROR is SQLite's one code for every error in a statement; which object is missing
    # is only in the text. This is the one place a message is read, to tell a database that was
    # never migrated (SchemaError, with the command to run) from a bad statement.
    return str(exc).startswith(("no such table", "no such function", "no such column"))


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Map sqlite3's exceptions to the store's, once, for every operation."""
    try:
        yield
    except sqlite3.Error as exc:
        if isinstance(exc, sqlite3.ProgrammingError) and getattr(exc, "sqlite_errorcode", None) is None:
            # Raised by the sqlite3 module itself (closed connection, wrong bindings): ours.
            raise EventStoreError(f"SQLite error on {where}: {exc}") from exc
        raise _classify(exc, where) from exc
    except ValueError as exc:
        # aiosqlite's word for a connection that was already closed.
        if "no active connection" in str(exc):
            raise StoreClosed() from exc
        raise


def split_statements(script: str) -> list[str]:
    """Split a migration file into statements; sqlite3 runs one statement per execute()."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        not ln.strip() or ln.strip().startswith("--") for ln in buffer.splitlines()
    ):
        raise SchemaError(f"migration ends with an incomplete statement: {buffer.strip()[:60]!r}")
    return statements


WAL_AUTOCHECKPOINT = 10_000
"""Pages of WAL (4 KiB each: 40 MiB) after which a commit copies them back into the database
file, instead of SQLite's 1,000. A group commit dirties a page per row of every index keyed by a
random id (the events', the runs', their names'), and a hot page (the log's last leaf, a count
row's) is written to the WAL at every commit but copied into the file once per checkpoint: with
1,000 pages the server's writer thread spent 294-298 µs of CPU per transition in bench_server,
with 10,000 212-234 (two pairs, load 9-11). The WAL file keeps its largest size, up to about
40 MiB, until the database is closed by its last connection."""

CHECKPOINT_EVERY = 0.5
"""Seconds between the WAL checkpoints a store makes on a connection of its own (``_checkpoint_loop``),
so that the writer's commits seldom make one: a checkpoint copies pages into the file and syncs
it, and in the committing connection it held that commit, and every transition waiting on it, for
36-80 ms about every 2 s under bench_fanout's load (2026-12-07). The writer's own checkpoint at
WAL_AUTOCHECKPOINT pages stays, for when these fall behind."""

BULK_PRAGMAS = (
    "PRAGMA cache_size = -65536",
)
"""A bulk writer's connection settings (an import): 64 MiB of page cache instead of 2. An
import's inserts land on random pages of the events' id index (and the runs' and logs' indexes),
so with the default most of them missed the cache (with the WAL checkpointed at 1,000 pages,
writing 160,000 events took 1.6 s, 1.3 s with this and WAL_AUTOCHECKPOINT; a SQLite file alone,
bench-like rows). It is this connection's: a server on the same file keeps its own."""


async def connect(url: DatabaseURL, *, busy_timeout: float, bulk: bool = False) -> aiosqlite.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves), WAL, with a busy timeout;
    ``bulk``: with BULK_PRAGMAS."""
    where = url.masked()
    with translate_errors(where):
        if url.sqlite_path is not None and url.sqlite_uri is None:
            parent = os.path.dirname(os.path.abspath(url.sqlite_path))
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(f"cannot create the folder for {where}: {exc}") from exc
            conn = await aiosqlite.connect(url.sqlite_path, isolation_level=None, timeout=busy_timeout)
        elif url.sqlite_uri is not None:
            conn = await aiosqlite.connect(url.sqlite_uri, isolation_level=None, uri=True, timeout=busy_timeout)
        elif "file:" in url.raw:
            conn = await aiosqlite.connect(
                "file::memory:?cache=shared", isolation_level=None, uri=True, timeout=busy_timeout
            )
        else:
            conn = await aiosqlite.connect(":memory:", isolation_level=None, timeout=busy_timeout)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not url.in_memory:
                await conn.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode: a commit survives a process crash; only a power loss can
                # drop the last commits, and it never corrupts the file.
                await conn.execute("PRAGMA synchronous = NORMAL")
                await conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")
                if bulk:
                    for pragma in BULK_PRAGMAS:
                        await conn.execute(pragma)
        except BaseException:
            await conn.close()
            raise
        return conn


def _scan_connection(url: DatabaseURL) -> sqlite3.Connection:
    """A read-only connection used on the event loop's thread for short reads (pages of the log, its head).

    No busy timeout: a busy answer must not block the loop; the caller retries on a thread.
    """
    assert url.sqlite_path is not None or url.sqlite_uri is not None
    with translate_errors(url.masked()):
        if url.sqlite_uri is not None:
            conn = sqlite3.connect(url.sqlite_uri, isolation_level=None, uri=True, timeout=0)
        else:
            conn = sqlite3.connect(url.sqlite_path, isolation_level=None, timeout=0)
        conn.execute("PRAGMA query_only = 1")
    return conn


class SqliteMigrationConnection:
    """Runs migration steps on one connection, each step in one BEGIN IMMEDIATE transaction."""

    def __init__(self, conn: aiosqlite.Connection, where: str) -> None:
        self._conn = conn
        self._where = where

    async def applied(self) -> list[migrate.Applied]:
        with translate_errors(self._where):
            await self._conn.execute(SQL_MIGRATIONS_TABLE)
            rows = await self._conn.execute_fetchall(SQL_APPLIED)
        return [migrate.Applied(r, n, datetime.fromisoformat(at)) for r, n, at in rows]

    async def run_step(self, migration: migrate.Migration, direction: Literal["up", "down"]) -> None:
        conn = self._conn
        with translate_errors(self._where):
            await conn.execute(SQL_MIGRATIONS_TABLE)
            await conn.execute("BEGIN IMMEDIATE")
            try:
                (current,) = (await conn.execute_fetchall(SQL_CURRENT))[0]
                # Another process may have run this step while we waited for the lock.
                due = current == migration.revision - 1 if direction == "up" else current == migration.revision
                if due:
                    for statement in split_statements(getattr(migration, direction)):
                        await conn.execute(statement)
                    if direction == "up":
                        await conn.execute(SQL_RECORD, (migration.revision, migration.name, _now_iso()))
                    else:
                        await conn.execute(SQL_UNRECORD, (migration.revision,))
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise


@contextlib.asynccontextmanager
async def migration_connection(url: DatabaseURL, *, busy_timeout: float = 10.0) -> AsyncIterator[SqliteMigrationConnection]:
    conn = await connect(url, busy_timeout=busy_timeout)
    try:
        yield SqliteMigrationConnection(conn, url.masked())
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _immediate(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """A write transaction (taking the write lock at once), committed, or rolled back on any error."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        await conn.execute("COMMIT")
    except BaseException:
        await _roll_back(conn)
        raise


async def _roll_back(conn: aiosqlite.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error, ValueError):
            await conn.execute("ROLLBACK")


def _run_on_thread(db: sqlite3.Connection, writes: list[tuple[str, Any, bool]],
                   reads: Sequence[tuple[str, Any]]) -> list[list[Any]]:
    """On the connection's thread: the queued writes in order, then the reads, if any (the rows of each)."""
    for statement, params, many in writes:
        if many:
            db.executemany(statement, params)
        else:
            db.execute(statement, params)
    return [db.execute(sql, args).fetchall() for sql, args in reads]


class SqliteBatchTx(SqliteTx):
    """A write transaction on the writer's connection whose writes go to SQLite's thread
    together: rows written (executemany: it returns nothing) are queued, and sent with the
    next read, the next statement of its own (execute) or the COMMIT, in one hand-over to
    aiosqlite's thread. BEGIN IMMEDIATE goes with the first of them.

    Each statement through aiosqlite is a trip to its thread and back (a queue, a wake-up of
    the thread, a call_soon_threadsafe to wake the loop): a group commit of state changes was
    eight (BEGIN, three reads, the events, the runs, their counts, COMMIT), now two (BEGIN with
    the three reads, which ``fetch_each`` sends together; the writes with the COMMIT); an
    asynchronous projection's page (the store's write_transaction: its checkpoint's
    compare-and-set, its reads, its rows) takes a trip per read and one for its rows with the
    COMMIT. A statement of its own (execute: DDL, a swap, a pragma) is sent at once, so that
    its caller may time it (a rebuild's swap) or count on it having run. A write's error is
    raised at the read, statement or COMMIT it went with, still inside the transaction (rolled
    back) and the store's error translation; nothing catches one write's error to go on, here.
    The COMMIT goes with the schema's BEFORE_COMMIT statements (schema/sqlite_commit.py).
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        super().__init__(conn)
        self._writes: list[tuple[str, Any, bool]] = [("BEGIN IMMEDIATE", (), False)]

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        (rows,) = await self._send(((sql, args),))
        return rows

    async def fetch_each(self, *reads: tuple[str, tuple[Any, ...]]) -> list[list[Sequence[Any]]]:
        """The rows of each (sql, args) read, read in one trip to the thread, in order: for
        reads that do not depend on each other's answers."""
        return await self._send(reads)

    async def execute(self, sql: str, *args: Any) -> None:
        self._writes.append((sql, args, False))
        await self._send(())

    async def executemany(self, sql: str, args: Any) -> None:
        self._writes.append((sql, args if isinstance(args, (list, tuple)) else list(args), True))

    async def commit(self) -> None:
        self._writes.extend((statement, (), False) for statement in BEFORE_COMMIT)
        self._writes.append(("COMMIT", (), False))
        await self._send(())

    async def _send(self, reads: Sequence[tuple[str, Any]]) -> list[list[Any]]:
        writes, self._writes = self._writes, []
        conn = self._conn
        return await conn._execute(_run_on_thread, conn._conn, writes, reads)


@contextlib.asynccontextmanager
async def _batch(conn: aiosqlite.Connection) -> AsyncIterator[SqliteBatchTx]:
    """A write transaction in a SqliteBatchTx, committed with BEFORE_COMMIT (the database is at
    the migrations' head), or rolled back on any error: BEGIN IMMEDIATE goes with the first read
    or statement, or with the writes and the COMMIT."""
    tx = SqliteBatchTx(conn)
    try:
        yield tx
        await tx.commit()
    except BaseException:
        await _roll_back(conn)
        raise


ANALYZE_FROM_EVENTS = 10_000
"""A log this long gets planner statistics when a store opens it (see ``_analyze``)."""

async def _restore_indexes(conn: aiosqlite.Connection, where: str) -> None:
    """Make again the indexes a bulk writer set aside and did not make again (its process
    died), before migrating: see deferred_indexes."""
    async def fetch(sql: str, *args: Any) -> list[Any]:
        return list(await conn.execute_fetchall(sql, args))

    async def execute(sql: str, *args: Any) -> None:
        await conn.execute(sql, args)

    with translate_errors(where):
        if not await deferred_indexes.pending(fetch, "sqlite"):
            return
        async with _immediate(conn):
            await deferred_indexes.restore(fetch, execute, "sqlite")


async def _analyze(conn: aiosqlite.Connection) -> None:
    """Give SQLite's planner statistics (sqlite_stat1) once the database is large enough to
    need them: without them it drives a common tag's or pool's filter from the tag (all its
    runs, then a sort) where walking the sort's index stops after a page, and picks between
    the state and time indexes blind (README, "Run search"). A small database is left without:
    statistics taken of a few rows would mislead the planner once the tables grow, where none
    make it assume every index is selective. Taken when a migrating store (a server) opens it.
    """
    ((head,),) = await conn.execute_fetchall("SELECT COALESCE(MAX(position), 0) FROM events")
    if head < ANALYZE_FROM_EVENTS:
        return
    # Every row, not a sample (analysis_limit): a sampled ANALYZE caps each index's rows per
    # value at about its sample's size, so a pool's 150,000 runs looked like 1,000 and the
    # planner read them all to sort them. The full one took 3 s at a million runs.
    await conn.execute("PRAGMA analysis_limit = 0")
    await conn.execute("ANALYZE")


class SqliteStore(BatchingStore):
    def __init__(
        self,
        url: DatabaseURL,
        *,
        migrate: bool = True,
        busy_timeout: float = 10.0,
        projections: Sequence[InlineProjection] = (),
        bulk: bool = False,
    ) -> None:
        super().__init__(url.raw, projections)
        self._bulk = bulk
        self._db = url
        self._where = url.masked()
        self._migrate = migrate
        self._busy_timeout = busy_timeout
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader_conn: aiosqlite.Connection | None = None
        self._scan_conn: sqlite3.Connection | None = None
        self._checkpoint_conn: aiosqlite.Connection | None = None
        self._checkpointer: asyncio.Task[None] | None = None

    async def _open(self) -> None:
        self._writer_conn = await connect(self._db, busy_timeout=self._busy_timeout, bulk=self._bulk)
        try:
            migrations = SqliteMigrationConnection(self._writer_conn, self._where)
            if self._migrate:
                await _restore_indexes(self._writer_conn, self._where)
                await migrate.upgrade(migrations, "sqlite")
                await _analyze(self._writer_conn)
            else:
                await migrate.require_head(migrations, "sqlite", self._where)
            # An in-memory database lives in its one connection; a file gets a reader of its
            # own so reads never queue behind the writer's thread.
            if self._db.in_memory:
                self._reader_conn = self._writer_conn
            else:
                # The reader writes too, now and then: run logs (commands/run_logs.py).
                self._reader_conn = await connect(self._db, busy_timeout=self._busy_timeout, bulk=self._bulk)
                self._scan_conn = _scan_connection(self._db)
                if not self._bulk:
                    self._checkpoint_conn = await connect(self._db, busy_timeout=self._busy_timeout)
                    self._checkpointer = asyncio.create_task(
                        self._checkpoint_loop(self._checkpoint_conn), name="runlog-sqlite-checkpointer"
                    )
        except BaseException:
            await self._writer_conn.close()
            if self._reader_conn not in (None, self._writer_conn):
                await self._reader_conn.close()
            if self._scan_conn is not None:
                self._scan_conn.close()
            raise

    async def _checkpoint_loop(self, conn: aiosqlite.Connection) -> None:
        """Every CHECKPOINT_EVERY seconds, a PASSIVE checkpoint on this connection's own thread: it
        copies what the WAL holds into the file while the writer goes on committing (a checkpoint
        and a writer do not wait for each other in WAL mode; the copy stops at the oldest frame a
        reader still needs, and the next one goes on from there). Once the WAL is copied whole, the
        writer's next transaction starts it again from the beginning, so it seldom reaches the
        writer's own checkpoint at WAL_AUTOCHECKPOINT pages. A failure (the disk, the file gone)
        is logged once and tried again at the next turn; the writer's checkpoints remain."""
        failing = False
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            started = time.perf_counter()
            try:
                await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
            except (sqlite3.Error, ValueError) as exc:
                if not failing:
                    log.warning("wal_checkpoint_failed", database=self._where, error=str(exc))
                failing = True
                continue
            metrics.SQLITE_CHECKPOINTS.observe(time.perf_counter() - started)
            if failing:
                log.info("wal_checkpoint_recovered", database=self._where)
            failing = False

    async def _close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._checkpoint_conn is not None:
            await self._checkpoint_conn.close()
            self._checkpoint_conn = None
        if self._scan_conn is not None:
            self._scan_conn.close()
            self._scan_conn = None
        for conn in {id(c): c for c in (self._reader_conn, self._writer_conn) if c is not None}.values():
            await conn.close()

    async def _write_batch(self, requests: list[AppendRequest]) -> BatchPlan:
        conn = self._writer_conn
        assert conn is not None
        with translate_errors(self._where):
            async with _batch(conn) as tx:
                streams = msgspec.json.encode(sorted({r.stream_id for r in requests})).decode()
                # The ids as JSON text straight from the UUIDs, in C (str() of each was a
                # tenth of an import's appends).
                ids = msgspec.json.encode([ev.id for r in requests for ev in r.events]).decode()
                # The three reads in one trip to the thread (with the BEGIN): none needs another's answer.
                ((head,),), version_rows, stored_rows = await tx.fetch_each(
                    (SQL_HEAD, ()), (SQL_VERSIONS, (streams,)), (SQL_STORED, (ids,))
                )
                self._found_head(head)
                versions = dict(version_rows)
                stored = {r.id: r for r in _records(stored_rows)}
                plan = plan_batch(requests, head, versions, stored)
                if plan.rows:
                    now = _now_iso()
                    recorded_at = datetime.fromisoformat(now)
                    params = []
                    for row, event_id in zip(plan.rows, id_texts([row.event.id for row in plan.rows]), strict=True):
                        row.recorded_at = recorded_at
                        ev = row.event
                        params.append((row.position, row.stream_id, row.version, event_id, ev.type, ev.data, now))
                    await tx.executemany(SQL_INSERT, params)
                    await self._apply_inline(tx, plan)
        return plan

    async def _write_tables(self, changes: RowChanges) -> None:
        conn = self._writer_conn
        assert conn is not None
        with translate_errors(self._where):
            async with _batch(conn) as tx:
                await persist(tx, changes)

    async def _run_job(self, fn, *, lock_appends: bool):  # type: ignore[no-untyped-def]
        # BEGIN IMMEDIATE takes the database's one write lock: appends wait, whatever lock_appends
        # says. It goes to the thread with the job's first read or statement (SqliteBatchTx).
        conn = self._writer_conn
        assert conn is not None
        with translate_errors(self._where):
            async with _batch(conn) as tx:
                return await fn(tx)

    async def _table_columns(self, tx: SqliteTx) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        rows = await tx.fetch(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p "
            "WHERE m.type = 'table' ORDER BY m.name, p.cid"
        )
        return grouped_columns(rows)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[SqliteTx]:
        self._check_usable()
        with translate_errors(self._where):
            yield SqliteTx(self._reader_conn)

    async def _read_page(self, after: int, limit: int) -> list[RecordedEvent]:
        """One page of the log, read on the event loop's thread when SQLite lets it.

        A page is ~1 ms of CPU either way, but handing it to the reader's thread and back
        costs as much again (thread wake-ups, and rows built on one core and read on the
        other): replaying the log ran at 350,000 events/s through the thread and over
        500,000 without it. In WAL mode a read never waits for the writer; if SQLite still
        answers busy for a moment (a checkpoint, recovery after a crash), this page goes
        through the reader thread, which waits with the busy timeout instead of the loop.
        """
        return _records(await self._fetch_here(SQL_PAGE, (after, limit)))

    async def _fetch_here(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """A short read on the event loop's thread (the scan connection), or through the reader's
        thread when there is no scan connection (in memory) or SQLite answers busy."""
        self._check_usable()
        assert self._reader_conn is not None
        if self._scan_conn is not None:
            with translate_errors(self._where):
                try:
                    return self._scan_conn.execute(sql, params).fetchall()
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                        raise
        with translate_errors(self._where):
            return list(await self._reader_conn.execute_fetchall(sql, params))

    def _pages_read_here(self) -> bool:
        return self._scan_conn is not None

    async def _read_stream_page(self, stream_id: str, after_version: int, limit: int) -> list[RecordedEvent]:
        self._check_usable()
        assert self._reader_conn is not None
        with translate_errors(self._where):
            rows = await self._reader_conn.execute_fetchall(SQL_STREAM_PAGE, (stream_id, after_version, limit))
        return _records(rows)

    async def read_event(self, event_id: UUID) -> RecordedEvent | None:
        self._check_usable()
        assert self._reader_conn is not None
        with translate_errors(self._where):
            rows = await self._reader_conn.execute_fetchall(SQL_BY_ID, (str(event_id),))
        return _records(rows)[0] if rows else None

    async def head(self) -> int:
        """Read on the loop's thread (``_fetch_here``): a followed log's every wake-up asks for
        it (projections/catchup.py), and the reader thread's round trip cost more than the read."""
        ((head,),) = await self._fetch_here(SQL_HEAD)
        return head

    async def head_with(self, after: int, type_prefix: str) -> tuple[int, int | None]:
        """See EventStore.head_with; read on the loop's thread, like ``head``."""
        ((head, first),) = await self._fetch_here(
            SQL_HEAD_WITH, (after, after + HEAD_WITH_LOOKS_AT_MOST, len(type_prefix), type_prefix)
        )
        return head, first_or_maybe(after, head, first, HEAD_WITH_LOOKS_AT_MOST)

    async def stream_version(self, stream_id: str) -> int:
        """Read on the loop's thread too, like ``head``: the notifier reads the ``blocks``
        stream's version before every send (notifier/sending.py), a one-row index read that the
        reader thread's round trip cost more than."""
        ((version,),) = await self._fetch_here(SQL_STREAM_VERSION, (stream_id,))
        return int(version)


__all__ = ["SqliteStore", "migration_connection"]
