"""The PostgreSQL backend: group commit under a transaction-scoped advisory lock.

Usually a batch is one autocommit statement: runlog_append takes the append lock, checks the
head position the writer guessed and inserts the rows planned on its guesses, and the inline
projections' writes run in the same statement. Otherwise it is one READ COMMITTED transaction:
BEGIN; runlog_append reporting the head, the stream versions and the already-stored ids under
the lock; runlog_insert (inserts the planned rows and NOTIFYs once); the projections; COMMIT.
Because every writer in every process takes the same lock before it reads the head, positions
are assigned in commit order and a reader tailing by position never skips a row that commits
late (DESIGN.md, "Gap-free order").

The writer keeps one connection of its own, so no pool reset runs after every batch; reads go
through a small pool; wake-ups arrive on a third, dedicated LISTEN connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import structlog

from . import deferred_indexes, metrics, migrate
from .base import InlineProjection, RecordedEvent
from .errors import (
    EventStoreError,
    InvalidEvent,
    SchemaError,
    StorageMisconfigured,
    StorageUnavailable,
    WriteRejected,
)
from .planning import AppendRequest, BatchPlan, Row, plan_batch
from .tables import RowChanges, Table, grouped_columns, persist
from .tx import PostgresTx
from .urls import DatabaseURL
from .writer import HEAD_WITH_LOOKS_AT_MOST, first_or_maybe, BatchingStore

log = structlog.get_logger("runlog.eventstore")
_fromisoformat = datetime.fromisoformat

CHANNEL = "runlog_events"
APPEND_LOCK = 125762588864359  # 'runlog' in hex: what runlog_append takes (migration 0001)
MIGRATION_LOCK = 125762588864360  # one above the append lock ('runlog' in hex)
# Service leadership locks use the two-key form of the advisory lock functions: this class id
# (0x726c, 'rl') and hashtext(service name). A two-key lock never equals a one-key lock such as
# the append and migration locks above, so the spaces cannot collide.
LEADER_LOCK_CLASS = 0x726C
COMPACT_SECONDS = 1.0
"""How long after a fold of the counts' deltas into their rows the next may start (``_compact_soon``)."""
LIVENESS_SECONDS = 1.0
"""A leader's session is checked with a round trip at most this often (PostgresLeadership)."""

SQL_INSERT = "SELECT * FROM runlog_insert($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::bytea[])"
SQL_APPEND_CALL = (
    "runlog_append($1::bigint, $2::text[], $3::bigint[], $4::uuid[], "
    "$5::bigint[], $6::text[], $7::bigint[], $8::uuid[], $9::text[], $10::bytea[])"
)
SQL_APPEND_PARAMS = 10
SQL_APPEND = f"SELECT * FROM {SQL_APPEND_CALL}"
# runlog_append's row kinds ("char" arrives as bytes or str depending on the codec).
_OK = (b"k", "k")
_HEAD = (b"h", "h")
_STREAM = (b"s", "s")
# recorded_at is read as text: asyncpg builds a timestamptz through timedelta arithmetic,
# which cost a third of a page read (0.6 of 1.9 us per event); datetime.fromisoformat on
# the ISO text is a few times cheaper. The session settings below fix the text's form.
_COLUMNS = "position, stream_id, version, id, type, data, recorded_at::text"
SQL_HEAD = "SELECT coalesce(max(position), 0) FROM events"
SQL_HEAD_WITH = (
    "SELECT (SELECT coalesce(max(position), 0) FROM events), (SELECT min(position) FROM events "
    "WHERE position > $1 AND position <= $2 AND substr(type, 1, $3) = $4)"
)
SQL_PAGE = f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
SQL_BY_ID = f"SELECT {_COLUMNS} FROM events WHERE id = $1"
SQL_STREAM_PAGE = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3"
)
SQL_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runlog_migrations ("
    "revision integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
SQL_APPLIED = "SELECT revision, name, applied_at FROM runlog_migrations ORDER BY revision"
SQL_CURRENT = "SELECT coalesce(max(revision), 0) FROM runlog_migrations"
SQL_RECORD = "INSERT INTO runlog_migrations (revision, name) VALUES ($1, $2)"
SQL_UNRECORD = "DELETE FROM runlog_migrations WHERE revision = $1"

# Session settings for every connection: a stuck lock holder must not stall every writer
# forever, and a transaction left open by a dead client is ended by the server.
SERVER_SETTINGS = {
    "application_name": "runlog",
    # Plan every execution for its parameters. After five runs of a prepared statement
    # PostgreSQL may switch to a generic plan, and for "id = ANY($1)" lookups and the append
    # function's per-stream probes that plan can be a scan whose cost grows with the table:
    # the server benchmark's throughput fell by two thirds over 100,000 transitions with it.
    "plan_cache_mode": "force_custom_plan",
    "lock_timeout": "30s",
    "idle_in_transaction_session_timeout": "60s",
    # recorded_at::text as "2026-11-21 23:11:53.93572+00", whatever the database's defaults.
    "DateStyle": "ISO",
    "TimeZone": "UTC",
}

_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.LockNotAvailableError,
)


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    """Map asyncpg's exceptions to the store's, once, for every operation."""
    try:
        yield
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
        raise SchemaError(
            f"the PostgreSQL database {where} has no runlog schema ({exc}); run 'runlog database upgrade'"
        ) from exc
    except asyncpg.DataError as exc:
        raise InvalidEvent(f"PostgreSQL cannot store this value: {exc}") from exc
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise WriteRejected(f"the PostgreSQL database {where} refused the write: {exc}") from exc
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        # 28000/28P01: a wrong user or password. Retrying cannot help; say what to fix.
        raise StorageMisconfigured(
            f"the PostgreSQL server for {where} refused the user or password: {exc}; "
            "check the credentials in RUNLOG_DATABASE_URL"
        ) from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise StorageMisconfigured(
            f"the PostgreSQL database {where} does not exist: {exc}; create it first (createdb) "
            "or point RUNLOG_DATABASE_URL at an existing one"
        ) from exc
    except _UNAVAILABLE as exc:
        reason = str(exc) or type(exc).__name__
        raise StorageUnavailable(f"the PostgreSQL database {where} is unavailable: {reason}") from exc
    except asyncpg.PostgresError as exc:
        raise EventStoreError(f"PostgreSQL error on {where}: {exc}") from exc


async def connect(url: DatabaseURL, *, role: str = "") -> asyncpg.Connection:
    """A connection named ``runlog`` (``runlog-ROLE``) in pg_stat_activity, for operators."""
    settings = SERVER_SETTINGS | ({"application_name": f"runlog-{role}"} if role else {})
    with translate_errors(url.masked()):
        return await asyncpg.connect(url.postgres_dsn, server_settings=settings, timeout=10)


class PostgresLeadership:
    """Leadership held as a session-level advisory lock on a connection of its own.

    The lock lives exactly as long as that session: if this process dies or its connection
    breaks, PostgreSQL releases it and another process takes the lead at its next campaign.
    So every campaign first checks the session is still alive (one round trip); a broken one
    means the lead was lost, whatever this process thought.

    That round trip is made at most once a ``LIVENESS_SECONDS`` while leading: a service woken
    by every append (the notifier's matcher, the event feed) campaigns before each of its rounds,
    many a second under load, and the ``SELECT 1`` was a server round trip each time. A session
    whose socket closed is seen at once without it (``is_closed``); the check is for one that
    hangs, and the lock is only checked between rounds anyway, so a round already runs up to a
    second after the session may have died.
    """

    def __init__(
        self, db: DatabaseURL, name: str, *, monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._db = db
        self._conn: asyncpg.Connection | None = None
        self._leading = False
        self._monotonic = monotonic
        self._checked_at = 0.0  # when the session last answered, while leading

    async def campaign(self) -> bool:
        with translate_errors(self._db.masked()):
            try:
                if self._conn is None or self._conn.is_closed():
                    self._drop()
                    self._conn = await connect(self._db, role="leader")
                if self._leading:
                    if self._monotonic() - self._checked_at >= LIVENESS_SECONDS:
                        await self._conn.fetchval("SELECT 1", timeout=10)
                        self._checked_at = self._monotonic()
                else:
                    self._leading = await self._conn.fetchval(
                        "SELECT pg_try_advisory_lock($1, hashtext($2))", LEADER_LOCK_CLASS, self.name, timeout=10
                    )
                    self._checked_at = self._monotonic()
            except BaseException:
                self._drop()  # a session in doubt holds nothing we can count on
                raise
        return self._leading

    async def resign(self) -> None:
        conn, self._conn, self._leading = self._conn, None, False
        if conn is not None and not conn.is_closed():
            # Closing the session releases its advisory locks.
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn, self._leading = None, False


class PostgresMigrationConnection:
    def __init__(self, conn: asyncpg.Connection, where: str) -> None:
        self._conn = conn
        self._where = where

    async def applied(self) -> list[migrate.Applied]:
        with translate_errors(self._where):
            await self._conn.execute(SQL_MIGRATIONS_TABLE)
            rows = await self._conn.fetch(SQL_APPLIED)
        return [migrate.Applied(r["revision"], r["name"], r["applied_at"]) for r in rows]

    async def run_step(self, migration: migrate.Migration, direction: Literal["up", "down"]) -> None:
        conn = self._conn
        with translate_errors(self._where):
            await conn.execute(SQL_MIGRATIONS_TABLE)
            async with conn.transaction():
                current = await conn.fetchval(SQL_CURRENT)
                due = current == migration.revision - 1 if direction == "up" else current == migration.revision
                if not due:  # another process ran this step while we waited for the lock
                    return
                await conn.execute(getattr(migration, direction))
                if direction == "up":
                    await conn.execute(SQL_RECORD, migration.revision, migration.name)
                else:
                    await conn.execute(SQL_UNRECORD, migration.revision)


@contextlib.asynccontextmanager
async def locked_migrations(conn: asyncpg.Connection, where: str) -> AsyncIterator[PostgresMigrationConnection]:
    """Hold the migration lock so processes starting together migrate one at a time."""
    with translate_errors(where):
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        yield PostgresMigrationConnection(conn, where)
    finally:
        with contextlib.suppress(Exception), translate_errors(where):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


@contextlib.asynccontextmanager
async def migration_connection(url: DatabaseURL) -> AsyncIterator[PostgresMigrationConnection]:
    conn = await connect(url)
    try:
        async with locked_migrations(conn, url.masked()) as migrations:
            yield migrations
    finally:
        await conn.close()


async def _reset_reader(conn: asyncpg.Connection) -> None:
    """Return a read connection to the pool without asyncpg's reset query.

    Readers never LISTEN, lock, SET or leave cursors open, so the default reset (one more
    round trip after every read) has nothing to undo, except after a read that failed inside
    a transaction.
    """
    if conn.is_in_transaction():
        await conn.reset()


def _columns(rows: Sequence[Row]) -> tuple[list[Any], ...]:
    """Planned rows as the column arrays runlog_append and runlog_insert take."""
    return (
        [r.position for r in rows], [r.stream_id for r in rows], [r.version for r in rows],
        [r.event.id for r in rows], [r.event.type for r in rows], [r.event.data for r in rows],
    )


_Preparer = tuple[
    Callable[[Sequence[Row]], RowChanges | None] | None, frozenset[str] | None, Callable[[], None] | None
]


def _preparers(projections: Sequence[InlineProjection]) -> tuple[_Preparer, ...]:
    """Each inline projection's optional hooks, looked up once: its ``prepare``, the only event
    types it folds (None: any) and its ``prepared_stored`` (base.py)."""
    return tuple(
        (
            getattr(projection, "prepare", None),
            None if (types := getattr(projection, "event_types", None)) is None else frozenset(types),
            getattr(projection, "prepared_stored", None),
        )
        for projection in projections
    )


def _prepared(
    preparers: Sequence[_Preparer], rows: Sequence[Row]
) -> tuple[list[RowChanges], list[Callable[[], None]]] | None:
    """Every projection's changes for the planned rows and the ``prepared_stored`` hooks to call
    once they are written, or None if one of them must read.

    A projection that folds none of the batch's event types is neither asked nor told: it would
    change nothing (the store hands it no event of such a batch, base.py), and most batches are
    a run's, which most projections fold nothing of. The changes are kept apart, not merged into
    one RowChanges: a projection's tables are its own (base.py), so no row is changed by two."""
    present = {row.event.type for row in rows}
    prepared: list[RowChanges] = []
    stored: list[Callable[[], None]] = []
    for prepare, types, prepared_stored in preparers:
        if types is not None and present.isdisjoint(types):
            continue
        found = prepare(rows) if prepare is not None else None
        if found is None:
            return None
        prepared.append(found)
        if prepared_stored is not None:
            stored.append(prepared_stored)
    return prepared, stored


def _with_changes(prepared: Sequence[RowChanges]) -> tuple[str, tuple[Any, ...]]:
    """The one-statement append with the projections' ``prepared`` changes written in the same
    statement, and their arguments (none and the plain append if nothing changes).

    Each table's upserts, deletes and amounts added to counts are a data-modifying CTE over an
    array of the table's row type (deletes carry rows with only the key set). Each reads the
    append's result, so it runs after the append, and writes only if the append's guesses held
    (its 'k' row). All are generated from the tables' declarations (eventstore/tables.py), never
    from input.
    """
    shape, args = [], []
    for changes in prepared:
        for table, upserts, deletes in changes.tables():
            if deletes:  # in the order _append_with numbers them
                shape.append((table, "delete"))
                args.append([table.key_row(key) for key in deletes])
            if upserts:
                shape.append((table, "upsert"))
                args.append(upserts)
    for changes in prepared:
        for table, rows in changes.additions():
            shape.append((table, "delta" if table.deltas else "add"))
            args.append(rows)
    if not shape:
        return SQL_APPEND, ()
    return _append_with(tuple(shape)), tuple(args)


@functools.lru_cache(maxsize=64)
def _append_with(shape: tuple[tuple[Table, str], ...]) -> str:
    numbers = itertools.count(SQL_APPEND_PARAMS + 1)
    guarded = "EXISTS (SELECT FROM a WHERE a.o_kind = 'k')"
    ctes = [f"a AS (SELECT * FROM {SQL_APPEND_CALL})"]
    for index, (table, change) in enumerate(shape):
        if change == "delete":
            matches = " AND ".join(f"t.{column} = d.{column}" for column in table.key)
            ctes.append(
                f"d{index} AS (DELETE FROM {table.name} AS t USING unnest(${next(numbers)}::{table.name}[]) AS d "
                f"WHERE {matches} AND {guarded})"
            )
        elif change == "upsert":
            ctes.append(
                f"u{index} AS (INSERT INTO {table.name} SELECT * FROM unnest(${next(numbers)}::{table.name}[]) "
                f"WHERE {guarded} {table.on_conflict})"
            )
        elif change == "delta":
            # Appended beside the counts' rows (tables.Table.deltas): no row that every batch updates.
            ctes.append(
                f"c{index} AS (INSERT INTO {table.deltas} SELECT * FROM unnest(${next(numbers)}::{table.name}[]) "
                f"WHERE {guarded})"
            )
        else:
            # ON CONFLICT DO UPDATE adds to the row's latest committed count, not this
            # statement's snapshot of it; appends are serialized by the append lock anyway.
            ctes.append(
                f"c{index} AS (INSERT INTO {table.name} AS t SELECT * FROM unnest(${next(numbers)}::{table.name}[]) "
                f"WHERE {guarded} {table.add_conflict})"
            )
    return f"WITH {', '.join(ctes)} SELECT * FROM a"


class _Guesses:
    """What this writer last saw of recent streams: their versions. (The head position it
    last saw is the BatchingStore's ``_head_seen``, as on SQLite.)

    Only guesses: another process may have appended since. runlog_append checks the head
    under the lock, and the unique constraints catch a stream guessed new that is not (a
    stream not remembered is guessed new, version 0, right for the streams runs start).
    Bounded, oldest forgotten first.
    """

    MAX_STREAMS = 10_000

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}

    def version(self, stream_id: str) -> int:
        return self._versions.get(stream_id, 0)

    def learn(self, streams: Sequence[str], versions: Sequence[int], rows: Sequence[Row]) -> None:
        known = self._versions
        for stream_id, version in zip(streams, versions):
            known.pop(stream_id, None)
            known[stream_id] = version
        for row in rows:  # in position order, so each stream ends at its last version
            known[row.stream_id] = row.version
        while len(known) > self.MAX_STREAMS:
            del known[next(iter(known))]

    def forget(self) -> None:
        self._versions.clear()


def _record(row: Any) -> RecordedEvent:
    return RecordedEvent(row[0], row[1], row[2], row[3], row[4], row[5], _fromisoformat(row[6]))


ANALYZE_FROM_EVENTS = 10_000
"""A log this long gets its stale planner statistics renewed when a server opens it (``_analyze``)."""

SQL_LOG_LENGTH = "SELECT COALESCE(MAX(position), 0) FROM events"
# autovacuum's own rule (autovacuum_analyze_threshold 50, autovacuum_analyze_scale_factor 0.1).
SQL_STALE_TABLES = (
    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
    "AND n_mod_since_analyze > 50 + n_live_tup / 10"
)


async def _restore_indexes(conn: asyncpg.Connection, where: str) -> None:
    """Make again the indexes a bulk writer set aside and did not make again (its process
    died), before migrating: see deferred_indexes. Under the migration lock, as _analyze."""
    with translate_errors(where):
        if not await deferred_indexes.pending(conn.fetch, "postgres"):
            return
        async with conn.transaction():
            await deferred_indexes.restore(conn.fetch, conn.execute, "postgres")


async def _analyze(conn: asyncpg.Connection, where: str) -> None:
    """ANALYZE the tables whose planner statistics are missing or stale, by autovacuum's rule,
    once the log is long enough to need them. A PostgreSQL without autovacuum (autovacuum =
    off, as on this machine) otherwise plans a million runs blind: it took the four rows of
    work_queues for hundreds and read all 150,000 runs of a pool to sort them, 0.6-5 s, where
    walking the sort's index stops after a page, 8 ms (README, "Run search"). Under the
    migration lock, so that of several servers starting at once only one does it."""
    with translate_errors(where):
        if (await conn.fetchval(SQL_LOG_LENGTH)) < ANALYZE_FROM_EVENTS:
            return
        for (table,) in await conn.fetch(SQL_STALE_TABLES):
            # The name comes from the catalogue, quoted as an identifier.
            await conn.execute(f'ANALYZE "{table.replace(chr(34), chr(34) * 2)}"')


class PostgresStore(BatchingStore):
    def __init__(
        self,
        url: DatabaseURL,
        *,
        migrate: bool = True,
        pool_size: int = 10,
        projections: Sequence[InlineProjection] = (),
    ) -> None:
        super().__init__(url.raw, projections)
        self._db = url
        self._where = url.masked()
        self._migrate = migrate
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._write_conn: asyncpg.Connection | None = None
        self._guesses = _Guesses()
        self._preparers = _preparers(self._projections)
        self._moved: tuple[int, dict[str, int]] | None = None
        """What the last one-statement try found when another process had appended (the head,
        the batch's stream versions)."""
        self._listener: asyncio.Task[None] | None = None
        # The LISTEN connection's life: ``_listened`` counts its connects and losses, and
        # ``_read_since`` is the count at which a head read began while it listened (see
        # ``_hears_every_append``).
        self._listening = False
        self._listened = 0
        self._read_since = -1
        # Tables of counts whose amounts live writes append as deltas (tables.Table.deltas), and
        # the task folding them into the counts' rows (``_compact_soon``).
        self._delta_tables = tuple({t: None for p in projections for t in getattr(p, "tables", ()) if t.deltas})
        self._compacting: asyncio.Task[None] | None = None
        self._compacted_at = time.monotonic()

    def leadership(self, name: str) -> PostgresLeadership:  # type: ignore[override]
        return PostgresLeadership(self._db, name)

    async def _open(self) -> None:
        conn = await connect(self._db)
        try:
            async with locked_migrations(conn, self._where) as migrations:
                if self._migrate:
                    await _restore_indexes(conn, self._where)
                    await migrate.upgrade(migrations, "postgres")
                    await _analyze(conn, self._where)
                else:
                    await migrate.require_head(migrations, "postgres", self._where)
            with translate_errors(self._where):
                self._pool = await asyncpg.create_pool(
                    self._db.postgres_dsn, min_size=1, max_size=self._pool_size,
                    server_settings=SERVER_SETTINGS, reset=_reset_reader,
                )
        except BaseException:
            await conn.close()
            raise
        self._write_conn = conn
        self._listener = asyncio.create_task(self._listen(), name="runlog-eventstore-listener")

    async def _close(self) -> None:
        if self._compacting is not None:
            with contextlib.suppress(Exception):
                await self._compacting
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._write_conn is not None:
            with contextlib.suppress(Exception):
                await self._write_conn.close(timeout=5)
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), 10)

    async def _listen(self) -> None:
        """Keep one LISTEN connection alive; after every (re)connect, wake readers to re-read."""
        backoff = 0.5
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect(self._db, role="listener")
            except StorageUnavailable as exc:
                log.warning("listen_connect_failed", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            try:
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(CHANNEL, self._announced)
                self._listening = True
                self._listened += 1
                backoff = 0.5
                # Events committed while we were not listening are found by this re-read.
                self._wakeup.notify()
                # A connection that dies without a clean termination is caught by a periodic ping.
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5.0)
                    if not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=5)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("listen_connection_lost", error=str(exc) or type(exc).__name__)
            finally:
                if self._listening:
                    self._listening = False
                    self._listened += 1
                with contextlib.suppress(Exception):
                    conn.terminate()

    async def _writer_connection(self) -> asyncpg.Connection:
        if self._write_conn is None or self._write_conn.is_closed():
            if self._write_conn is not None:
                self._write_conn.terminate()
                self._write_conn = None
            self._write_conn = await connect(self._db)
        return self._write_conn

    async def _write_batch(self, requests: list[AppendRequest]) -> BatchPlan:
        with translate_errors(self._where):
            conn = await self._writer_connection()
            try:
                plan = await self._write(conn, requests)
            except BaseException as exc:
                # The batch's outcome is unknown: guess nothing from it (BatchingStore forgets
                # the head it saw, and tells the projections).
                self._guesses.forget()
                if isinstance(exc, _UNAVAILABLE):
                    # The connection is in an unknown state; start the next batch on a fresh one.
                    conn.terminate()
                    self._write_conn = None
                raise
        if self._delta_tables and plan.rows:
            self._compact_soon()
        return plan

    def _compact_soon(self) -> None:
        """Start folding the deltas into the counts' rows, on a pooled connection beside the
        appends, if the last fold ended COMPACT_SECONDS ago and none is running: the deltas a
        count reader sums stay a few hundred rows, and the table stays a few pages (a VACUUM
        after each fold makes the deleted rows' room reusable at once, where autovacuum would
        come after a minute of appends had grown it)."""
        if self._compacting is not None or time.monotonic() - self._compacted_at < COMPACT_SECONDS:
            return
        self._compacting = asyncio.create_task(self._compact_in_background(), name="runlog-compact-counts")

    async def _compact_in_background(self) -> None:
        try:
            await self.compact_counts()
        except Exception as exc:  # the deltas stay, and count the same: the next fold moves them
            log.warning("count_compaction_failed", error=str(exc) or type(exc).__name__)
        finally:
            self._compacted_at = time.monotonic()
            self._compacting = None

    async def compact_counts(self) -> None:
        """Fold every table of counts' deltas into its rows (``Table.compact_sql``), then VACUUM
        the deltas, keeping their pages. Safe beside appends and other processes' folds: each
        amount is counted once at every snapshot (see compact_sql)."""
        if not self._delta_tables:
            return
        with translate_errors(self._where):
            async with self._readers().acquire() as conn:
                for table in self._delta_tables:
                    await conn.execute(table.compact_sql)
                    # Its pages are kept (TRUNCATE false): the next second's appends fill them
                    # again, and cutting an emptied table's tail takes an ACCESS EXCLUSIVE lock
                    # that every append inserting deltas meanwhile would wait behind.
                    await conn.execute(f"VACUUM (TRUNCATE false) {table.deltas}")

    async def _write(self, conn: asyncpg.Connection, requests: list[AppendRequest]) -> BatchPlan:
        """Append a batch: in one round trip when the guesses hold, else probed under the lock.

        First the batch goes out alone, in autocommit: one statement, one round trip including
        the commit, with the inline projections' writes for it (their ``prepare``) made in the
        same statement only if runlog_append found the head as guessed. If a projection cannot
        prepare its writes without reading, or a guess was wrong, the batch runs in a
        transaction: runlog_append, still holding the lock, reports what is there, the batch is
        planned again on that and inserted with runlog_insert, and the projections apply it.
        """
        if self._head_seen >= 0:  # unknown after opening or a failed batch: probe
            plan = await self._append_on_guesses(conn, requests)
            if plan is not None:
                metrics.ONE_STATEMENT.inc()
                return plan
            moved, self._moved = self._moved, None
            if moved is not None:
                # Another process appended since this writer last saw the log (a notifier in
                # its own process, another server): runlog_append reported the head and the
                # batch's stream versions as it found them. They are guesses again (the lock
                # went with the statement), checked the same way by the head, so the batch is
                # tried once more in one statement on them before it takes the locked path.
                head, versions = moved
                self._found_head(head)
                self._guesses.learn(list(versions), list(versions.values()), ())
                plan = await self._append_on_guesses(conn, requests)
                self._moved = None
                if plan is not None:
                    metrics.RETRIED.inc()
                    return plan
        async with conn.transaction():
            plan = await self._append_probed(conn, requests)
            await self._apply_inline(PostgresTx(conn), plan)
        metrics.LOCKED.inc()
        return plan

    async def _append_on_guesses(self, conn: asyncpg.Connection, requests: list[AppendRequest]) -> BatchPlan | None:
        """Plan on the guesses and send in autocommit; None if that cannot be trusted.

        runlog_append checks the head alone (migration 0007). A head as guessed means nothing
        was appended since this writer last saw the log, so the versions it remembers are exact;
        a stream it does not remember is guessed new, and if it is not, its row breaks
        UNIQUE (stream_id, version), as a stored id breaks UNIQUE (id): the statement, the
        projections' writes in it included, is rolled back whole. A planned version conflict is
        never reported on a guess: such a batch is probed first.
        """
        self._moved = None
        streams = list({r.stream_id: None for r in requests})
        plan = plan_batch(requests, self._head_seen, {s: self._guesses.version(s) for s in streams}, {})
        if any(outcome.error is not None for outcome in plan.outcomes):
            return None
        sql, extra, stored = SQL_APPEND, (), []
        if self._preparers:
            found = _prepared(self._preparers, plan.rows)
            if found is None:
                return None
            prepared, stored = found
            sql, extra = _with_changes(prepared)
        try:
            # The streams are read only when the head is not as guessed (the report branch).
            # The stream versions and ids it reads only when probing go as NULL, no argument to
            # encode (unnest and = ANY of NULL find nothing, as of an empty array).
            answer = await conn.fetch(sql, self._head_seen, streams, None, None, *_columns(plan.rows), *extra)
        except asyncpg.UniqueViolationError as exc:
            if exc.table_name != "events":
                raise
            return None  # a stream not remembered exists, or an id is stored: probe
        if not answer or answer[0][0] not in _OK:
            # Another process appended: what runlog_append found (the head, the versions of
            # the batch's streams) for ``_write``'s one more try.
            head, versions = -1, {}
            for row in answer:
                if row[0] in _HEAD:
                    head = row[1]
                elif row[0] in _STREAM:
                    versions[row[2]] = row[3]
            self._moved = (head, versions) if head >= 0 and len(versions) == len(streams) else None
            return None
        # runlog_append found the head at _head_seen: nobody else appended.
        recorded_at = {r[1]: r[7] for r in answer[1:]}
        for row in plan.rows:
            row.recorded_at = recorded_at[row.position]
        self._guesses.learn((), (), plan.rows)
        for prepared_stored in stored:  # the changes they prepared for it are written
            prepared_stored()
        return plan

    async def _append_probed(self, conn: asyncpg.Connection, requests: list[AppendRequest]) -> BatchPlan:
        """In the caller's transaction: take the lock, probe, plan on what is there, insert."""
        streams = list({r.stream_id: None for r in requests})
        ids = [ev.id for r in requests for ev in r.events]
        # A head that never matches makes runlog_append report instead of insert.
        answer = await conn.fetch(SQL_APPEND, -1, streams, None, ids, None, None, None, None, None, None)
        head = 0
        versions: dict[str, int] = {}
        stored: dict[Any, RecordedEvent] = {}
        for row in answer:
            kind = row[0]
            if kind in _HEAD:
                head = row[1]
            elif kind in _STREAM:
                versions[row[2]] = row[3]
            else:
                stored[row[4]] = RecordedEvent(row[1], row[2], row[3], row[4], row[5], row[6], row[7])
        self._found_head(head)
        plan = plan_batch(requests, head, versions, stored)
        if plan.rows:
            inserted = await conn.fetch(SQL_INSERT, *_columns(plan.rows))
            recorded_at = {r[0]: r[1] for r in inserted}
            for row in plan.rows:
                row.recorded_at = recorded_at[row.position]
        # Learned before the commit: if the commit fails, _write_batch forgets every guess.
        self._guesses.learn(streams, [versions[s] for s in streams], plan.rows)
        return plan

    async def write_tables(self, changes: RowChanges) -> None:
        """On a pooled connection, beside the appends: the rows are not in the events table,
        so they take none of its locks, and the writer's one-statement appends go on."""
        if not changes:
            return
        pool = self._readers()
        with translate_errors(self._where):
            async with pool.acquire() as conn, conn.transaction():
                await persist(PostgresTx(conn), changes)

    def _writes_beside_appends(self) -> bool:
        return True

    async def _run_job(self, fn, *, lock_appends: bool):  # type: ignore[no-untyped-def]
        """With the append lock: on the writer's connection (between batches), the lock taken
        first, as runlog_append takes it. Without: on a pooled connection, beside the appends."""
        with translate_errors(self._where):
            if lock_appends:
                conn = await self._writer_connection()
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
                    return await fn(PostgresTx(conn))
            async with self._readers().acquire() as conn, conn.transaction():
                return await fn(PostgresTx(conn))

    def _readers(self) -> asyncpg.Pool:
        self._check_usable()
        assert self._pool is not None
        return self._pool

    async def _table_columns(self, tx: PostgresTx) -> dict[str, tuple[str, ...]]:  # type: ignore[override]
        # The tables the search path shows, as an unqualified name in a query finds them.
        rows = await tx.fetch(
            "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relkind IN ('r', 'p') AND pg_table_is_visible(c.oid) AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
        )
        return grouped_columns(rows)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[PostgresTx]:
        pool = self._readers()
        with translate_errors(self._where):
            async with pool.acquire() as conn:
                yield PostgresTx(conn)

    async def _read_page(self, after: int, limit: int) -> list[RecordedEvent]:
        pool = self._readers()
        with translate_errors(self._where):
            rows = await pool.fetch(SQL_PAGE, after, limit)
        return [_record(r) for r in rows]

    async def _read_stream_page(self, stream_id: str, after_version: int, limit: int) -> list[RecordedEvent]:
        pool = self._readers()
        with translate_errors(self._where):
            rows = await pool.fetch(SQL_STREAM_PAGE, stream_id, after_version, limit)
        return [_record(r) for r in rows]

    async def read_event(self, event_id: UUID) -> RecordedEvent | None:
        pool = self._readers()
        with translate_errors(self._where):
            row = await pool.fetchrow(SQL_BY_ID, event_id)
        return None if row is None else _record(row)

    async def head(self) -> int:
        pool = self._readers()
        listened = self._listened
        with translate_errors(self._where):
            head = await pool.fetchval(SQL_HEAD)
        self._heard(head)
        if self._listening and listened == self._listened:
            self._read_since = listened
        return head

    def _hears_every_append(self) -> bool:
        """While LISTEN has been up since before a head read began: every append after that
        read is announced (runlog_insert and runlog_append NOTIFY with their last position)."""
        return self._listening and self._read_since == self._listened

    def _announced(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """A NOTIFY on the events channel: an append committed, ``payload`` its last position.
        This process's own appends are announced too; its writer woke the readers at the
        commit already, so only a position past what it committed wakes them again."""
        try:
            position = int(payload)
        except ValueError:
            self._read_since = -1  # not an announcement this code knows: read the head
            self._wakeup.notify()
            return
        self._heard(position)
        if position > self._head_seen:
            self._wakeup.notify()

    async def head_with(self, after: int, type_prefix: str) -> tuple[int, int | None]:
        """See EventStore.head_with: one statement on a pooled connection, no transaction."""
        pool = self._readers()
        with translate_errors(self._where):
            head, first = await pool.fetchrow(
                SQL_HEAD_WITH, after, after + HEAD_WITH_LOOKS_AT_MOST, len(type_prefix), type_prefix
            )
        return head, first_or_maybe(after, head, first, HEAD_WITH_LOOKS_AT_MOST)


__all__ = ["PostgresStore", "migration_connection"]
