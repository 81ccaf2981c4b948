"""Checkpoints of the asynchronous projections: how far in the log each has folded.

An asynchronous projection follows the log from its own checkpoint instead of inside the
append's transaction, so a slow or failing read model never holds up a write. It catches up
through projections/catchup.py, as the notifier's matcher does: each page's rows and the
checkpoint after it in one transaction, so after a crash it resumes exactly after the last
event whose rows were written.
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

    async def changes(self, events: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges: ...


async def position_of(tx: Tx, name: str) -> int:
    rows = await tx.fetch(SQL_POSITION, name)
    return int(rows[0][0]) if rows else 0


async def checkpoint(store: EventStore, name: str) -> int:
    """The position up to which ``name`` has folded the log (0: nothing yet)."""
    async with store.reading() as tx:
        return await position_of(tx, name)


__all__ = ["CHECKPOINTS", "PAGE", "AsyncProjection", "checkpoint", "position_of"]
