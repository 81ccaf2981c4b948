"""Retention as a background service of the runner: prune old run log lines and the old
heartbeat-like events that no read model needs (projections/retention.py says which).

Leader-elected like every singleton service, so with several servers on one database only one
prunes. Off by default (RUNLOG_SERVICES_RETENTION_ENABLED); each kind has its own maximum age,
and None keeps that kind forever. Ages are measured with the injected clock against each
record's own time: a log line's ``timestamp``, a heartbeat's ``occurred``, a poll's ``polled``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import structlog

from runlog.eventstore import EventStore
from runlog.eventstore.pruning import prune_events, prune_logs
from runlog.projections.retention import prunable_events
from runlog.projections.tables import us

from .runner import Service

log = structlog.get_logger("runlog.retention")

LOOP_SECONDS = 3600.0
LOG_PAGE = 10_000
"""Log lines looked up (and deleted) at a time."""

SQL_OLD_LOGS = "SELECT id FROM logs WHERE timestamp < ? LIMIT ?"


class Pruned(msgspec.Struct, frozen=True):
    events: int = 0
    logs: int = 0


async def old_log_ids(store: EventStore, cutoff: datetime, limit: int = LOG_PAGE) -> list[str]:
    """Ids of run log lines whose timestamp is before ``cutoff`` (the logs_timestamp index)."""
    async with store.reading() as tx:
        return [row[0] for row in await tx.fetch(SQL_OLD_LOGS, us(cutoff), limit)]


async def prune_old_logs(store: EventStore, cutoff: datetime) -> int:
    pruned = 0
    while ids := await old_log_ids(store, cutoff):
        pruned += await prune_logs(store, ids)
        if len(ids) < LOG_PAGE:
            break
    return pruned


async def prune_old_heartbeats(store: EventStore, cutoff: datetime, *, upto: int | None = None) -> list[int]:
    """Prune the heartbeats and polls before ``cutoff`` (and at or below position ``upto``,
    default the head) that no view needs; their positions."""
    head = await store.head() if upto is None else upto
    positions = await prunable_events(store, cutoff, head)
    await prune_events(store, positions)
    return positions


async def apply_retention(
    store: EventStore, now: datetime, *, logs_max_age: float | None, heartbeats_max_age: float | None,
) -> Pruned:
    """One round: what is older than each maximum age (seconds; None keeps it) goes."""
    logs = 0 if logs_max_age is None else await prune_old_logs(store, now - timedelta(seconds=logs_max_age))
    events = 0
    if heartbeats_max_age is not None:
        events = len(await prune_old_heartbeats(store, now - timedelta(seconds=heartbeats_max_age)))
    if events or logs:
        log.info("retention_pruned", events=events, logs=logs)
    return Pruned(events=events, logs=logs)


def retention_service(
    store: EventStore, *, interval: float = LOOP_SECONDS, logs_max_age: float | None,
    heartbeats_max_age: float | None,
) -> Service:
    async def step(now: datetime) -> Pruned:
        return await apply_retention(store, now, logs_max_age=logs_max_age, heartbeats_max_age=heartbeats_max_age)

    return Service(name="retention", step=step, interval=interval)


__all__ = ["LOOP_SECONDS", "Pruned", "apply_retention", "old_log_ids", "prune_old_heartbeats", "prune_old_logs",
           "retention_service"]
