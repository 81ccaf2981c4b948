"""Workers' heartbeats, workers' deletion, polls of a pool's queues, and the status service
(Prefect's foreman) that records each status change once.

Cost of a heartbeat. Every heartbeat is an event (DESIGN.md: a heartbeat is a change of state,
and Prefect shows last_heartbeat_time), on the worker's own stream, so heartbeats of different
workers never contend and one worker's are ordered by its stream's version. A heartbeat that
changes nothing else is one read of the worker's row and stream version and one append that
writes one row; bench/bench_heartbeats.py measures it. Only a heartbeat that brings a worker
ONLINE, or its pool to READY, writes more (a status event; the pool's on the "work-pools"
stream, decided there so it is recorded once).

Polls (get_scheduled_flow_runs, every 10 s per worker) are events on the pool's polls stream,
appended with no expected version: a poll is a fact that decides nothing. A poll that finds a
queue not READY records the queue READY on the "work-pools" stream. A queue polled less than
POLL_RECORD_SECONDS ago (by this worker or another one) is not recorded again: its last_polled
only has to tell READY (polled within 60 s) from NOT_READY, and an append in every poll put a
write, contending with the runs' own, into the answer of the call workers make most.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import structlog

from runlog.eventstore import EventStore
from runlog.projections import work_pools as reads
from runlog.projections.work_pools import NOT_READY, OFFLINE, ONLINE, READY, WorkerView, WorkPoolView, WorkQueueView
from runlog.schema import events as catalogue
from runlog.schema import streams

from . import deployment_status
from .clock import Clock, system_clock
from .executor import Decided, Executor, Versioned, load_versioned, record
from .runner import Service
from .work_pool_status import pool_status, queue_status, worker_view_status
from .work_pools import PoolNotFound, record_statuses

log = structlog.get_logger("runlog.workers")

POLL_RECORD_SECONDS = 5.0
"""A queue's poll is recorded at most this often; last_polled lags a poll by at most as much."""

_WORKER_NAMESPACE = uuid.UUID("6f6b1b0e-5d1e-4c55-9d0a-8a4c6f0f3a11")

FOREMAN_INTERVAL_SECONDS = 15.0
"""How often the status service looks for workers, pools and queues whose status has changed
(Prefect's foreman runs every 15 s; RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS changes it)."""


def worker_id(pool_id: UUID, name: str) -> UUID:
    """A worker's id, derived from its pool and name, so that a heartbeat needs no lookup."""
    return uuid.uuid5(_WORKER_NAMESPACE, f"{pool_id}/{name}")


def _fold(state: Versioned[WorkerView] | None, event: object, version: int) -> Versioned[WorkerView]:
    return Versioned(reads.evolve_worker(state.view if state is not None else None, event), version)


async def heartbeat(
    store: EventStore, pool_name: str, name: str, interval_seconds: int | None, *, clock: Clock = system_clock
) -> WorkerView:
    """Record a heartbeat of the worker ``name`` in the pool (creating the worker on its first),
    its coming ONLINE when it was not, and the pool's becoming READY when it was NOT_READY.
    Raises PoolNotFound."""
    pool = await reads.get_pool_by_name(store, pool_name)
    if pool is None:
        raise PoolNotFound(pool_name)
    stream = streams.worker(pool.id, name)
    wid = worker_id(pool.id, name)

    def decide(state: Versioned[WorkerView] | None, now: datetime) -> Decided[None]:
        view = state.view if state is not None else None
        events: list[catalogue.Event] = [catalogue.WorkerHeartbeat(
            worker_id=wid, work_pool_id=pool.id, name=name, heartbeat_interval_seconds=interval_seconds, occurred=now,
        )]
        if view is None or view.status != ONLINE:
            events.append(catalogue.WorkerStatusChanged(
                worker_id=wid, work_pool_id=pool.id, name=name, status=ONLINE, changed=now,
            ))
        return Decided(events)

    outcome = await Executor(store, clock=clock).execute(
        stream, load=lambda: load_versioned(store, stream, lambda: reads.get_worker(store, pool.id, name)),
        decide=decide, evolve=_fold, version=lambda state: state.version,
    )
    if pool.status == NOT_READY and not pool.is_paused and pool_status(pool.type, False, [ONLINE]) == READY:
        await record_statuses(store, {pool.id: READY}, {}, clock=clock)
    assert outcome.view is not None and outcome.view.view is not None
    return outcome.view.view


async def delete_worker(store: EventStore, pool_name: str, name: str, *, clock: Clock = system_clock) -> bool:
    """False when the pool has no worker of that name. Raises PoolNotFound."""
    pool = await reads.get_pool_by_name(store, pool_name)
    if pool is None:
        raise PoolNotFound(pool_name)
    stream = streams.worker(pool.id, name)

    def decide(state: Versioned[WorkerView] | None, _now: datetime) -> Decided[bool]:
        view = state.view if state is not None else None
        if view is None:
            return Decided((), False)
        return Decided([catalogue.WorkerDeleted(worker_id=view.id, work_pool_id=pool.id, name=name)], True)

    outcome = await Executor(store, clock=clock).execute(
        stream, load=lambda: load_versioned(store, stream, lambda: reads.get_worker(store, pool.id, name)),
        decide=decide, evolve=_fold, version=lambda state: state.version,
    )
    return outcome.result


async def record_poll(
    store: EventStore, pool: WorkPoolView, queues: Sequence[WorkQueueView], *, clock: Clock = system_clock
) -> None:
    """Mark ``queues`` polled now, and READY those that were NOT_READY (paused ones stay PAUSED)."""
    now = clock()
    queues = [q for q in queues if q.status == NOT_READY or not _polled_lately(q.last_polled, now)]
    if not queues:
        return
    await record(store, streams.work_pool_polls(pool.id), [
        catalogue.WorkQueuesPolled(work_pool_id=pool.id, work_queue_ids=[q.id for q in queues], polled=now),
    ])
    waking = {q.id: READY for q in queues if q.status == NOT_READY and not q.is_paused}
    await record_statuses(store, {}, waking, clock=lambda: now)
    # As Prefect's mark_deployments_ready: the deployments sending runs to these queues are READY.
    await deployment_status.queues_polled(store, pool.name, [q.name for q in queues], clock=lambda: now)


def _polled_lately(last_polled: datetime | None, now: datetime) -> bool:
    return last_polled is not None and 0 <= (now - last_polled).total_seconds() < POLL_RECORD_SECONDS


# --- the status service ------------------------------------------------------------------------

async def check_statuses(store: EventStore, now: datetime) -> int:
    """One round of the status service: record every worker gone OFFLINE, and every pool,
    queue and deployment whose status by the rules (work_pool_status.py) differs from the
    recorded one.
    Returns the number of status events appended."""
    async with store.reading() as tx:
        online = await reads.online_workers(tx)
        pools = await reads.all_pools(tx)
        queues = await reads.all_queues(tx)
        workers = {p.id: await reads.workers_of_pool_in(tx, p.id) for p in pools}
    count = 0
    for worker in online:
        if worker_view_status(worker, now) == OFFLINE:
            count += await _worker_offline(store, worker, now)
    pool_changes: dict[UUID, str] = {}
    for pool in pools:
        status = pool_status(pool.type, pool.is_paused, (worker_view_status(w, now) for w in workers[pool.id]))
        if status is not None and status != pool.status:
            pool_changes[pool.id] = status
    queue_changes = {
        q.id: status for q in queues if (status := queue_status(q.is_paused, q.last_polled, now)) != q.status
    }
    count += len(await record_statuses(store, pool_changes, queue_changes, clock=lambda: now))
    count += await deployment_status.check_deployment_statuses(store, now)
    return count


async def _worker_offline(store: EventStore, worker: WorkerView, now: datetime) -> int:
    stream = streams.worker(worker.work_pool_id, worker.name)

    def decide(state: Versioned[WorkerView] | None, at: datetime) -> Decided[int]:
        view = state.view if state is not None else None
        # Decided against the stream as it is now: a heartbeat since the read keeps it ONLINE.
        if view is None or view.status != ONLINE or worker_view_status(view, at) == ONLINE:
            return Decided((), 0)
        return Decided([catalogue.WorkerStatusChanged(
            worker_id=view.id, work_pool_id=view.work_pool_id, name=view.name, status=OFFLINE, changed=at,
        )], 1)

    outcome = await Executor(store, clock=lambda: now).execute(
        stream, load=lambda: load_versioned(store, stream, lambda: reads.get_worker(store, worker.work_pool_id, worker.name)),
        decide=decide, evolve=_fold, version=lambda state: state.version,
    )
    return outcome.result


def work_pool_status_service(store: EventStore, *, interval: float = FOREMAN_INTERVAL_SECONDS) -> Service:
    async def step(now: datetime) -> int:
        changed = await check_statuses(store, now)
        if changed:
            log.info("work_pool_statuses_changed", count=changed)
        return changed

    return Service(name="work_pool_status", step=step, interval=interval)


__all__ = [
    "FOREMAN_INTERVAL_SECONDS", "check_statuses", "delete_worker", "heartbeat", "record_poll", "work_pool_status_service",
    "worker_id",
]
