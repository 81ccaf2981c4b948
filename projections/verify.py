"""Check the one rule (DESIGN.md): every projection table equals a rebuild from the log.

The live tables and the log's head are read in one snapshot; the log up to that head is then
replayed into a scratch SQLite database through the same inline projections, and the two sets
of rows are compared table by table. Nothing is written to the database being checked, so this
is safe while a server runs.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runlog.eventstore import NewEvent, RecordedEvent, SchemaBehind, Table, open_store

from .checkpoints import PAGE, position_of
from .registry import async_projections, inline_projections

REPLAY_WINDOW = 2000
"""Appends in flight during the replay; the scratch store commits them in groups, in order."""


@dataclass(frozen=True)
class TableCheck:
    projection: str
    table: str
    live: int
    rebuilt: int
    only_live: list[tuple[Any, ...]]
    only_rebuilt: list[tuple[Any, ...]]

    @property
    def equal(self) -> bool:
        return not self.only_live and not self.only_rebuilt


@dataclass(frozen=True)
class Verification:
    head: int
    tables: list[TableCheck]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


def _row(values: Sequence[Any]) -> tuple[Any, ...]:
    # bytea may come back as memoryview; booleans as 0/1 on SQLite. Compare plain values.
    return tuple(bytes(v) if isinstance(v, memoryview) else int(v) if isinstance(v, bool) else v for v in values)


async def _snapshot(
    store: Any, tables: Sequence[Table], checkpoints: Sequence[str] = (), counts: Sequence[Table] = (),
) -> tuple[int, dict[str, list], dict[str, int]]:
    """The head, every table's rows and the named checkpoints, read in one transaction so they agree.

    A table is read in its declared columns: a backend may keep a column of its own beside them
    (SQLite's flow_run_names.id, the key of its trigram index, migration 0035), numbered in the
    order the rows were written, which a replay need not repeat.

    A table of counts (``counts``, declared with ``adds``) is read without its zeros: a count
    whose runs all left it stays at 0, and which ones do depends on how the log was batched when
    it was written, not on what it holds. With deltas (PostgreSQL) each count is summed over its
    row and its deltas."""
    async with store.reading() as tx:
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if tx.dialect == "postgres" else "BEGIN"
        await tx.execute(begin)
        try:
            (head,) = (await tx.fetch("SELECT coalesce(max(position), 0) FROM events"))[0]
            selects = {table.name: f"SELECT {', '.join(table.columns)} FROM {table.name}" for table in tables}
            for table in counts:
                if table.deltas and tx.dialect == "postgres":
                    # Each count is its row's and its deltas' sum (migration 0034).
                    key = ", ".join(table.key)
                    selects[table.name] = (
                        f"SELECT {key}, CAST(sum({table.adds}) AS bigint) FROM {table.totals} GROUP BY {key} "
                        f"HAVING sum({table.adds}) <> 0"
                    )
                else:
                    selects[table.name] += f" WHERE {table.adds} <> 0"
            rows = {table.name: sorted(map(_row, await tx.fetch(selects[table.name]))) for table in tables}
            reached = {name: await position_of(tx, name) for name in checkpoints}
        finally:
            await tx.execute("ROLLBACK")
    return head, rows, reached


async def verify(url: str, on_progress: Callable[[int], None] | None = None) -> Verification:
    """Compare the projection tables at ``url`` with a rebuild from its log.

    An asynchronous projection is compared as far as its checkpoint: it is rebuilt from the live
    records up to there (so that what it keeps of a record, such as when it was received, is the
    record's own, not the scratch copy's) into the scratch database.
    """
    projections = inline_projections()
    tables = [(p.name, table) for p in projections for table in p.tables]
    counts = [table for p in projections for table in p.tables if table.adds is not None]
    live_store = open_store(url, migrate=False)
    try:
        await live_store.open()
    except SchemaBehind as exc:
        raise exc.because("'runlog projections verify' only reads the database") from None
    async with live_store as live:
        followers = async_projections(live)
        tables += [(p.name, table) for p in followers for table in p.tables]
        head, live_rows, reached = await _snapshot(live, [t for _, t in tables], [p.name for p in followers], counts)
        with tempfile.TemporaryDirectory(prefix="runlog-verify-") as scratch:
            async with open_store(f"sqlite:///{scratch}/rebuilt.db", projections=inline_projections()) as rebuilt:
                in_flight: list[asyncio.Task[list[RecordedEvent]]] = []
                replayed = 0
                async for event in live.read_all():
                    # A bound by position, not a count: retention leaves gaps (positions are
                    # never reused), and events appended after the snapshot are not compared.
                    if event.position > head:
                        break
                    new = NewEvent(type=event.type, data=event.data, id=event.id)
                    in_flight.append(asyncio.create_task(rebuilt.append(event.stream_id, [new])))
                    if len(in_flight) >= REPLAY_WINDOW:
                        await asyncio.gather(*in_flight)
                        replayed += len(in_flight)
                        in_flight = []
                        if on_progress is not None:
                            on_progress(replayed)
                await asyncio.gather(*in_flight)
                for follower in followers:
                    await _refold(live, rebuilt, follower, reached[follower.name])
                _, rebuilt_rows, _ = await _snapshot(rebuilt, [t for _, t in tables], counts=counts)
    checks = []
    for projection, table in tables:
        mine, theirs = set(live_rows[table.name]), set(rebuilt_rows[table.name])
        checks.append(TableCheck(
            projection, table.name, len(live_rows[table.name]), len(rebuilt_rows[table.name]),
            sorted(mine - theirs, key=repr), sorted(theirs - mine, key=repr),
        ))
    return Verification(head, checks)


async def _refold(live: Any, rebuilt: Any, projection: Any, upto: int) -> None:
    """Fold the live log up to ``upto`` through ``projection`` into the scratch database.

    A projection that reads its own rows while folding (run_history) reads the scratch ones."""
    if hasattr(projection, "writing_to"):
        projection = projection.writing_to(rebuilt)
    page: list[RecordedEvent] = []
    async for record in live.read_all():
        if record.position > upto:  # a position, not a count: the log may have gaps (retention)
            break
        page.append(record)
        if len(page) == PAGE:
            await rebuilt.write_tables(await projection.changes(page))
            page = []
    if page:
        await rebuilt.write_tables(await projection.changes(page))
