"""Asynchronous projections as background services: each follows the log from its checkpoint.

A round folds everything appended since the checkpoint (projections/catchup.py, the catch-up
the notifier's matcher uses too);
between rounds the service waits on the store's subscription, so it runs again as soon as
the log grows (``interval`` is only the longest wait). Singleton: with several server
processes on one PostgreSQL, one of them (the leader) writes the read model.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from runlog.eventstore import EventStore
from runlog.projections.catchup import CatchUp, CheckpointMoved
from runlog.projections.checkpoints import AsyncProjection
from runlog.projections.event_feed import EventFeedProjection
from runlog.projections.rebuild import rebuilding
from runlog.projections.run_history import RunHistoryProjection

from .runner import Service

log = structlog.get_logger("runlog.projections")

INTERVAL_SECONDS = 5.0
GATHER_SECONDS = 1.0
"""After a wake-up, how long the events that follow are let in before the round: under load a
round then folds many events in one transaction (one commit) instead of a few in each of many.
At 0.1 s the event feed cost the PostgreSQL orchestration bench (16 clients) about a quarter of
its transitions; at 1 s much less (README, Benchmarks). Prefect's own event persister flushes
every 5 s by default; the feed's readers see an event within about a second."""


def projection_service(
    store: EventStore, projection: AsyncProjection, *, interval: float = INTERVAL_SECONDS, gather: float = GATHER_SECONDS,
) -> Service:
    following = CatchUp(store, projection)

    async def step(_now: datetime) -> None:
        if rebuilding(projection.name):
            return  # the rebuild's swap sets the checkpoint; the next round goes on from there
        if following.saved is not None and await following.stored() != following.saved:
            # Moved by another process (a rebuild's swap, another leader): go on from there.
            await following.resume()
        try:
            await following.run()
        except CheckpointMoved:
            log.info("projection_checkpoint_moved", projection=projection.name)
            await following.resume()

    async def wake() -> None:
        # Returns a moment after the first event past what the last round folded.
        await following.more()
        await asyncio.sleep(gather)

    return Service(f"projection-{projection.name}", step, interval, wake=wake)


def event_feed_service(store: EventStore) -> Service:
    return projection_service(store, EventFeedProjection(store))


def run_history_service(store: EventStore) -> Service:
    return projection_service(store, RunHistoryProjection(store))


__all__ = ["event_feed_service", "projection_service", "run_history_service"]
