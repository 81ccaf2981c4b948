"""Prefect's server events for work pool and work queue statuses, derived from the status
records of the "work-pools" stream (prefect/server/models/events.py's work_pool_status_event
and work_queue_status_event): ``prefect.work-pool.{ready|not-ready|paused}`` and
``prefect.work-queue.{...}``. Their id is the status record's id, so a pool's next status event
``follows`` the previous one (Prefect's last_status_event_id) when it came within ten minutes.

Prefect's server emits no event when a worker goes ONLINE or OFFLINE (workers send their own
``prefect.worker.*`` events), so neither does this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore, RecordedEvent
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.automations import ReceivedEvent

from .work_pools import WorkPoolView, WorkQueueView, evolve_pool, evolve_queue

FOLLOWS_WITHIN = timedelta(minutes=10)

TYPES = frozenset({
    "work_pool.created", "work_pool.updated", "work_pool.deleted", "work_pool.status_changed",
    "work_queue.created", "work_queue.updated", "work_queue.deleted", "work_queue.status_changed",
})


def kebab(status: str) -> str:
    return status.lower().replace("_", "-")


def pool_status_event(before: WorkPoolView, after: WorkPoolView, event_id: UUID, received: datetime) -> ReceivedEvent:
    """Prefect's work pool status event for ``before`` -> ``after`` (pure)."""
    assert after.status_changed is not None
    recent = before.status_changed is not None and after.status_changed - before.status_changed < FOLLOWS_WITHIN
    return ReceivedEvent(
        occurred=after.status_changed, event=f"prefect.work-pool.{kebab(after.status)}",
        resource={
            "prefect.resource.id": f"prefect.work-pool.{after.id}", "prefect.resource.name": after.name,
            "prefect.work-pool.type": after.type,
        },
        related=[], payload={}, id=event_id, follows=before.status_event_id if recent else None, received=received,
    )


def queue_status_event(
    queue: WorkQueueView, pool: WorkPoolView | None, occurred: datetime, event_id: UUID, received: datetime
) -> ReceivedEvent:
    related = [] if pool is None else [{
        "prefect.resource.id": f"prefect.work-pool.{pool.id}", "prefect.resource.name": pool.name,
        "prefect.work-pool.type": pool.type, "prefect.resource.role": "work-pool",
    }]
    return ReceivedEvent(
        occurred=occurred, event=f"prefect.work-queue.{kebab(queue.status)}",
        resource={
            "prefect.resource.id": f"prefect.work-queue.{queue.id}", "prefect.resource.name": queue.name,
            "prefect.resource.role": "work-queue",
        },
        related=related, payload={}, id=event_id, received=received,
    )


class WorkPoolsFold:
    """The "work-pools" stream folded as far as a consumer has read it: every pool and queue as
    they were after the last record seen, so a status record shows the pool it changed."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._version = 0
        self._pools: dict[UUID, WorkPoolView] = {}
        self._queues: dict[UUID, WorkQueueView] = {}

    def _fold(self, event: Any, event_id: UUID) -> tuple[Any, Any]:
        """(before, after) of the pool or queue the event names."""
        if isinstance(event, catalogue.WorkPoolCreated | catalogue.WorkPoolUpdated | catalogue.WorkPoolDeleted
                      | catalogue.WorkPoolStatusChanged):
            before = self._pools.get(event.work_pool_id)
            after = evolve_pool(before, event, event_id)
            self._put(self._pools, event.work_pool_id, after)
            return before, after
        if isinstance(event, catalogue.WorkQueueCreated | catalogue.WorkQueueUpdated | catalogue.WorkQueueDeleted
                      | catalogue.WorkQueueStatusChanged):
            before = self._queues.get(event.work_queue_id)
            after = evolve_queue(before, event)
            self._put(self._queues, event.work_queue_id, after)
            return before, after
        return None, None

    @staticmethod
    def _put(views: dict[UUID, Any], key: UUID, view: Any) -> None:
        if view is None:
            views.pop(key, None)
        else:
            views[key] = view

    async def events_of(self, record: RecordedEvent) -> list[ReceivedEvent]:
        if record.stream_id != streams.WORK_POOLS or record.type not in TYPES:
            return []
        if record.version <= self._version:  # read again from an earlier position: fold afresh
            self._version, self._pools, self._queues = 0, {}, {}
        if self._version < record.version - 1:
            async for earlier in self._store.read_stream(streams.WORK_POOLS, after_version=self._version):
                if earlier.version >= record.version:
                    break
                self._fold(catalogue.decode(earlier.data), earlier.id)
        self._version = record.version
        event = catalogue.decode(record.data)
        before, after = self._fold(event, record.id)
        if isinstance(event, catalogue.WorkPoolStatusChanged) and before is not None and after is not None:
            return [pool_status_event(before, after, record.id, record.recorded_at)]
        if isinstance(event, catalogue.WorkQueueStatusChanged) and after is not None:
            return [queue_status_event(after, self._pools.get(after.work_pool_id), event.changed, record.id, record.recorded_at)]
        return []


__all__ = ["WorkPoolsFold", "kebab", "pool_status_event", "queue_status_event"]
