"""Work pools and their queues: create, update, delete, and their status changes, all decided on
the one "work-pools" stream (streams.WORK_POOLS).

Pool names, and queue names within a pool, must be unique, a queue's priority is unique within
its pool, and a status must change exactly once however many servers notice it: every write
here reads the stream's version before the rows it decides on and appends with that version
expected (decide_on_stream), so a concurrent writer makes the command decide again. These are
rare writes: the frequent ones, heartbeats and polls, go to streams of their own
(commands/workers.py) and come here only when they change a status.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore, Tx
from runlog.projections import work_pools as reads
from runlog.projections.work_pools import NOT_READY, PAUSED, WorkPoolView, WorkQueueView
from runlog.schema import events as catalogue
from runlog.schema import streams

from . import flow_runs
from .clock import Clock, system_clock
from .errors import Conflict, Forbidden, NotFound, Unprocessable
from .executor import Decided, decide_on_stream
from .work_pool_status import pool_status, queue_status, worker_view_status

DEFAULT_AGENT_POOL = "default-agent-pool"
"""Prefect's pool for queues named without a pool (prefect/server/models/workers.py)."""
DEFAULT_QUEUE_NAME = "default"
DEFAULT_QUEUE_DESCRIPTION = "The work pool's default queue."
RESERVED_PREFIX = "prefect"


class PoolNameTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("A work pool with this name already exists.")


class QueueNameTaken(Conflict):
    def __init__(self, pool_name: str) -> None:
        super().__init__(f"A work queue with this name already exists in work pool {pool_name!r}.")


class PoolNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f'Work pool "{name}" not found.')


class DefaultQueue(Unprocessable):
    def __init__(self) -> None:
        super().__init__("Can't delete a pool's default queue.")


def reserved(name: str) -> bool:
    """Prefect keeps pool names starting with "prefect" (any case) for itself."""
    return name.lower().startswith(RESERVED_PREFIX)


@dataclass(frozen=True)
class NewWorkPool:
    name: str
    type: str = "prefect-agent"
    description: str | None = None
    base_job_template: dict[str, Any] = field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = None
    storage_configuration: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewWorkQueue:
    name: str
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: int | None = None
    priority: int | None = None


def _on_pools(store: EventStore, decide: Callable[[Tx, datetime], Awaitable[Decided[Any]]], clock: Clock) -> Awaitable[Any]:
    return decide_on_stream(store, streams.WORK_POOLS, decide, clock=clock)


# --- priorities (pure) -------------------------------------------------------------------------

def free_priority(priorities: Iterable[int]) -> int:
    """Prefect's priority for a queue created without one: the first gap in 1, 2, 3, ...,
    else one past the largest."""
    taken = sorted(priorities)
    for index, priority in enumerate(taken):
        if index + 1 != priority:
            return index + 1
    return max(taken, default=0) + 1


def reprioritised(queues: Iterable[tuple[UUID, int]], wanted: Mapping[UUID, int]) -> dict[UUID, int]:
    """The queues whose priority changes when ``wanted`` ones take the priorities they ask for:
    the others keep their order and move down only as far as needed to stay unique (Prefect's
    bulk_update_work_queue_priorities). ``queues`` is every queue of the pool, (id, priority)."""
    ordered = sorted(queues, key=lambda q: q[1])
    others = [[qid, p] for qid, p in ordered if qid not in wanted]
    for qid in sorted((q for q, _ in ordered if q in wanted), key=lambda q: wanted[q]):
        target = wanted[qid]
        index = next((i for i, (_, p) in enumerate(others) if p >= target), len(others))
        others.insert(index, [qid, target])
    last, result, before = 0, {}, dict(ordered)
    for entry in others:
        if entry[1] <= last:
            last += 1
            entry[1] = last
        else:
            last = entry[1]
        if before.get(entry[0]) != entry[1]:
            result[entry[0]] = entry[1]
    return result


def _priority_events(
    queues: list[WorkQueueView], wanted: Mapping[UUID, int], now: datetime, *, skip: UUID | None = None
) -> list[catalogue.Event]:
    moves = reprioritised([(q.id, q.priority) for q in queues], wanted)
    return [
        catalogue.WorkQueueUpdated(work_queue_id=qid, changes={"priority": priority}, updated=now, moved=True)
        for qid, priority in moves.items() if qid != skip
    ]


# --- pools -------------------------------------------------------------------------------------

async def create_pool(store: EventStore, new: NewWorkPool, *, clock: Clock = system_clock) -> WorkPoolView:
    """The new pool, with its queue "default". Raises Forbidden for a reserved name and
    PoolNameTaken when a pool has the name."""
    if reserved(new.name):
        raise Forbidden("Work pools starting with 'Prefect' are reserved for internal use.")

    async def decide(tx: Tx, now: datetime) -> Decided[WorkPoolView]:
        if await reads.pool_by_name_in(tx, new.name) is not None:
            raise PoolNameTaken()
        pool_id, queue_id = uuid.uuid4(), uuid.uuid4()
        created = catalogue.WorkPoolCreated(
            work_pool_id=pool_id, name=new.name, type=new.type, description=new.description,
            base_job_template=new.base_job_template, is_paused=new.is_paused,
            concurrency_limit=new.concurrency_limit, storage_configuration=new.storage_configuration,
            default_queue_id=queue_id, created=now,
        )
        queue = catalogue.WorkQueueCreated(
            work_queue_id=queue_id, work_pool_id=pool_id, name=DEFAULT_QUEUE_NAME,
            description=DEFAULT_QUEUE_DESCRIPTION, priority=1, created=now,
        )
        view = reads.evolve_pool(None, created)
        assert view is not None
        return Decided([created, queue], view)

    return await _on_pools(store, decide, clock)


async def _online_statuses(tx: Tx, pool_id: UUID, now: datetime) -> list[str]:
    return [worker_view_status(w, now) for w in await reads.workers_of_pool_in(tx, pool_id)]


async def update_pool(
    store: EventStore, name: str, changes: dict[str, Any], *, clock: Clock = system_clock
) -> bool:
    """Set the fields in ``changes``; False when no pool has the name. Pausing or unpausing
    records the status it gives (PAUSED; READY or NOT_READY by its workers)."""
    if reserved(name) and set(changes) - {"is_paused", "concurrency_limit"}:
        raise Forbidden(
            "Work pools starting with 'Prefect' are reserved for internal use "
            "and can only be updated to set concurrency limits or pause."
        )

    async def decide(tx: Tx, now: datetime) -> Decided[bool]:
        pool = await reads.pool_by_name_in(tx, name)
        if pool is None:
            return Decided((), False)
        events: list[catalogue.Event] = [catalogue.WorkPoolUpdated(work_pool_id=pool.id, changes=changes, updated=now)]
        is_paused = changes.get("is_paused")
        if is_paused is not None:
            status = pool_status(pool.type, is_paused, await _online_statuses(tx, pool.id, now))
            if status is not None and status != pool.status:
                events.append(catalogue.WorkPoolStatusChanged(work_pool_id=pool.id, status=status, changed=now))
        return Decided(events, True)

    return await _on_pools(store, decide, clock)


async def delete_pool(store: EventStore, name: str, *, clock: Clock = system_clock) -> bool:
    """Delete the pool, its queues and workers; its queues' runs no longer name a queue."""
    if reserved(name):
        raise Forbidden("Work pools starting with 'Prefect' are reserved for internal use and can not be deleted.")
    queue_ids: list[UUID] = []

    async def decide(tx: Tx, now: datetime) -> Decided[bool]:
        pool = await reads.pool_by_name_in(tx, name)
        if pool is None:
            return Decided((), False)
        queue_ids[:] = [q.id for q in await reads.queues_of_pool_in(tx, pool.id)]
        return Decided([catalogue.WorkPoolDeleted(work_pool_id=pool.id, deleted=now)], True)

    found = await _on_pools(store, decide, clock)
    if found:
        await flow_runs.clear_work_queue(store, queue_ids, clock=clock)
    return found


# --- queues ------------------------------------------------------------------------------------

QueueLookup = Callable[[Tx], Awaitable[WorkQueueView | None]]


def queue_by_id(queue_id: UUID) -> QueueLookup:
    return lambda tx: reads.queue_in(tx, queue_id)


def queue_by_name(pool_name: str, queue_name: str) -> QueueLookup:
    async def lookup(tx: Tx) -> WorkQueueView | None:
        pool = await reads.pool_by_name_in(tx, pool_name)
        if pool is None:
            raise PoolNotFound(pool_name)
        return await reads.queue_by_name_in(tx, pool.id, queue_name)

    return lookup


async def create_queue(
    store: EventStore, pool_name: str, new: NewWorkQueue, *, clock: Clock = system_clock
) -> tuple[WorkPoolView, WorkQueueView]:
    """The pool and its new queue. Raises PoolNotFound, or QueueNameTaken when the pool has a
    queue of that name. A priority given moves the queues that hold it down by one."""

    async def decide(tx: Tx, now: datetime) -> Decided[tuple[WorkPoolView, WorkQueueView]]:
        pool = await reads.pool_by_name_in(tx, pool_name)
        if pool is None:
            raise PoolNotFound(pool_name)
        queues = await reads.queues_of_pool_in(tx, pool.id)
        if any(q.name == new.name for q in queues):
            raise QueueNameTaken(pool_name)
        queue_id = uuid.uuid4()
        priority = new.priority if new.priority is not None else free_priority(q.priority for q in queues)
        created = catalogue.WorkQueueCreated(
            work_queue_id=queue_id, work_pool_id=pool.id, name=new.name, description=new.description,
            is_paused=new.is_paused, concurrency_limit=new.concurrency_limit, priority=priority, created=now,
        )
        events: list[catalogue.Event] = [created]
        if new.priority is not None:
            everyone = [*queues, reads.evolve_queue(None, created)]
            events += _priority_events(everyone, {queue_id: priority}, now, skip=queue_id)  # type: ignore[arg-type]
        view = reads.evolve_queue(None, created)
        assert view is not None
        return Decided(events, (pool, view))

    return await _on_pools(store, decide, clock)


async def ensure_queue_named(
    store: EventStore, queue_name: str, *, clock: Clock = system_clock
) -> tuple[WorkPoolView, WorkQueueView]:
    """The queue a work queue name alone places a deployment in, created when missing, as
    Prefect's ensure_work_queue_exists does: the queue of that name in the default agent pool
    (any pool's, the oldest, while there is no such pool); else a new queue there at priority 1
    (the pool, type prefect-agent, created first when missing); "default" is the pool's
    default queue.
    Decided in one step, so concurrent callers make one pool and one queue."""

    async def decide(tx: Tx, now: datetime) -> Decided[tuple[WorkPoolView, WorkQueueView]]:
        pool = await reads.pool_by_name_in(tx, DEFAULT_AGENT_POOL)
        found = await (reads.queue_by_name_in(tx, pool.id, queue_name) if pool is not None
                       else reads.queue_named_in(tx, queue_name))
        if found is not None:
            owner = pool or await reads.pool_in(tx, found.work_pool_id)
            if owner is not None:
                return Decided((), (owner, found))
        events: list[catalogue.Event] = []
        if pool is None:
            pool_id, default_id = uuid.uuid4(), uuid.uuid4()
            created = catalogue.WorkPoolCreated(
                work_pool_id=pool_id, name=DEFAULT_AGENT_POOL, type="prefect-agent", default_queue_id=default_id,
                created=now,
            )
            default = catalogue.WorkQueueCreated(
                work_queue_id=default_id, work_pool_id=pool_id, name=DEFAULT_QUEUE_NAME,
                description=DEFAULT_QUEUE_DESCRIPTION, priority=1, created=now,
            )
            events += [created, default]
            pool, queues = reads.evolve_pool(None, created), [reads.evolve_queue(None, default)]
        else:
            queues = await reads.queues_of_pool_in(tx, pool.id)
        assert pool is not None
        if queue_name == DEFAULT_QUEUE_NAME:
            default_queue = next((q for q in queues if q is not None and q.id == pool.default_queue_id), None)
            if default_queue is not None:
                return Decided(events, (pool, default_queue))
        # Prefect creates it with priority 1, ahead of the pool's other queues, which move down.
        queue = catalogue.WorkQueueCreated(
            work_queue_id=uuid.uuid4(), work_pool_id=pool.id, name=queue_name, description="", priority=1, created=now,
        )
        view = reads.evolve_queue(None, queue)
        assert view is not None
        others = [q for q in queues if q is not None]
        moves = _priority_events([*others, view], {view.id: 1}, now, skip=view.id)
        return Decided([*events, queue, *moves], (pool, view))

    return await _on_pools(store, decide, clock)


async def update_queue(
    store: EventStore, lookup: QueueLookup, changes: dict[str, Any], *, clock: Clock = system_clock
) -> bool:
    """Set the fields in ``changes``; False when ``lookup`` finds no queue. Raises QueueNameTaken
    for a rename to a name its pool has. Pausing or unpausing records the status it gives."""

    async def decide(tx: Tx, now: datetime) -> Decided[bool]:
        queue = await lookup(tx)
        if queue is None:
            return Decided((), False)
        queues = await reads.queues_of_pool_in(tx, queue.work_pool_id)
        name = changes.get("name")
        if name is not None and name != queue.name and any(q.name == name for q in queues):
            pool = await reads.pool_in(tx, queue.work_pool_id)
            raise QueueNameTaken(pool.name if pool is not None else "")
        events: list[catalogue.Event] = [catalogue.WorkQueueUpdated(work_queue_id=queue.id, changes=changes, updated=now)]
        if changes.get("priority") is not None:
            events += _priority_events(queues, {queue.id: changes["priority"]}, now, skip=queue.id)
        is_paused = changes.get("is_paused")
        if is_paused is not None:
            status = queue_status(is_paused, queue.last_polled, now)
            if status != queue.status:
                events.append(catalogue.WorkQueueStatusChanged(work_queue_id=queue.id, status=status, changed=now))
        return Decided(events, True)

    return await _on_pools(store, decide, clock)


async def delete_queue(store: EventStore, lookup: QueueLookup, *, clock: Clock = system_clock) -> bool:
    """Raises DefaultQueue for a pool's default queue; the rest of the pool's queues close up
    their priorities, and the queue's runs no longer name a queue."""
    deleted: list[UUID] = []

    async def decide(tx: Tx, now: datetime) -> Decided[bool]:
        queue = await lookup(tx)
        if queue is None:
            return Decided((), False)
        pool = await reads.pool_in(tx, queue.work_pool_id)
        if pool is not None and pool.default_queue_id == queue.id:
            raise DefaultQueue()
        rest = [q for q in await reads.queues_of_pool_in(tx, queue.work_pool_id) if q.id != queue.id]
        deleted[:] = [queue.id]
        return Decided([catalogue.WorkQueueDeleted(work_queue_id=queue.id, deleted=now), *_priority_events(rest, {}, now)], True)

    found = await _on_pools(store, decide, clock)
    if found:
        await flow_runs.clear_work_queue(store, deleted, clock=clock)
    return found


# --- status changes ----------------------------------------------------------------------------

async def record_statuses(
    store: EventStore, pools: Mapping[UUID, str], queues: Mapping[UUID, str], *, clock: Clock = system_clock
) -> list[catalogue.Event]:
    """Record the statuses given (pool or queue id -> status) that differ from the recorded
    ones, each once: a pool or queue already at its status, or gone, gets nothing. Returns the
    events appended."""
    if not pools and not queues:
        return []

    async def decide(tx: Tx, now: datetime) -> Decided[list[catalogue.Event]]:
        events: list[catalogue.Event] = []
        for pool_id, status in pools.items():
            pool = await reads.pool_in(tx, pool_id)
            if pool is not None and pool.status != status and not (pool.is_paused and status != PAUSED):
                events.append(catalogue.WorkPoolStatusChanged(work_pool_id=pool_id, status=status, changed=now))
        for queue_id, status in queues.items():
            queue = await reads.queue_in(tx, queue_id)
            if queue is not None and queue.status != status and not (queue.is_paused and status != PAUSED):
                events.append(catalogue.WorkQueueStatusChanged(work_queue_id=queue_id, status=status, changed=now))
        return Decided(events, events)

    return await _on_pools(store, decide, clock)


__all__ = [
    "DEFAULT_QUEUE_NAME", "DefaultQueue", "NOT_READY", "NewWorkPool", "NewWorkQueue", "PoolNameTaken", "PoolNotFound",
    "QueueLookup", "QueueNameTaken", "create_pool", "create_queue", "delete_pool", "delete_queue", "free_priority",
    "queue_by_id", "queue_by_name", "record_statuses", "reprioritised", "reserved", "update_pool", "update_queue",
]
