"""The one way a consumer follows the log from a checkpoint of its own: the asynchronous
projections (the event feed, run history) and the notifier's matcher all catch up through it.

A round reads the log after the checkpoint a page at a time, hands each page to the consumer
(its ``Follower``), and stores the rows the page changes and the checkpoint after it in one
transaction: after a crash the consumer resumes exactly after the last page whose rows were
written, so no page's rows are written twice or lost. The checkpoint is written with a
compare-and-set (``SQL_ADVANCE``: it moves only from the position this process last read or
wrote), so when another process moved it meanwhile (another leader after a takeover, a
rebuild's swap) the transaction is rolled back, nothing of the page is written, and the round
ends with ``CheckpointMoved``; the next one goes on from the stored position. That matters
for a fold that adds to its rows (run history's cells): a page folded twice would count twice.

A follower whose rows depend on its own rows (``reads_own_rows``) is handed the write
transaction and reads them in it, so what it read and what it writes are one snapshot. Any
other follower works outside it, and the transaction only writes. A follower whose output is
not rows but idempotent effects (the matcher's deliveries, appended under ids derived from the
event, the automation and the action) returns no rows; its checkpoint need not move after
every page, so it may be written at most once a ``save_every`` seconds: a crash then applies
up to that much of the log again, which those ids make harmless. Such a follower may also
still be making a page's effects when it hands the page back (the matcher records a page's
deliveries while it matches the next): its ``settle`` is awaited before the checkpoint moves,
so the checkpoint never passes an effect not yet made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.tables import persist

from .checkpoints import PAGE, checkpoint

SQL_ADVANCE = (
    "INSERT INTO projection_checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
    "SET position = excluded.position WHERE projection_checkpoints.position = ? RETURNING position"
)
"""Move a checkpoint only from where it is expected to be (0 when there is no row yet): a row
comes back when it moved. On PostgreSQL the update locks the row, so of two transactions
moving it from the same position the second finds it moved when the first commits."""


class CheckpointMoved(Exception):
    """Another process moved the checkpoint since this one last read or wrote it."""


class Follower(Protocol):
    """A consumer of the log with a checkpoint named ``name``.

    ``changes(records, tx)`` applies a page (in log order) and returns the rows it changes
    (RowChanges; empty for a follower whose output is effects). A follower of effects may
    define ``async settle()``: until the effects of every page handed back are made (raising
    when one failed); the checkpoint is written only after it. ``tx`` is the write
    transaction the rows will be written in when the follower sets ``reads_own_rows = True``,
    else None. An exception stops the round; the page is applied again by the next one.
    """

    name: str
    tables: tuple[Table, ...]

    async def changes(self, records: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges: ...


class CatchUp:
    """One follower's progress through the log in this process: ``run`` a round at a time."""

    def __init__(
        self, store: EventStore, follower: Follower, *, page: int = PAGE, save_every: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.follower = follower
        self.page = page
        self.save_every = save_every
        self._clock = clock
        self.reached = 0
        """The last position applied by this process, whether its checkpoint is written or not."""
        self.saved: int | None = None
        """The checkpoint as this process last read or wrote it (None: not read yet)."""
        self._saved_at: float | None = None

    async def stored(self) -> int:
        """The checkpoint as the database holds it now."""
        return await checkpoint(self.store, self.follower.name)

    async def resume(self, position: int | None = None) -> int:
        """Go on from ``position`` (the stored checkpoint when None): what the next round
        applies comes after it."""
        self.saved = self.reached = await self.stored() if position is None else position
        return self.reached

    async def run(self, *, upto: int | None = None) -> int:
        """Apply the log after the checkpoint up to its end (or ``upto``); the position reached.

        Raises CheckpointMoved (having written nothing of the page) when another process moved
        the checkpoint; ``resume`` then goes on from where it is.
        """
        if self.saved is None:
            await self.resume()
        own_rows = bool(getattr(self.follower, "reads_own_rows", False))
        while upto is None or self.reached < upto:
            limit = self.page if upto is None else min(self.page, upto - self.reached)
            # Positions may have gaps (retention prunes events; they are never reused), so a page
            # of ``limit`` records can reach past ``upto``: what lies past it is left for later.
            read = await self.store.read_next(self.reached, limit)
            records = read if upto is None else [r for r in read if r.position <= upto]
            if not records:
                break
            reached = records[-1].position
            if own_rows:
                await self._commit(reached, None, records)
            else:
                changes = await self.follower.changes(records)
                if changes:  # rows go with their checkpoint; without rows it waits for the round's end
                    await self._commit(reached, changes, records)
            self.reached = reached
            if len(read) < limit:
                # The log ended within the page: reading on would find nothing (a round per
                # group commit read an empty page each time), and what was appended since is
                # the next wake-up's round.
                break
        if self.reached != self.saved and self._due():
            await self._settle()  # the effects of what is reached are made before it is saved
            await self._commit(self.reached, RowChanges(), ())
        return self.reached

    async def more(self) -> None:
        """Returns once the log holds an event past what this process reached (the store's
        wake-up: LISTEN/NOTIFY on PostgreSQL, an in-process signal on SQLite). It reads only the
        head: the round it starts reads the events."""
        await self.store.grown(self.reached)

    async def save(self, position: int) -> None:
        """Store ``position`` as the checkpoint (compare-and-set, as a page's is) and go on from it."""
        await self._settle()
        await self._commit(position, RowChanges(), ())
        self.reached = position

    async def _settle(self) -> None:
        settle = getattr(self.follower, "settle", None)
        if settle is not None:
            await settle()

    def _due(self) -> bool:
        return self._saved_at is None or self._clock() - self._saved_at >= self.save_every

    async def _commit(self, position: int, changes: RowChanges | None, records: Sequence[RecordedEvent]) -> None:
        expected = self.saved if self.saved is not None else 0
        name = self.follower.name

        async def write(tx: Tx) -> None:
            # The checkpoint first: on PostgreSQL that locks its row before anything is read or
            # written, so a concurrent writer of it (a rebuild's swap) goes wholly before or after.
            if not await tx.fetch(SQL_ADVANCE, name, position, expected):
                raise CheckpointMoved(name)
            rows = changes if changes is not None else await self.follower.changes(records, tx)
            await persist(tx, rows)

        try:
            await self.store.write_transaction(write)
        except CheckpointMoved:
            self.saved = None  # read it again before the next round
            raise
        self.saved = position
        self._saved_at = self._clock()


async def catch_up(store: EventStore, follower: Follower, *, upto: int | None = None) -> int:
    """One round of ``CatchUp`` from the stored checkpoint (tests, benchmarks, the CLI)."""
    return await CatchUp(store, follower).run(upto=upto)


__all__ = ["SQL_ADVANCE", "CatchUp", "CheckpointMoved", "Follower", "catch_up"]
