"""Deleting events from the log, for retention (commands/retention.py) and nothing else.

What the rest of the store and its readers rely on, and why deleting chosen events keeps it:

- Positions are never reused. A new event takes the head's position + 1 (SQLite's rowid, the
  writers' planned head on PostgreSQL), so deleting the event at the head would hand its
  position out again: ``prune_events`` refuses to delete the head.
- Stream versions are never reused either: a stream's version is its last event's, and the
  next append expects it. Deleting a stream's last event would lower it, so callers keep the
  last event of every stream (``prune_events`` checks this too).
- Readers follow positions (``read_all(after=...)``, subscriptions, checkpoints) and never
  assume that position N+1 exists after N: a gap is a position nobody will ever see again,
  exactly like one a reader has already passed. Whoever bounds a read must bound it by
  position, not by a count of events (projections/verify.py, checkpoints.catch_up).
- Events are deleted in one transaction per call, beside the appends (on SQLite, between two
  append batches of the single writer), so a reader sees an event either whole or gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from .base import EventStore
from .tables import RowChanges, Table

# Only the keys are declared: rows are only ever deleted through these, never written.
EVENTS = Table("events", ("position",), key=("position",))
LOGS = Table("logs", ("id",), key=("id",))

CHUNK = 5000
"""Rows deleted per transaction: short transactions, so appends do not wait long behind one."""

SQL_HEAD = "SELECT coalesce(max(position), 0) FROM events"


class UnsafePrune(ValueError):
    """A deletion that would let a position or a stream version be used twice."""


async def prune_events(store: EventStore, positions: Sequence[int]) -> int:
    """Delete the events at ``positions`` (none of them the head of the log or of its stream);
    how many were asked for. Idempotent: a position already gone is no error."""
    wanted = sorted(set(positions))
    if not wanted:
        return 0
    async with store.reading() as tx:
        (head,) = (await tx.fetch(SQL_HEAD))[0]
    if wanted[-1] >= head:
        raise UnsafePrune(f"position {wanted[-1]} is the head of the log ({head}): its position would be reused")
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        await _check_not_stream_heads(store, chunk)
        changes = RowChanges()
        for position in chunk:
            changes.delete(EVENTS, position)
        await store.write_tables(changes)
    return len(wanted)


async def _check_not_stream_heads(store: EventStore, positions: Sequence[int]) -> None:
    async with store.reading() as tx:
        marks = ", ".join("?" * len(positions))
        rows = await tx.fetch(
            # Only our own placeholders are formatted in; the values travel as parameters.
            f"SELECT e.position, e.stream_id FROM events e WHERE e.position IN ({marks}) "  # noqa: S608
            "AND e.version = (SELECT max(version) FROM events s WHERE s.stream_id = e.stream_id)",
            *positions,
        )
    if rows:
        position, stream_id = rows[0]
        raise UnsafePrune(f"position {position} is the last event of stream {stream_id}: its version would be reused")


async def prune_logs(store: EventStore, ids: Sequence[UUID | str]) -> int:
    """Delete the run log lines with these ids (POST /logs/ lines are not events: DESIGN.md)."""
    for start in range(0, len(ids), CHUNK):
        changes = RowChanges()
        for log_id in ids[start:start + CHUNK]:
            changes.delete(LOGS, str(log_id))
        await store.write_tables(changes)
    return len(ids)


__all__ = ["CHUNK", "EVENTS", "LOGS", "UnsafePrune", "prune_events", "prune_logs"]
