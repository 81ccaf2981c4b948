"""Checkpoints of the asynchronous projections: how far in the log each has folded.

An asynchronous projection follows the log from its own checkpoint instead of inside the
append's transaction, so a slow or failing read model never holds up a write. It persists its
rows and its new checkpoint in one transaction (``EventStore.write_tables``), so after a crash
it resumes exactly after the last event whose rows were written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx

CHECKPOINTS = Table("projection_checkpoints", ("name", "position"), key=("name",))
SQL_POSITION = "SELECT position FROM projection_checkpoints WHERE name = ?"

PAGE = 500
"""Events folded and written per transaction while catching up."""


class AsyncProjection(Protocol):
    """A read model folded after the append, from its checkpoint (see InlineProjection)."""

    name: str
    tables: tuple[Table, ...]

    async def changes(self, events: Sequence[RecordedEvent]) -> RowChanges: ...


async def position_of(tx: Tx, name: str) -> int:
    rows = await tx.fetch(SQL_POSITION, name)
    return int(rows[0][0]) if rows else 0


async def checkpoint(store: EventStore, name: str) -> int:
    """The position up to which ``name`` has folded the log (0: nothing yet)."""
    async with store.reading() as tx:
        return await position_of(tx, name)


async def catch_up(store: EventStore, projection: AsyncProjection, *, upto: int | None = None) -> int:
    """Fold the log from the projection's checkpoint to its end (or to ``upto``); the new checkpoint.

    Each page's rows and the checkpoint after it are written in one transaction.
    """
    after = await checkpoint(store, projection.name)
    while upto is None or after < upto:
        limit = PAGE if upto is None else min(PAGE, upto - after)
        # Positions may have gaps (retention prunes events; they are never reused), so a page
        # of ``limit`` records can reach past ``upto``: what lies past it is left for later.
        page = [record async for record in store.read_all(after=after, limit=limit)
                if upto is None or record.position <= upto]
        if not page:
            break
        changes = await projection.changes(page)
        after = page[-1].position
        changes.upsert(CHECKPOINTS, (projection.name, after))
        await store.write_tables(changes)
    return after


__all__ = ["CHECKPOINTS", "PAGE", "AsyncProjection", "catch_up", "checkpoint", "position_of"]
