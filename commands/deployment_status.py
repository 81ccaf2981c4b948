"""Deployment statuses, Prefect's READY / NOT_READY, recorded as events on each deployment's
stream (DeploymentStatusChanged) and decided there, so a change is recorded once however many
servers notice it.

As in Prefect 3.8.8 (models/deployments.py mark_deployments_ready, services/foreman.py):

* A poll makes a deployment READY: a runner's /deployments/get_scheduled_flow_runs (which also
  records the deployment's own last_polled, at most every POLL_RECORD_SECONDS, on the stream
  runner-polls-<id>, as a pool's polls have a stream of their own), or a worker's
  poll of the work queue the deployment sends its runs to (the queue's last_polled is recorded
  by commands/workers.record_poll, which calls ``queues_polled`` when it records one).
* The status service (commands/workers.check_statuses, Prefect's foreman) makes a READY
  deployment NOT_READY when neither it nor its queue was polled within the last 60 s.

A new deployment is NOT_READY until its first poll. Pausing a deployment, or its queue or pool
going NOT_READY, does not change its status (Prefect's neither).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections import deployments as reads
from runlog.projections import work_pools as pool_reads
from runlog.projections.deployments import DeploymentView, evolve_deployment, stream_of
from runlog.projections.work_pools import NOT_READY, READY
from runlog.schema import events as catalogue
from runlog.schema import streams

from .clock import Clock, system_clock
from .entities import EntityStream
from .executor import Decided, Executor, Versioned, load_versioned, record, versioned
from .work_pool_status import deployment_status

POLL_RECORD_SECONDS = 5.0
"""A deployment's own poll is recorded at most this often (as a queue's: commands/workers.py)."""

_DEPLOYMENTS = EntityStream(stream_of, reads.get, evolve_deployment, versioned=True)


def _polled_lately(last_polled: datetime | None, now: datetime) -> bool:
    return last_polled is not None and 0 <= (now - last_polled).total_seconds() < POLL_RECORD_SECONDS


async def _make_ready(store: EventStore, deployment_id: UUID, *, clock: Clock) -> int:
    """READY the deployment if it is not. Returns the number of events appended (0 or 1)."""
    count = 0

    def changed(view: DeploymentView, now: datetime) -> list[catalogue.Event]:
        nonlocal count
        if view.status == READY:
            return []
        count = 1
        return [catalogue.DeploymentStatusChanged(deployment_id=view.id, status=READY, changed=now)]

    await _DEPLOYMENTS.if_exists(store, deployment_id, changed, clock=clock)
    return count


async def deployments_polled(store: EventStore, deployment_ids: Sequence[UUID], *, clock: Clock = system_clock) -> None:
    """A runner polled these deployments (/deployments/get_scheduled_flow_runs): record their
    polls (on their runner-polls streams, with no expected version: a poll decides nothing)
    and READY those that are not. Deployments polled lately and READY cost one read."""
    now = clock()
    views = await reads.get_many(store, list(dict.fromkeys(deployment_ids)))
    # The polls due are appended at once, so the store commits them in one batch: a runner
    # serving many deployments waits for one commit, not one per deployment.
    await asyncio.gather(*(
        record(store, streams.runner_polls(view.id), [catalogue.DeploymentPolled(deployment_id=view.id, polled=now)])
        for view in views.values() if not _polled_lately(view.last_polled, now)
    ))
    for view in views.values():
        if view.status != READY:
            await _make_ready(store, view.id, clock=lambda: now)


async def queues_polled(
    store: EventStore, pool_name: str, queue_names: Iterable[str], *, clock: Clock = system_clock
) -> int:
    """A worker polled these queues of the pool: READY their NOT_READY deployments. Returns the
    number of deployments made READY."""
    now = clock()
    waking = await reads.on_queues_with_status(store, pool_name, sorted(set(queue_names)), NOT_READY)
    count = 0
    for view in waking:
        count += await _make_ready(store, view.id, clock=lambda: now)
    return count


async def check_deployment_statuses(store: EventStore, now: datetime) -> int:
    """One round of the status service for deployments: NOT_READY every READY deployment that
    neither it nor its queue polled within the last 60 s. Returns the number made NOT_READY."""
    count = 0
    for view in await reads.with_status(store, READY):
        if deployment_status([view.last_polled, await _queue_polled(store, view)], now) == NOT_READY:
            count += await _make_not_ready(store, view.id, now)
    return count


async def _queue_polled(store: EventStore, view: DeploymentView) -> datetime | None:
    if not (view.work_pool_name and view.work_queue_name):
        return None
    key = (view.work_pool_name, view.work_queue_name)
    queue = (await pool_reads.queues_named(store, [key])).get(key)
    return queue.last_polled if queue is not None else None


async def _make_not_ready(store: EventStore, deployment_id: UUID, now: datetime) -> int:
    stream = stream_of(deployment_id)
    queue_polled: datetime | None = None

    async def load() -> Versioned[DeploymentView]:
        nonlocal queue_polled
        state = await load_versioned(store, stream, lambda: reads.get(store, deployment_id))
        # Read again with the view: a poll of the queue since the sweep's read keeps it READY.
        queue_polled = await _queue_polled(store, state.view) if state.view is not None else None
        return state

    def decide(state: Versioned[DeploymentView] | None, at: datetime) -> Decided[int]:
        view = state.view if state is not None else None
        if view is None or view.status != READY or deployment_status([view.last_polled, queue_polled], at) == READY:
            return Decided((), 0)
        return Decided([catalogue.DeploymentStatusChanged(deployment_id=view.id, status=NOT_READY, changed=at)], 1)

    outcome = await Executor(store, clock=lambda: now).execute(
        stream, load=load, decide=decide, evolve=versioned(evolve_deployment), version=lambda state: state.version,
    )
    return outcome.result


__all__ = ["POLL_RECORD_SECONDS", "check_deployment_statuses", "deployments_polled", "queues_polled"]
