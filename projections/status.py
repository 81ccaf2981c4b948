"""Where each projection stands: its kind, versions, checkpoint and lag behind the log's head.

An inline projection is written in the append's transaction, so its checkpoint is the head by
construction (lag 0). An asynchronous one, and any other follower of the log with a checkpoint
(the notifier's matcher), trails the head by the events appended since its last round; its lag
in seconds is the time between its checkpoint's event and the head's (when each was recorded).
On PostgreSQL everything is read in one snapshot, so the figures agree with each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from runlog.eventstore import EventStore

from .rebuild import REBUILDING
from .registry import projection_specs

SQL_HEAD = "SELECT position, recorded_at FROM events ORDER BY position DESC LIMIT 1"
SQL_RECORDED_AT = "SELECT recorded_at FROM events WHERE position = ?"
SQL_REBUILDS = "SELECT name, finished_at, position, events, seconds FROM projection_rebuilds"


class LastRebuild(msgspec.Struct, kw_only=True):
    finished_at: datetime
    position: int
    """The log position the rebuilt tables reached when they were swapped in."""
    events: int
    seconds: float


class ProjectionStatus(msgspec.Struct, kw_only=True):
    name: str
    kind: Literal["inline", "async", "follower"]
    version: int | None
    """The code's version of the fold (None for a follower that is not a projection)."""
    stored_version: int | None
    """The version that built the tables (differs from ``version`` until the rebuild on start)."""
    checkpoint: int
    head: int
    lag_events: int
    lag_seconds: float
    rebuilding: int | None = None
    """A rebuild in progress (or interrupted) beside the live tables: how far its shadow has got."""
    last_rebuild: LastRebuild | None = None
    """The last rebuild from the log that finished (None: never rebuilt, as built by appends)."""


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def statuses(store: EventStore) -> list[ProjectionStatus]:
    specs = projection_specs(store)
    async with store.reading() as tx:
        # One snapshot on PostgreSQL (the pooled connection is this read's alone). SQLite's
        # reader connection is shared by every read of the process, so no transaction of our
        # own there: the figures may then be a few appends apart.
        snapshot = tx.dialect == "postgres"
        if snapshot:
            await tx.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            top = await tx.fetch(SQL_HEAD)
            head, head_at = (int(top[0][0]), _moment(top[0][1])) if top else (0, None)
            checkpoints = {r[0]: int(r[1]) for r in await tx.fetch("SELECT name, position FROM projection_checkpoints")}
            versions = {r[0]: int(r[1]) for r in await tx.fetch("SELECT name, version FROM projection_versions")}
            rebuilds = {
                r[0]: LastRebuild(finished_at=datetime.fromtimestamp(int(r[1]) / 1_000_000, UTC), position=int(r[2]),
                                  events=int(r[3]), seconds=float(r[4]))
                for r in await tx.fetch(SQL_REBUILDS)
            }
            recorded: dict[int, datetime] = {}
            for position in set(checkpoints.values()) | {1}:
                rows = await tx.fetch(SQL_RECORDED_AT, position) if 0 < position <= head else []
                if rows:
                    recorded[position] = _moment(rows[0][0])
        finally:
            if snapshot:
                await tx.execute("ROLLBACK")

    def lag_seconds(position: int) -> float:
        if head_at is None or position >= head:
            return 0.0
        # Nothing folded yet: as far behind as the log is long (since its first event).
        since = recorded.get(position or 1)
        if since is None:
            return 0.0
        return max(0.0, (head_at - since).total_seconds())

    answer = []
    known = set()
    for spec in specs:
        known.add(spec.name)
        checkpoint = head if spec.kind == "inline" else checkpoints.get(spec.name, 0)
        answer.append(ProjectionStatus(
            name=spec.name, kind=spec.kind, version=spec.version, stored_version=versions.get(spec.name),
            checkpoint=checkpoint, head=head, lag_events=head - checkpoint, lag_seconds=lag_seconds(checkpoint),
            rebuilding=checkpoints.get(REBUILDING + spec.name), last_rebuild=rebuilds.get(spec.name),
        ))
    for name, checkpoint in sorted(checkpoints.items()):
        if name in known or name.startswith(REBUILDING):
            continue
        answer.append(ProjectionStatus(
            name=name, kind="follower", version=None, stored_version=None, checkpoint=checkpoint, head=head,
            lag_events=max(0, head - checkpoint), lag_seconds=lag_seconds(checkpoint),
        ))
    return answer


__all__ = ["LastRebuild", "ProjectionStatus", "statuses"]
