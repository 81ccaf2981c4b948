"""Prefect's server events for work pools and work queues, derived from the records of the
"work-pools" stream as Prefect 3.8.8 emits them (prefect/server/models/events.py, workers.py):

* ``prefect.work-pool.{ready|not-ready|paused}`` and ``prefect.work-queue.{...}`` from the status
  records. Their id is the status record's id, so a pool's next status event ``follows`` the
  previous one (Prefect's last_status_event_id) when it came within ten minutes.
* ``prefect.work-pool.created`` / ``.deleted`` and ``prefect.work-queue.created`` / ``.deleted``;
  deleting a pool shows each of its queues' ``.deleted`` first, as Prefect emits them.
* ``prefect.work-pool.updated`` and ``prefect.work-queue.updated`` when an update changed a field
  Prefect reports (a pool's description, base job template, concurrency limit or storage
  configuration; a queue's name, description, concurrency limit or priority), with the payload
  ``{"updated_fields": [...], "updates": {field: {"from": old, "to": new}}}``. Pausing shows as
  the status event only, and a queue whose priority moved to make room for another's shows
  nothing (``WorkQueueUpdated.moved``), as in Prefect.

Prefect's server emits no event when a worker goes ONLINE or OFFLINE (workers send their own
``prefect.worker.*`` events), so neither does this.
"""

from __future__ import annotations

import uuid
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


POOL_EVENT_FIELDS = ("description", "base_job_template", "concurrency_limit", "storage_configuration")
"""The pool fields whose change Prefect reports in ``prefect.work-pool.updated``, in its order."""
QUEUE_EVENT_FIELDS = ("name", "description", "concurrency_limit", "priority")
"""The queue fields whose change Prefect reports in ``prefect.work-queue.updated``, in its order."""
STORAGE_KEYS = ("bundle_upload_step", "bundle_execution_step", "default_result_storage_block_id")
"""Prefect's WorkPoolStorageConfiguration: its events show every key, unset ones as null."""
_DELETED_QUEUE = uuid.UUID("0b5e4a53-7a4e-4d0c-8f1e-2f6d7b1c9a40")
_CREATED_STATUS = uuid.UUID("5d0c2b8e-3f41-4a7e-b6c2-9e8f1a7d4c33")
AGENT_POOL_TYPE = "prefect-agent"
"""Pools of this type have no status, and no status events."""


def kebab(status: str) -> str:
    return status.lower().replace("_", "-")


def pool_status_event(
    before: WorkPoolView, after: WorkPoolView, event_id: UUID, received: datetime, *, occurred: datetime | None = None
) -> ReceivedEvent:
    """Prefect's work pool status event for ``before`` -> ``after`` (pure); ``occurred`` for a
    status no status change recorded (a new pool's)."""
    occurred = occurred or after.status_changed
    assert occurred is not None
    recent = (before.status_changed is not None and after.status_changed is not None
              and after.status_changed - before.status_changed < FOLLOWS_WITHIN)
    return ReceivedEvent(
        occurred=occurred, event=f"prefect.work-pool.{kebab(after.status)}",
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


def pool_resource(pool: WorkPoolView) -> dict[str, str]:
    """The pool as the resource of its created, updated and deleted events."""
    return {
        "prefect.resource.id": f"prefect.work-pool.{pool.id}", "prefect.resource.name": pool.name,
        "prefect.work-pool.type": pool.type, "prefect.resource.role": "work-pool",
    }


def pool_related(pool: WorkPoolView) -> list[dict[str, str]]:
    """A pool's created or deleted event names its default queue and its result storage block."""
    related = [{"prefect.resource.id": f"prefect.work-queue.{pool.default_queue_id}", "prefect.resource.role": "default-queue"}]
    block = pool.storage_configuration.get("default_result_storage_block_id")
    if block:
        related.append({"prefect.resource.id": f"prefect.block-document.{block}", "prefect.resource.role": "result-storage"})
    return related


def queue_resource(queue: WorkQueueView) -> dict[str, str]:
    return {
        "prefect.resource.id": f"prefect.work-queue.{queue.id}", "prefect.resource.name": queue.name,
        "prefect.resource.role": "work-queue",
    }


def queue_related(pool: WorkPoolView | None) -> list[dict[str, str]]:
    return [] if pool is None else [{
        "prefect.resource.id": f"prefect.work-pool.{pool.id}", "prefect.resource.name": pool.name,
        "prefect.work-pool.type": pool.type, "prefect.resource.role": "work-pool",
    }]


def _shown(field: str, value: Any) -> Any:
    if field == "storage_configuration":
        return {key: (value or {}).get(key) for key in STORAGE_KEYS} | dict(value or {})
    return value


def changed_fields(before: Any, after: Any, fields: tuple[str, ...], sent: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Prefect's ``updates``: of the fields an update sent, those it reports whose value
    changed, in its order: {field: {"from": old, "to": new}} (pure)."""
    updates: dict[str, dict[str, Any]] = {}
    for field in fields:
        if field not in sent:
            continue
        old, new = getattr(before, field), getattr(after, field)
        if old != new:
            updates[field] = {"from": _shown(field, old), "to": _shown(field, new)}
    return updates


def updated_payload(updates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"updated_fields": list(updates), "updates": updates}


def lifecycle_events(
    event: Any, before: Any, after: Any, record_id: UUID, at: datetime, received: datetime,
    pools: dict[UUID, WorkPoolView], deleted_queues: list[WorkQueueView],
) -> list[ReceivedEvent]:
    """The created, updated and deleted events of one pool or queue record (pure): ``before``
    and ``after`` are the pool or queue it names, ``pools`` every pool after it, and
    ``deleted_queues`` the queues a pool's deletion took with it."""
    def made(name: str, resource: dict[str, str], related: list[dict[str, str]], payload: dict[str, Any] | None = None,
             event_id: UUID = record_id) -> ReceivedEvent:
        return ReceivedEvent(occurred=at, event=name, resource=resource, related=related, payload=payload or {},
                             id=event_id, received=received)

    if isinstance(event, catalogue.WorkPoolCreated) and after is not None:
        created = [made("prefect.work-pool.created", pool_resource(after), pool_related(after))]
        if after.type != AGENT_POOL_TYPE:
            # Prefect's POST /work_pools/ also emits the new pool's status (not-ready or paused),
            # following nothing; the pool's next status event does not follow it either.
            status = pool_status_event(after, after, uuid.uuid5(_CREATED_STATUS, str(record_id)), received, occurred=at)
            created.append(status)
        return created
    if isinstance(event, catalogue.WorkPoolDeleted) and before is not None:
        gone = [
            made("prefect.work-queue.deleted", queue_resource(q), queue_related(before),
                 event_id=uuid.uuid5(_DELETED_QUEUE, f"{record_id}/{q.id}"))
            for q in deleted_queues
        ]
        return [*gone, made("prefect.work-pool.deleted", pool_resource(before), pool_related(before))]
    if isinstance(event, catalogue.WorkPoolUpdated) and before is not None and after is not None:
        updates = changed_fields(before, after, POOL_EVENT_FIELDS, event.changes)
        if updates:
            return [made("prefect.work-pool.updated", pool_resource(after), [], updated_payload(updates))]
        return []
    if isinstance(event, catalogue.WorkQueueCreated) and after is not None:
        return [made("prefect.work-queue.created", queue_resource(after), queue_related(pools.get(after.work_pool_id)))]
    if isinstance(event, catalogue.WorkQueueDeleted) and before is not None:
        return [made("prefect.work-queue.deleted", queue_resource(before), queue_related(pools.get(before.work_pool_id)))]
    if isinstance(event, catalogue.WorkQueueUpdated) and before is not None and after is not None and not event.moved:
        updates = changed_fields(before, after, QUEUE_EVENT_FIELDS, event.changes)
        if updates:
            return [made("prefect.work-queue.updated", queue_resource(after), queue_related(pools.get(after.work_pool_id)),
                         updated_payload(updates))]
    return []


class WorkPoolsFold:
    """The "work-pools" stream folded as far as a consumer has read it: every pool and queue as
    they were after the last record seen, so a status record shows the pool it changed."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._version = 0
        self._position = 0
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

    async def queue_named(
        self, pool_name: str, queue_name: str, position: int
    ) -> tuple[WorkQueueView | None, WorkPoolView | None]:
        """The queue and pool of these names as the log had them just before ``position``."""
        if self._position >= position:  # folded past it (a consumer reading again): fold afresh
            self._version, self._position, self._pools, self._queues = 0, 0, {}, {}
        async for earlier in self._store.read_stream(streams.WORK_POOLS, after_version=self._version):
            if earlier.position >= position:
                break
            self._fold(catalogue.decode(earlier.data), earlier.id)
            self._version, self._position = earlier.version, earlier.position
        pool = next((p for p in self._pools.values() if p.name == pool_name), None)
        if pool is None:
            return None, None
        queue = next((q for q in self._queues.values() if q.work_pool_id == pool.id and q.name == queue_name), None)
        return queue, pool

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
            self._version, self._position, self._pools, self._queues = 0, 0, {}, {}
        if self._version < record.version - 1:
            async for earlier in self._store.read_stream(streams.WORK_POOLS, after_version=self._version):
                if earlier.version >= record.version:
                    break
                self._fold(catalogue.decode(earlier.data), earlier.id)
        self._version, self._position = record.version, record.position
        event = catalogue.decode(record.data)
        deleted_queues: list[WorkQueueView] = []
        if isinstance(event, catalogue.WorkPoolDeleted):
            deleted_queues = sorted(
                (q for q in self._queues.values() if q.work_pool_id == event.work_pool_id), key=lambda q: q.priority
            )
            for queue in deleted_queues:
                self._queues.pop(queue.id, None)
        before, after = self._fold(event, record.id)
        if isinstance(event, catalogue.WorkPoolStatusChanged) and before is not None and after is not None:
            return [pool_status_event(before, after, record.id, record.recorded_at)]
        if isinstance(event, catalogue.WorkQueueStatusChanged) and after is not None:
            return [queue_status_event(after, self._pools.get(after.work_pool_id), event.changed, record.id, record.recorded_at)]
        at = (getattr(event, "created", None) or getattr(event, "updated", None) or getattr(event, "deleted", None)
              or record.recorded_at)
        return lifecycle_events(event, before, after, record.id, at, record.recorded_at, self._pools, deleted_queues)


__all__ = [
    "POOL_EVENT_FIELDS", "QUEUE_EVENT_FIELDS", "WorkPoolsFold", "changed_fields", "kebab", "lifecycle_events",
    "pool_status_event", "queue_status_event",
]
