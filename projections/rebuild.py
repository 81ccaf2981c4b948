"""Rebuilding projections from the log beside the live tables, and swapping them in.

A rebuild never touches a live table until its last transaction. For each table of the
projections it rebuilds it makes a shadow (``rebuild_<table>``: the same columns, key and
indexes), then folds the log into the shadows in large batches, each batch's rows and the
shadow's checkpoint (``rebuild:<name>`` in projection_checkpoints, with the version it builds in
projection_versions) in one transaction. The projection's own code does the fold: it is handed a
transaction whose SQL names its shadow tables instead of its live ones (``ShadowTx``); every
projection reads only its own tables, so that is all it sees.

Inline projections are written by every append's transaction, so the live tables keep moving
while the shadow catches up. When the shadow is close to the head, the last transaction takes
the append lock (``EventStore.write_transaction(lock_appends=True)``: the writer's own
transaction between two batches, and on PostgreSQL the advisory lock runlog_append takes, so
no process appends meanwhile), folds the few events left, and replaces each live table's rows
with the shadow's (deleting and upserting the rows that differ), records the new
version (the shadows are dropped in a transaction of their own after it). Appends wait for
that one transaction; readers do not: on PostgreSQL they keep reading the old rows (MVCC) and
on SQLite the old snapshot (WAL) until it commits, then see the whole new view. Nobody ever
reads a half-built one. An asynchronous projection is not written by appends: its last
transaction folds up to the head and swaps in the same way but takes no lock, and sets its
checkpoint to where it got (its service, which may write the live rows meanwhile, writes rows
keyed by what they show and refolds from that checkpoint, so either order ends the same).

The swap writes rows rather than renaming tables. A rename would be constant time, but the live
table's identity matters: PostgreSQL's one-statement append names each table's row type
(``unnest($n::flow_runs[])``) in statements every server process has prepared, which a new
table would break until they restart; and index and constraint names that migrations drop by
name would change. Writing the rows that differ costs a moment under the append lock (README,
Benchmarks).

Speed (README, Benchmarks): the rows of a fold that reads none of its own rows (the event
feed's derivation, the costliest fold) are made before their batch's transaction, while the
previous batch's transaction writes, so reading and folding overlap the database's work and
the transaction mostly writes; on PostgreSQL a shadow table's rows of a batch go in by COPY
while their keys are new to it (``_Copied``), else as one upsert statement (``unnest`` of the
shadow's row type), the shadows are analyzed before the swap and
the swap hashes its joins in a larger ``work_mem``; on SQLite the writing connection's page
cache is widened while the shadows fill.

A rebuild that stops midway (killed, the database gone) leaves the live tables as they were;
the shadows and their checkpoint stay, and the next rebuild of the same version goes on from
there (one of another version starts again). A projection whose stored version differs from its
code's is rebuilt when the server starts (``rebuild_outdated``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import structlog

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.tables import persist

from .checkpoints import CHECKPOINTS
from .collector import fewer_collections
from .registry import Spec, projection_specs

log = structlog.get_logger("runlog.projections.rebuild")

SHADOW = "rebuild_"
"""A shadow table's name is its live table's with this in front."""

REBUILDING = "rebuild:"
"""The checkpoint and version rows of a rebuild in progress are named this plus the projection's."""

VERSIONS = Table("projection_versions", ("name", "version"), key=("name",))
def _utc_now() -> datetime:
    return datetime.now(UTC)


REBUILDS = Table("projection_rebuilds", ("name", "finished_at", "position", "events", "seconds"), key=("name",))
"""The last rebuild of each projection: when it finished (microseconds since the epoch), the
position reached, the events folded and its seconds (migration 0026)."""

BATCH_EVENTS = {"sqlite": 5_000, "postgres": 20_000}
"""Events folded per transaction while catching up. On SQLite each batch holds the database's
one write lock while it writes, so appends wait for it: a batch is a few tens of ms."""

SQLITE_CACHE_KIB = 256 * 1024
"""SQLite's page cache on the writing connection while a rebuild fills its shadows (restored
after): the shadows' keys are random UUIDs, so each batch's upserts land all over their b-trees,
and with SQLite's default 2 MB cache most of them would read and spill pages."""

SWAP_WORK_MEM = "256MB"
"""PostgreSQL's work_mem in the swap's transaction (SET LOCAL): its joins of shadow and live
tables hash in memory."""

COPY_MIN_ROWS = 100
"""Fewer rows of a table than this in one write go into its shadow by an upsert, not COPY
(``_Copied``): a COPY costs a savepoint and more round trips, which a few rows do not repay
(a projection folded one event at a time writes a few rows a call)."""

FINAL_LAG = 5_000
"""When the shadow is this close to the head, the last transaction takes the append lock."""

MAX_ROUNDS_BEHIND = 50
"""Batches folded beyond those the first head asked for before finishing under the lock however
far behind (a load appending faster than the fold would otherwise keep the rebuild going on)."""

SQL_EVENTS_AFTER = (
    "SELECT position, stream_id, version, id, type, data, recorded_at FROM events "
    "WHERE position > ? ORDER BY position"
)

Progress = Callable[[int, int], None]
"""Called with (events folded, events to fold) as a rebuild goes on."""


class RebuildError(Exception):
    """A rebuild that cannot start."""


class UnknownProjection(RebuildError):
    """A name that is no projection's."""


class RebuildBusy(RebuildError):
    """Another rebuild of the same projections is running (here, or in another server process)."""


@dataclass(frozen=True)
class Rebuilt:
    name: str
    version: int
    position: int
    """The log position the new tables reflect (the head when they were swapped in)."""
    events: int
    seconds: float


class ShadowTx:
    """A transaction whose SQL names shadow tables instead of the live ones it was written for.

    Only a table name after FROM, INTO, UPDATE or JOIN is replaced: that is where the
    projections' own SQL and the generated upserts and deletes (eventstore/tables.py) name them.
    """

    def __init__(self, tx: Tx, tables: Iterable[Table], *, copied: _Copied | None = None) -> None:
        self._tx = tx
        self.dialect = tx.dialect
        self._copied = copied
        names = sorted((t.name for t in tables), key=len, reverse=True)
        self._pattern = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)(\s+)(" + "|".join(names) + r")\b", re.IGNORECASE)
        self._rewritten: dict[str, str] = {}

    def sql(self, sql: str) -> str:
        found = self._rewritten.get(sql)
        if found is None:
            found = self._rewritten[sql] = self._pattern.sub(lambda m: f"{m[1]}{m[2]}{SHADOW}{m[3]}", sql)
        return found

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return await self._tx.fetch(self.sql(sql), *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._tx.execute(self.sql(sql), *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._tx.executemany(self.sql(sql), args)

    async def persist(self, changes: RowChanges) -> None:
        """Write ``changes`` into the shadows. On PostgreSQL each table's upserts travel as one
        array of rows in one statement (``unnest`` of the shadow's row type) rather than a
        statement per row: the server plans once and writes the set, and one round trip
        carries a batch (the rows are those the one-statement append sends the same way)."""
        await persist(self, changes, upsert=self._upsert_set if self.dialect == "postgres" else None)

    async def _upsert_set(self, table: Table, upserts: list[tuple[Any, ...]]) -> None:
        shadow = SHADOW + table.name
        if self._copied is not None and len(upserts) >= COPY_MIN_ROWS and self._copied.tries(table):
            if await self._tx.copy_new(shadow, table.columns, upserts):  # type: ignore[attr-defined]
                return
            self._copied.clashed(table)  # a key already in the shadow: nothing written, upserted below
        await self._tx.execute(table.upsert_set_sql(shadow), upserts)


# -- the shadow tables ------------------------------------------------------------------------

_SQLITE_TABLE = re.compile(r"^(CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?)([\"`\[]?)(\w+)", re.IGNORECASE)
_SQLITE_INDEX = re.compile(
    r"^(CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)([\"`\[]?)(\w+)([\"`\]]?)(\s+ON\s+)([\"`\[]?)(\w+)",
    re.IGNORECASE,
)


async def _create_shadow(tx: Tx, table: Table, *, indexes: bool) -> None:
    """``rebuild_<table>``, empty, with the live table's columns and key, and with its other
    indexes only if ``indexes`` (a fold that reads by other columns than the key). The swap
    copies rows into the live table, which keeps its own indexes, so a shadow needs none but
    those its fold reads by; each index costs the batch writes (a third of the runs' rebuild)."""
    shadow = SHADOW + table.name
    await tx.execute(f"DROP TABLE IF EXISTS {shadow}")
    if tx.dialect == "postgres":
        if indexes:
            await tx.execute(f"CREATE TABLE {shadow} (LIKE {table.name} INCLUDING ALL)")
        else:
            await tx.execute(
                f"CREATE TABLE {shadow} (LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
                f"PRIMARY KEY ({', '.join(table.key)}))"
            )
        return
    # SQLite has no LIKE: the live table's own statements, renamed (index names must be unique).
    rows = await tx.fetch(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL AND type IN ('table', 'index')",
        table.name,
    )
    for kind, sql in sorted(rows, key=lambda row: row[0] != "table"):
        if kind == "table":
            await tx.execute(_SQLITE_TABLE.sub(lambda m: f"{m[1]}{m[2]}{SHADOW}{m[3]}", sql, count=1))
        elif indexes:
            await tx.execute(_SQLITE_INDEX.sub(
                lambda m: f"{m[1]}{m[2]}{SHADOW}{m[3]}{m[4]}{m[5]}{m[6]}{SHADOW}{m[7]}", sql, count=1,
            ))


async def _shadow_exists(tx: Tx, table: Table) -> bool:
    if tx.dialect == "postgres":
        sql = "SELECT count(*) FROM pg_class WHERE relname = ? AND relkind = 'r' AND pg_table_is_visible(oid)"
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
    return bool((await tx.fetch(sql, SHADOW + table.name))[0][0])


async def _swap(tx: Tx, table: Table) -> None:
    """Make the live table's rows the shadow's, in the caller's transaction (see the module).

    Only the difference is written: rows the shadow lacks are deleted, rows it has otherwise
    (or only it has) are upserted, each found through the other table's key. A rebuild mostly
    reproduces what is there, and writing a row (its indexes, the log) costs far more than
    reading it: rewriting every row took 6.5 s at 100,000 runs, under the append lock.
    """
    shadow = SHADOW + table.name
    columns = ", ".join(table.columns)
    differs = "IS DISTINCT FROM" if tx.dialect == "postgres" else "IS NOT"  # NULL-safe on each
    same_key = " AND ".join(f"s.{column} = t.{column}" for column in table.key)
    changed = " OR ".join(
        [f"t.{table.key[0]} IS NULL"]
        + [f"s.{column} {differs} t.{column}" for column in table.columns if column not in table.key]
    )
    if table.deltas and tx.dialect == "postgres":
        # The shadow counts every event up to here, those whose amounts are still deltas too
        # (migration 0034): the rows become the whole counts. First, before any row of the
        # counts: a fold of the deltas running meanwhile (eventstore/postgres.py) then waits
        # here, or has moved them already, and this sets the rows it added to.
        await tx.execute(f"DELETE FROM {table.deltas}")
    await tx.execute(
        f"DELETE FROM {table.name} WHERE NOT EXISTS "
        f"(SELECT 1 FROM {shadow} s WHERE {same_key.replace('t.', table.name + '.')})"
    )
    await tx.execute(
        f"INSERT INTO {table.name} ({columns}) SELECT {', '.join('s.' + c for c in table.columns)} "
        f"FROM {shadow} s LEFT JOIN {table.name} t ON {same_key} WHERE {changed} {table.on_conflict}"
    )


# -- folding ------------------------------------------------------------------------------------

def _after(records: list[RecordedEvent], position: int) -> list[RecordedEvent]:
    """The records past ``position`` (all of them when the first is: the usual case)."""
    if not records or records[0].position > position:
        return records
    return [r for r in records if r.position > position]


def _foldable_early(spec: Spec) -> bool:
    """Whether the projection's rows for a batch depend only on the events (not on its rows)."""
    return spec.kind == "async" and not getattr(spec.projection, "reads_own_rows", False)


class _Copied:
    """Which shadow tables a rebuild's batches go into by COPY on PostgreSQL (``copy_new``):
    about half the server's CPU of the upsert of the same rows and a third of the client's.

    A shadow starts empty and a batch mostly makes rows of keys it has not written yet: every
    row of the event feed (keyed by the event's id) and those of the runs that begin in it.
    A batch whose rows clash with the shadow's writes nothing by COPY and is upserted; a table
    that clashed once is upserted from then on (a run that spans batches, in a log of runs that
    interleave, would make most of its batches clash), except a projection's whose every event
    makes rows of keys no other event's rows have (``new_keys``), where only a client that sent
    one event twice makes a clash. Tables of counts (``adds``) are added to, never upserted.
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        self._trying = {table for spec in specs for table in spec.tables if table.adds is None}
        self._keep = {table for spec in specs if getattr(spec.projection, "new_keys", False) for table in spec.tables}

    def tries(self, table: Table) -> bool:
        return table in self._trying

    def clashed(self, table: Table) -> None:
        if table not in self._keep:
            self._trying.discard(table)


async def _early_changes(spec: Spec, records: Sequence[RecordedEvent]) -> RowChanges:
    return await spec.projection.changes(records) if records else RowChanges()


async def _fold(spec: Spec, tx: ShadowTx, records: Sequence[RecordedEvent]) -> None:
    projection = spec.projection
    if spec.kind == "async":
        # A fold that reads its own rows (run_history) reads the shadows, in this transaction.
        if getattr(projection, "reads_own_rows", False):
            await tx.persist(await projection.changes(records, tx))
        else:
            await tx.persist(await projection.changes(records))
    elif getattr(projection, "per_event", False):
        # It reads rows that earlier events change (eventstore/base.py): one event at a time, as
        # the append path hands them; only the types it folds (``event_types``) are worth a call.
        types = getattr(projection, "event_types", None)
        for record in records:
            if types is None or record.type in types:
                await tx.persist(await projection.changes(tx, [record]))
    else:
        await tx.persist(await projection.changes(tx, records))


def _records(rows: Sequence[Sequence[Any]]) -> list[RecordedEvent]:
    # SQLite answers text ids and times, PostgreSQL UUIDs and datetimes: msgspec takes both.
    return msgspec.convert([tuple(row) for row in rows], list[RecordedEvent])


async def _stored(tx: Tx, names: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Stored versions and checkpoints by name (among ``names``)."""
    versions = {row[0]: int(row[1]) for row in await tx.fetch("SELECT name, version FROM projection_versions")}
    positions = {row[0]: int(row[1]) for row in await tx.fetch("SELECT name, position FROM projection_checkpoints")}
    wanted = set(names)
    return ({k: v for k, v in versions.items() if k in wanted}, {k: v for k, v in positions.items() if k in wanted})


def select(store: EventStore, names: Sequence[str] = ()) -> list[Spec]:
    """The projections named (all when none are), fresh instances for a rebuild."""
    specs = projection_specs(store)
    if not names:
        return specs
    known = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownProjection(f"no projection named {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return [known[name] for name in dict.fromkeys(names)]


_running: set[str] = set()
"""The projections this process is rebuilding now."""


def rebuilding(name: str) -> bool:
    """Whether this process is rebuilding ``name`` now: its catch-up service holds off until the
    swap is done, because a fold that reads its own rows (run_history's cells, read, added to
    and written back) would otherwise write over the swapped rows from what it read before."""
    return name in _running


def check(store: EventStore, names: Sequence[str] = ()) -> list[Spec]:
    """What ``rebuild(store, names)`` would rebuild; raises if it could not start here now."""
    specs = select(store, names)
    busy = [spec.name for spec in specs if spec.name in _running]
    if busy:
        raise RebuildBusy(f"a rebuild of {', '.join(busy)} is already running")
    return specs


async def rebuild(
    store: EventStore, names: Sequence[str] = (), *, on_progress: Progress | None = None,
    now: Callable[[], datetime] = _utc_now,
) -> list[Rebuilt]:
    """Rebuild the named projections (every one when none are named) beside the live tables and
    swap them in; see the module. Several are rebuilt in one pass over the log."""
    specs = check(store, names)
    _running.update(spec.name for spec in specs)  # before any await: a second call now finds them busy
    leadership = store.leadership("projection-rebuild")
    try:
        if not await leadership.campaign():
            raise RebuildBusy("another server process is rebuilding projections; try again when it has finished")
        return await _rebuild(store, specs, on_progress, now)
    finally:
        _running.difference_update(spec.name for spec in specs)
        await leadership.resign()


async def _rebuild(
    store: EventStore, specs: Sequence[Spec], on_progress: Progress | None, now: Callable[[], datetime],
) -> list[Rebuilt]:
    started = time.monotonic()
    after = await _prepare(store, specs)
    start = min(after.values())
    head = await store.head()
    log.info("projection_rebuild_started", projections=[s.name for s in specs], head=head,
             resumed={name: at for name, at in after.items() if at})
    dialect = await _dialect(store)
    batch = BATCH_EVENTS[dialect]
    cache = await _cache_size(store, -SQLITE_CACHE_KIB) if dialect == "sqlite" else None
    try:
        with fewer_collections():
            return await _fill_and_swap(store, specs, on_progress, now, started, after, start, head, batch)
    finally:
        if cache is not None:
            try:
                await _cache_size(store, cache)
            except Exception as exc:  # the store failed (the rebuild's own error says why)
                log.warning("projection_rebuild_cache_not_restored", error=str(exc))


async def _cache_size(store: EventStore, size: int) -> int:
    """Set SQLite's page cache size (PRAGMA cache_size: pages, or KiB when negative) on the
    writing connection; the size it had."""
    async def set_size(tx: Tx) -> int:
        old = int((await tx.fetch("PRAGMA cache_size"))[0][0])
        await tx.execute(f"PRAGMA cache_size = {int(size)}")
        return old

    return await store.write_transaction(set_size)


async def _fill_and_swap(
    store: EventStore, specs: Sequence[Spec], on_progress: Progress | None, now: Callable[[], datetime],
    started: float, after: dict[str, int], start: int, head: int, batch: int,
) -> list[Rebuilt]:
    tables = [table for spec in specs for table in spec.tables]
    copied = _Copied(specs) if await _dialect(store) == "postgres" else None
    low = start  # folded and committed into the shadows
    read_to = start  # read from the log (a batch ahead of ``low`` while the previous one writes)
    rounds_left = (head - start) // batch + 1 + MAX_ROUNDS_BEHIND
    pending: asyncio.Future[int] | None = None

    def committed(reached: int) -> None:
        nonlocal low
        for spec in specs:
            after[spec.name] = max(after[spec.name], reached)
        low = reached
        if on_progress is not None:
            on_progress(low - start, max(head, low) - start)

    try:
        while head - read_to > FINAL_LAG and rounds_left > 0:
            rounds_left -= 1
            records = [r async for r in store.read_all(after=read_to, limit=min(batch, head - read_to))]
            if not records:
                break
            reached = records[-1].position
            mine = {spec.name: _after(records, after[spec.name]) for spec in specs}
            # Rows of the folds that read none of their own rows (the event feed's derivation,
            # the costliest fold) are made here, outside the write transaction: while the
            # previous batch's transaction writes (on SQLite in its thread, on PostgreSQL in
            # the server), this one's are computed.
            early = {spec.name: await _early_changes(spec, mine[spec.name]) for spec in specs if _foldable_early(spec)}
            if pending is not None:
                committed(await pending)
                pending = None

            async def step(tx: Tx, mine: dict[str, list[RecordedEvent]] = mine,
                           early: dict[str, RowChanges] = early, reached: int = reached) -> int:
                shadow = ShadowTx(tx, tables, copied=copied)
                changes = RowChanges()
                for spec in specs:
                    if spec.name in early:
                        await shadow.persist(early[spec.name])
                    elif mine[spec.name]:
                        await _fold(spec, shadow, mine[spec.name])
                    changes.upsert(CHECKPOINTS, (REBUILDING + spec.name, reached))
                await persist(tx, changes)
                return reached

            pending = asyncio.ensure_future(store.write_transaction(step))
            read_to = reached
            head = await store.head()
        if pending is not None:
            committed(await pending)
            pending = None
    finally:
        if pending is not None:
            # Stopped by an error or a cancellation while a batch was writing: that batch
            # commits whole with its checkpoint or not at all (the next rebuild resumes).
            pending.add_done_callback(lambda done: done.cancelled() or done.exception())
            await asyncio.wait([pending])

    async def finish(tx: Tx, group: Sequence[Spec]) -> int:
        records = _records(await tx.fetch(SQL_EVENTS_AFTER, low))
        reached = records[-1].position if records else low
        moved = RowChanges()
        for spec in group:
            if spec.kind == "async":
                moved.upsert(CHECKPOINTS, (spec.name, reached))
        # An asynchronous projection's checkpoint first: on PostgreSQL that locks its row, which
        # its catch-up (projections/catchup.py) moves first in its own transactions, so a page
        # of its service (in any process) commits wholly before this swap or fails after it.
        await persist(tx, moved)
        shadow = ShadowTx(tx, [table for spec in group for table in spec.tables])
        for spec in group:
            mine = [r for r in records if r.position > after[spec.name]]
            if mine:
                await _fold(spec, shadow, mine)
        swapping = time.monotonic()
        if tx.dialect == "postgres":
            # The swap joins each shadow with its live table: room to hash them in memory
            # rather than sort them through temporary files (4 MB by default).
            await tx.execute(f"SET LOCAL work_mem = '{SWAP_WORK_MEM}'")
        changes = RowChanges()
        for spec in group:
            for table in spec.tables:
                await _swap(tx, table)
            changes.upsert(VERSIONS, (spec.name, spec.version))
            changes.delete(VERSIONS, REBUILDING + spec.name)
            changes.delete(CHECKPOINTS, REBUILDING + spec.name)
            changes.upsert(REBUILDS, (spec.name, int(now().timestamp() * 1_000_000), reached, reached - start,
                                      time.monotonic() - started))
        await persist(tx, changes)
        log.info("projection_swapped", projections=[s.name for s in group], final_events=len(records),
                 swap_seconds=round(time.monotonic() - swapping, 3))
        return reached

    # Inline projections are swapped holding the append lock: appends write their live tables.
    # Asynchronous ones are not written by appends, so theirs is an ordinary transaction: their
    # service may write the live rows meanwhile, but each of its pages moves the checkpoint by
    # compare-and-set in the page's transaction, so a page commits wholly before the swap
    # (which then writes over its rows) or finds the checkpoint moved and writes nothing.
    inline = [spec for spec in specs if spec.kind == "inline"]
    followers = [spec for spec in specs if spec.kind != "inline"]
    reached: dict[str, int] = {}
    if tables and await _dialect(store) == "postgres":
        # Statistics of the filled shadows before the swap joins them (autovacuum may not have
        # looked at tables this new): without them the planner guesses their size, and a
        # nested loop over a guess of a few rows is what it may choose. Outside the lock.
        async def analyze(tx: Tx) -> None:
            for table in tables:
                await tx.execute(f"ANALYZE {SHADOW}{table.name}")

        await store.write_transaction(analyze)
    if inline:
        at = await store.write_transaction(lambda tx: finish(tx, inline), lock_appends=True)
        reached.update((spec.name, at) for spec in inline)
    if followers:
        at = await store.write_transaction(lambda tx: finish(tx, followers))
        reached.update((spec.name, at) for spec in followers)
    position = max(reached.values())

    async def drop(tx: Tx) -> None:
        # After the swap, not in it: dropping a large table takes a while (freeing its pages),
        # and appends need not wait for it. A shadow left by a crash here is dropped by the
        # next rebuild, which makes its shadows afresh (no rebuild row names it any more).
        for table in tables:
            await tx.execute(f"DROP TABLE IF EXISTS {SHADOW}{table.name}")

    await store.write_transaction(drop)
    if on_progress is not None:
        on_progress(position - start, position - start)
    seconds = time.monotonic() - started
    log.info("projection_rebuild_finished", projections=[s.name for s in specs], position=position,
             events=position - start, seconds=round(seconds, 3),
             events_per_second=round((position - start) / seconds) if seconds else None)
    return [Rebuilt(spec.name, spec.version, reached[spec.name], reached[spec.name] - start, seconds) for spec in specs]


async def _dialect(store: EventStore) -> Literal["sqlite", "postgres"]:
    async with store.reading() as tx:
        return tx.dialect


async def _prepare(store: EventStore, specs: Sequence[Spec]) -> dict[str, int]:
    """Each projection's shadow checkpoint: a shadow of the code's version is kept and goes on,
    any other (or none) is made afresh, empty, at 0."""
    names = [REBUILDING + spec.name for spec in specs]
    async with store.reading() as tx:
        versions, positions = await _stored(tx, names)
        kept = {}
        for spec in specs:
            key = REBUILDING + spec.name
            if versions.get(key) == spec.version and key in positions:
                if all([await _shadow_exists(tx, table) for table in spec.tables]):
                    kept[spec.name] = positions[key]
    fresh = [spec for spec in specs if spec.name not in kept]
    if fresh:
        async def create(tx: Tx) -> None:
            changes = RowChanges()
            for spec in fresh:
                # A fold that reads its rows only by their key says so (``reads_by_key_only``).
                by_key = bool(getattr(spec.projection, "reads_by_key_only", False))
                for table in spec.tables:
                    await _create_shadow(tx, table, indexes=not by_key)
                changes.upsert(VERSIONS, (REBUILDING + spec.name, spec.version))
                changes.upsert(CHECKPOINTS, (REBUILDING + spec.name, 0))
            await persist(tx, changes)

        await store.write_transaction(create)
    return {spec.name: kept.get(spec.name, 0) for spec in specs}


async def rebuild_outdated(store: EventStore, *, on_progress: Progress | None = None) -> list[Rebuilt]:
    """On start: rebuild every projection whose stored version is not its code's.

    A projection with no stored version (a database from before versions were kept, or a new
    one) is taken to be of the code's version: its tables were built by the code that ran.
    """
    specs = projection_specs(store)
    async with store.reading() as tx:
        versions, _ = await _stored(tx, [spec.name for spec in specs])
    unknown = [spec for spec in specs if spec.name not in versions]
    if unknown:
        async def record(tx: Tx) -> None:
            changes = RowChanges()
            for spec in unknown:
                changes.upsert(VERSIONS, (spec.name, spec.version))
            await persist(tx, changes)

        await store.write_transaction(record)
    outdated = [spec for spec in specs if spec.name in versions and versions[spec.name] != spec.version]
    if not outdated:
        return []
    for spec in outdated:
        log.info("projection_outdated", projection=spec.name, stored_version=versions[spec.name], version=spec.version)
    last_logged = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last_logged
        if on_progress is not None:
            on_progress(done, total)
        now = time.monotonic()
        if now - last_logged >= 2.0 or done == total:
            last_logged = now
            log.info("projection_rebuild_progress", projections=[s.name for s in outdated], events=done, of=total)

    return await rebuild(store, [spec.name for spec in outdated], on_progress=progress)


__all__ = [
    "BATCH_EVENTS", "COPY_MIN_ROWS", "FINAL_LAG", "REBUILDING", "REBUILDS", "SHADOW", "VERSIONS", "RebuildBusy", "RebuildError", "Rebuilt", "rebuilding",
    "ShadowTx", "UnknownProjection", "check", "rebuild", "rebuild_outdated", "select",
]
