"""The work pools read model: one row per work pool, work queue and worker, kept inline with
the log; and the reads of them that commands share. (A run's queue is a column of flow_runs,
projections/runs_writer.py.)

Pools and queues (configuration and status changes) come from the one "work-pools" stream;
a worker's heartbeats and status changes from its own stream (streams.worker); polls from the
pool's polls stream (streams.work_pool_polls). A status column holds the status last
*recorded* (by a status event, or implied by a creation or a pause); the status rules that
compare it with the clock live in commands/work_pool_status.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .tables import changes_needed, read_view, us, view_in

READY, NOT_READY, PAUSED = "READY", "NOT_READY", "PAUSED"
ONLINE, OFFLINE = "ONLINE", "OFFLINE"

_POOL_TYPES = frozenset({
    "work_pool.created", "work_pool.updated", "work_pool.deleted", "work_pool.status_changed",
    "work_queue.created", "work_queue.updated", "work_queue.deleted", "work_queue.status_changed",
})
_WORKER_TYPES = frozenset({"worker.heartbeat", "worker.status_changed", "worker.deleted"})
_POLL_TYPES = frozenset({"work_queue.polled"})
_TYPES = _POOL_TYPES | _WORKER_TYPES | _POLL_TYPES

WORK_POOLS = Table("work_pools", ("id", "name", "type", "status", "created", "updated", "view"), key=("id",))
WORK_QUEUES = Table(
    "work_queues", ("id", "work_pool_id", "name", "priority", "status", "created", "updated", "view"), key=("id",)
)
WORKERS = Table(
    "workers", ("work_pool_id", "name", "id", "status", "last_heartbeat", "created", "updated", "view"),
    key=("work_pool_id", "name"),
)

SQL_POOL = "SELECT view FROM work_pools WHERE id = ?"
# Names are unique (the commands decide on one stream); should a pushed log hold two, the oldest answers.
SQL_POOL_BY_NAME = "SELECT view FROM work_pools WHERE name = ? ORDER BY created, id LIMIT 1"
SQL_QUEUE = "SELECT view FROM work_queues WHERE id = ?"
SQL_QUEUE_BY_NAME = "SELECT view FROM work_queues WHERE work_pool_id = ? AND name = ? ORDER BY created, id LIMIT 1"
SQL_QUEUE_NAMED = "SELECT view FROM work_queues WHERE name = ? ORDER BY created, id LIMIT 1"
SQL_QUEUES_OF_POOL = "SELECT view FROM work_queues WHERE work_pool_id = ? ORDER BY priority, name, id"
SQL_WORKER = "SELECT view FROM workers WHERE work_pool_id = ? AND name = ?"
SQL_WORKERS_OF_POOL = "SELECT view FROM workers WHERE work_pool_id = ? ORDER BY last_heartbeat DESC, name"
SQL_ONLINE_WORKERS = "SELECT view FROM workers WHERE status = 'ONLINE'"
SQL_ALL_POOLS = "SELECT view FROM work_pools ORDER BY name, id"
SQL_ALL_QUEUES = "SELECT view FROM work_queues ORDER BY id"


class WorkPoolView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    type: str
    description: str | None = None
    base_job_template: dict[str, Any] = msgspec.field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = None
    storage_configuration: dict[str, Any] = msgspec.field(default_factory=dict)
    default_queue_id: UUID
    status: str = NOT_READY
    status_changed: datetime | None = None
    status_event_id: UUID | None = None
    created: datetime
    updated: datetime


class WorkQueueView(msgspec.Struct, kw_only=True):
    id: UUID
    work_pool_id: UUID
    name: str
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: int | None = None
    priority: int = 1
    last_polled: datetime | None = None
    status: str = NOT_READY
    created: datetime
    updated: datetime


class WorkerView(msgspec.Struct, kw_only=True):
    id: UUID
    work_pool_id: UUID
    name: str
    last_heartbeat_time: datetime
    heartbeat_interval_seconds: int | None = None
    status: str = ONLINE
    """The status last recorded; the API answers the one the clock gives (work_pool_status)."""
    created: datetime
    updated: datetime


_encoder = msgspec.json.Encoder()
decode_pool = msgspec.json.Decoder(WorkPoolView).decode
decode_queue = msgspec.json.Decoder(WorkQueueView).decode
decode_worker = msgspec.json.Decoder(WorkerView).decode


# --- reads -------------------------------------------------------------------------------------

async def pool_in(tx: Tx, pool_id: UUID) -> WorkPoolView | None:
    return await view_in(tx, SQL_POOL, str(pool_id), decode_pool)


async def pool_by_name_in(tx: Tx, name: str) -> WorkPoolView | None:
    return await view_in(tx, SQL_POOL_BY_NAME, name, decode_pool)


async def queue_in(tx: Tx, queue_id: UUID) -> WorkQueueView | None:
    return await view_in(tx, SQL_QUEUE, str(queue_id), decode_queue)


async def queue_by_name_in(tx: Tx, pool_id: UUID, name: str) -> WorkQueueView | None:
    rows = await tx.fetch(SQL_QUEUE_BY_NAME, str(pool_id), name)
    return decode_queue(bytes(rows[0][0])) if rows else None


async def queue_named_in(tx: Tx, name: str) -> WorkQueueView | None:
    """The oldest queue of that name in any pool."""
    return await view_in(tx, SQL_QUEUE_NAMED, name, decode_queue)


async def queues_of_pool_in(tx: Tx, pool_id: UUID) -> list[WorkQueueView]:
    return [decode_queue(bytes(r[0])) for r in await tx.fetch(SQL_QUEUES_OF_POOL, str(pool_id))]


async def worker_in(tx: Tx, pool_id: UUID, name: str) -> WorkerView | None:
    rows = await tx.fetch(SQL_WORKER, str(pool_id), name)
    return decode_worker(bytes(rows[0][0])) if rows else None


async def workers_of_pool_in(tx: Tx, pool_id: UUID) -> list[WorkerView]:
    return [decode_worker(bytes(r[0])) for r in await tx.fetch(SQL_WORKERS_OF_POOL, str(pool_id))]


async def get_pool(store: EventStore, pool_id: UUID) -> WorkPoolView | None:
    return await read_view(store, SQL_POOL, str(pool_id), decode_pool)


async def get_pool_by_name(store: EventStore, name: str) -> WorkPoolView | None:
    """The pool of that name, or None (what deployments call to resolve a pool)."""
    return await read_view(store, SQL_POOL_BY_NAME, name, decode_pool)


async def get_queue(store: EventStore, queue_id: UUID) -> WorkQueueView | None:
    return await read_view(store, SQL_QUEUE, str(queue_id), decode_queue)


async def get_queue_by_name(store: EventStore, pool_id: UUID, name: str) -> WorkQueueView | None:
    async with store.reading() as tx:
        return await queue_by_name_in(tx, pool_id, name)


async def resolve_queue(store: EventStore, pool_name: str, queue_name: str | None) -> tuple[WorkPoolView, WorkQueueView] | None:
    """The pool of that name and its queue of that name (its default queue when None), or None."""
    async with store.reading() as tx:
        pool = await pool_by_name_in(tx, pool_name)
        if pool is None:
            return None
        queue = await (queue_by_name_in(tx, pool.id, queue_name) if queue_name else queue_in(tx, pool.default_queue_id))
        return (pool, queue) if queue is not None else None


async def queues_named(store: EventStore, names: Iterable[tuple[str, str]]) -> dict[tuple[str, str], WorkQueueView]:
    """The queues of these (pool name, queue name) pairs that exist, read together (what a page
    of deployments answers with)."""
    found: dict[tuple[str, str], WorkQueueView] = {}
    pools: dict[str, WorkPoolView | None] = {}
    async with store.reading() as tx:
        for pool_name, queue_name in set(names):
            if pool_name not in pools:
                pools[pool_name] = await pool_by_name_in(tx, pool_name)
            pool = pools[pool_name]
            queue = None if pool is None else await queue_by_name_in(tx, pool.id, queue_name)
            if queue is not None:
                found[pool_name, queue_name] = queue
    return found


async def get_queues_of_pool(store: EventStore, pool_id: UUID) -> list[WorkQueueView]:
    async with store.reading() as tx:
        return await queues_of_pool_in(tx, pool_id)


async def get_worker(store: EventStore, pool_id: UUID, name: str) -> WorkerView | None:
    async with store.reading() as tx:
        return await worker_in(tx, pool_id, name)


async def get_all_queues(store: EventStore) -> list[WorkQueueView]:
    async with store.reading() as tx:
        return await all_queues(tx)


async def all_pools(tx: Tx) -> list[WorkPoolView]:
    return [decode_pool(bytes(r[0])) for r in await tx.fetch(SQL_ALL_POOLS)]


async def all_queues(tx: Tx) -> list[WorkQueueView]:
    return [decode_queue(bytes(r[0])) for r in await tx.fetch(SQL_ALL_QUEUES)]


async def online_workers(tx: Tx) -> list[WorkerView]:
    return [decode_worker(bytes(r[0])) for r in await tx.fetch(SQL_ONLINE_WORKERS)]


# --- folds -------------------------------------------------------------------------------------

def _paused_or(is_paused: bool, status: str) -> str:
    return PAUSED if is_paused else status


POOL_FIELDS = ("description", "is_paused", "base_job_template", "concurrency_limit", "storage_configuration")
QUEUE_FIELDS = ("name", "description", "is_paused", "concurrency_limit", "priority", "last_polled")


def evolve_pool(view: WorkPoolView | None, event: Any, event_id: UUID | None = None) -> WorkPoolView | None:
    """Fold one event of the "work-pools" stream into the view of the pool it names."""
    if isinstance(event, catalogue.WorkPoolCreated):
        return WorkPoolView(
            id=event.work_pool_id, name=event.name, type=event.type, description=event.description,
            base_job_template=event.base_job_template, is_paused=event.is_paused,
            concurrency_limit=event.concurrency_limit, storage_configuration=event.storage_configuration,
            default_queue_id=event.default_queue_id, status=_paused_or(event.is_paused, NOT_READY),
            created=event.created, updated=event.created,
        )
    if view is None or isinstance(event, catalogue.WorkPoolDeleted):
        return None
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.WorkPoolUpdated):
        changes = {k: v for k, v in event.changes.items() if k in POOL_FIELDS}
        if changes.get("is_paused") is None:
            changes.pop("is_paused", None)
        return replace(view, **changes, updated=event.updated)
    if isinstance(event, catalogue.WorkPoolStatusChanged):
        return replace(view, status=event.status, status_changed=event.changed, status_event_id=event_id)
    return view


def evolve_queue(view: WorkQueueView | None, event: Any) -> WorkQueueView | None:
    """Fold one queue event (of the "work-pools" stream, or a poll) into the queue's view."""
    if isinstance(event, catalogue.WorkQueueCreated):
        return WorkQueueView(
            id=event.work_queue_id, work_pool_id=event.work_pool_id, name=event.name, description=event.description,
            is_paused=event.is_paused, concurrency_limit=event.concurrency_limit, priority=event.priority,
            status=_paused_or(event.is_paused, NOT_READY), created=event.created, updated=event.created,
        )
    if view is None or isinstance(event, catalogue.WorkQueueDeleted):
        return None
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.WorkQueueUpdated):
        changes = {k: v for k, v in event.changes.items() if k in QUEUE_FIELDS}
        for never_null in ("name", "is_paused", "priority"):
            if changes.get(never_null) is None:
                changes.pop(never_null, None)
        if isinstance(changes.get("last_polled"), str):
            changes["last_polled"] = msgspec.convert(changes["last_polled"], datetime)
        return replace(view, **changes, updated=event.updated)
    if isinstance(event, catalogue.WorkQueueStatusChanged):
        return replace(view, status=event.status)
    if isinstance(event, catalogue.WorkQueuesPolled):
        return replace(view, last_polled=event.polled)
    return view


def evolve_worker(view: WorkerView | None, event: Any) -> WorkerView | None:
    if isinstance(event, catalogue.WorkerHeartbeat):
        if view is None:
            return WorkerView(
                id=event.worker_id, work_pool_id=event.work_pool_id, name=event.name,
                last_heartbeat_time=event.occurred, heartbeat_interval_seconds=event.heartbeat_interval_seconds,
                status=OFFLINE, created=event.occurred, updated=event.occurred,
            )
        return msgspec.structs.replace(
            view, last_heartbeat_time=event.occurred, heartbeat_interval_seconds=event.heartbeat_interval_seconds,
            updated=event.occurred,
        )
    if view is None or isinstance(event, catalogue.WorkerDeleted):
        return None
    if isinstance(event, catalogue.WorkerStatusChanged):
        return msgspec.structs.replace(view, status=event.status)
    return view


# --- the projection ----------------------------------------------------------------------------

def _pool_row(view: WorkPoolView) -> tuple[Any, ...]:
    return (str(view.id), view.name, view.type, view.status, us(view.created), us(view.updated), _encoder.encode(view))


def _queue_row(view: WorkQueueView) -> tuple[Any, ...]:
    return (
        str(view.id), str(view.work_pool_id), view.name, view.priority, view.status, us(view.created),
        us(view.updated), _encoder.encode(view),
    )


def _worker_row(view: WorkerView) -> tuple[Any, ...]:
    return (
        str(view.work_pool_id), view.name, str(view.id), view.status, us(view.last_heartbeat_time),
        us(view.created), us(view.updated), _encoder.encode(view),
    )


def _mine(record: RecordedEvent) -> bool:
    if record.type in _POOL_TYPES:
        return record.stream_id == streams.WORK_POOLS
    if record.type in _WORKER_TYPES:
        return record.stream_id.startswith(streams.WORKER)
    if record.type in _POLL_TYPES:
        return record.stream_id.startswith(streams.WORK_POOL_POLLS)
    return False


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class WorkPoolsProjection:
    name = "work_pools"
    version = VERSION
    tables = (WORK_POOLS, WORK_QUEUES, WORKERS)
    per_event = True  # an update reads the row the batch's previous event may have written
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """None (``changes`` reads) for a batch with pool, queue, worker or poll events; nothing
        to write for any other, so runs' batches keep PostgreSQL's one-statement path."""
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES or not _mine(record):
                continue
            event = catalogue.decode(record.data)
            if isinstance(event, catalogue.WorkPoolCreated | catalogue.WorkPoolUpdated | catalogue.WorkPoolStatusChanged):
                current = None if isinstance(event, catalogue.WorkPoolCreated) else await pool_in(tx, event.work_pool_id)
                pool = evolve_pool(current, event, record.id)
                if pool is not None:
                    changes.upsert(WORK_POOLS, _pool_row(pool))
            elif isinstance(event, catalogue.WorkPoolDeleted):
                await self._delete_pool(tx, changes, event.work_pool_id)
            elif isinstance(event, catalogue.WorkQueueCreated | catalogue.WorkQueueUpdated | catalogue.WorkQueueStatusChanged):
                current = None if isinstance(event, catalogue.WorkQueueCreated) else await queue_in(tx, event.work_queue_id)
                queue = evolve_queue(current, event)
                if queue is not None:
                    changes.upsert(WORK_QUEUES, _queue_row(queue))
            elif isinstance(event, catalogue.WorkQueueDeleted):
                changes.delete(WORK_QUEUES, str(event.work_queue_id))
            elif isinstance(event, catalogue.WorkQueuesPolled):
                for queue_id in event.work_queue_ids:
                    queue = evolve_queue(await queue_in(tx, queue_id), event)
                    if queue is not None:
                        changes.upsert(WORK_QUEUES, _queue_row(queue))
            elif isinstance(event, catalogue.WorkerHeartbeat | catalogue.WorkerStatusChanged):
                current = await worker_in(tx, event.work_pool_id, event.name)
                if current is None and await pool_in(tx, event.work_pool_id) is None:
                    continue  # a heartbeat that lost a race with the pool's deletion
                worker = evolve_worker(current, event)
                if worker is not None:
                    changes.upsert(WORKERS, _worker_row(worker))
            elif isinstance(event, catalogue.WorkerDeleted):
                changes.delete(WORKERS, (str(event.work_pool_id), event.name))
        return changes

    @staticmethod
    async def _delete_pool(tx: Tx, changes: RowChanges, pool_id: UUID) -> None:
        key = str(pool_id)
        changes.delete(WORK_POOLS, key)
        for queue in await queues_of_pool_in(tx, pool_id):
            changes.delete(WORK_QUEUES, str(queue.id))
        for worker in await workers_of_pool_in(tx, pool_id):
            changes.delete(WORKERS, (key, worker.name))


__all__ = [
    "NOT_READY", "OFFLINE", "ONLINE", "PAUSED", "READY", "WorkPoolView", "WorkPoolsProjection", "WorkQueueView", "WorkerView",
    "decode_pool", "decode_queue", "decode_worker", "evolve_pool", "evolve_queue", "evolve_worker", "get_pool",
    "get_pool_by_name", "get_queue", "get_queue_by_name", "get_queues_of_pool", "get_worker", "resolve_queue",
]
