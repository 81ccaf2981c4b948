"""Which old heartbeat-like events the read models do not need: what retention may prune.

A worker's heartbeats (its own stream) and a pool's polls (get_scheduled_flow_runs, the pool's
polls stream) are most of a busy log, and each one only overwrites what the one before it
wrote (work_pools.evolve_worker, evolve_queue). So an old one can go without changing any
view rebuilt from the log, if what it wrote is overwritten later anyway:

- a heartbeat, when a later heartbeat of the same worker follows it and an earlier one came
  before it, with no deletion of the worker in between (the first heartbeat made the worker:
  its ``created``; the last one is its ``last_heartbeat_time``);
- a poll, when every queue it names is named again by a later poll of the same pool.

Each stream's last event is therefore always kept (its version is never lowered), and so is
the log's head. Nothing else is ever pruned: runs, states, limits, leases, pools, queues,
deployments and the notifier's records are the truth and stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.schema import events as catalogue
from runlog.schema import streams

PRUNABLE_TYPES = ("worker.heartbeat", "work_queue.polled")
"""The event types retention may delete, and nothing else."""

# The events of every stream under a prefix, stream by stream in version order, up to a
# position: a range in byte order ('.' is the character after '-'), on PostgreSQL in the "C"
# collation, since a linguistic one (en_US...) may not sort punctuation by its code.
SQL_STREAMS = {
    "sqlite": "SELECT position, stream_id, type, data FROM events "
              "WHERE stream_id >= ? AND stream_id < ? AND position <= ? ORDER BY stream_id, version",
    "postgres": 'SELECT position, stream_id, type, data FROM events WHERE stream_id COLLATE "C" >= ? '
                'AND stream_id COLLATE "C" < ? AND position <= ? ORDER BY stream_id, version',
}


class Stored(msgspec.Struct, frozen=True):
    position: int
    stream_id: str
    event: Any


def prunable_heartbeats(stream: Sequence[Stored], cutoff: datetime) -> list[int]:
    """Positions of one worker stream's heartbeats older than ``cutoff`` that no view needs."""
    # Split at deletions: each segment is one life of the worker.
    segments: list[list[Stored]] = [[]]
    for stored in stream:
        if isinstance(stored.event, catalogue.WorkerDeleted):
            segments.append([])
        else:
            segments[-1].append(stored)
    out = []
    for segment in segments:
        beats = [i for i, s in enumerate(segment) if isinstance(s.event, catalogue.WorkerHeartbeat)]
        for i in beats[1:-1]:  # never the first (the worker's creation) nor the last
            if segment[i].event.occurred < cutoff:
                out.append(segment[i].position)
    return out


def prunable_polls(stream: Sequence[Stored], cutoff: datetime) -> list[int]:
    """Positions of one pool's polls older than ``cutoff`` whose queues are all polled again later."""
    out = []
    polled_later: set[UUID] = set()
    for stored in reversed(stream):
        event = stored.event
        if not isinstance(event, catalogue.WorkQueuesPolled):
            continue
        queues = set(event.work_queue_ids)
        if event.polled < cutoff and queues <= polled_later:
            out.append(stored.position)
        polled_later |= queues
    return sorted(out)


async def _streams_under(store: EventStore, prefix: str, upto: int) -> list[list[Stored]]:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_STREAMS[tx.dialect], prefix, prefix[:-1] + ".", upto)
    grouped: dict[str, list[Stored]] = {}
    for position, stream_id, _type, data in rows:
        try:
            event = catalogue.decode(bytes(data))
        except msgspec.DecodeError:
            event = None  # unreadable here (a newer runlog's): kept, and it keeps its neighbours
        grouped.setdefault(stream_id, []).append(Stored(int(position), stream_id, event))
    return list(grouped.values())


async def prunable_events(store: EventStore, cutoff: datetime, upto: int) -> list[int]:
    """Positions up to ``upto`` of heartbeats and polls older than ``cutoff`` that no view needs."""
    positions: list[int] = []
    for stream in await _streams_under(store, streams.WORKER, upto):
        positions += prunable_heartbeats(stream, cutoff)
    for stream in await _streams_under(store, streams.WORK_POOL_POLLS, upto):
        positions += prunable_polls(stream, cutoff)
    return sorted(positions)


__all__ = ["PRUNABLE_TYPES", "Stored", "prunable_events", "prunable_heartbeats", "prunable_polls"]
