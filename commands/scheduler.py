"""The scheduler (Prefect's Scheduler and RecentDeploymentsScheduler) as a service of the runner,
and the removal of a deployment's Scheduled runs when its schedules change.

A round takes the unpaused deployments with an active schedule, in batches by id, reads the
future Scheduled runs the scheduler made for them (their idempotency key names the schedule),
asks commands/schedules.plan_runs which times each active schedule still needs, and creates
those runs through flow_runs.create, each with Prefect's idempotency key "scheduled
<deployment> <schedule> <time>". Runs are created with a key, so their ids derive from it
(commands/run_keys.py): a run per deployment, schedule and time is created once however often
and by however many processes the rounds go, and a run deleted (its schedule changed) can be
created again under the key's next generation.

The service is one singleton: every ``recent_interval`` (5 s) it looks at the deployments that
changed (or whose schedules changed) in the last few seconds, and every ``interval`` (60 s) at
all of them, Prefect's two cadences.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

from runlog.eventstore import EventStore
from runlog.projections import deployments as deployment_reads
from runlog.projections import run_sweeps
from runlog.projections.cache import ViewCache
from runlog.projections.deployments import DeploymentView, ScheduleView
from runlog.projections.runs import FlowRunView
from runlog.projections.runs_writer import cache_key
from runlog.schema import events as catalogue
from runlog.schema.events import StateType

from . import flow_runs, schedules
from .flow_runs import NewFlowRun, created_by_schedule, in_chunks
from .runner import Service
from .schedules import DEFAULT_LIMITS, SchedulerLimits

log = structlog.get_logger("runlog.scheduler")

LOOP_SECONDS = 60.0
"""Prefect's scheduler.loop_seconds: a pass over every deployment."""
RECENT_LOOP_SECONDS = 5.0
"""Prefect's scheduler.recent_deployments_loop_seconds: a pass over the deployments just changed."""
DEPLOYMENT_BATCH = 100
"""Prefect's scheduler.deployment_batch_size."""
CREATE_CHUNK = 64
"""Runs created at once: they share the store's group commit."""


def as_schedule(stored: dict[str, Any]) -> schedules.Schedule:
    """A stored schedule (commands/deployment_schedules.normalized_schedule) as the pure maths' shape."""
    if "interval" in stored:
        return schedules.IntervalSchedule(
            interval=timedelta(seconds=float(stored["interval"])),
            anchor_date=datetime.fromisoformat(stored["anchor_date"]), timezone=stored.get("timezone"),
        )
    if "cron" in stored:
        return schedules.CronSchedule(
            cron=stored["cron"], timezone=stored.get("timezone"), day_or=stored.get("day_or", True),
        )
    return schedules.RRuleSchedule(rrule=stored["rrule"], timezone=stored.get("timezone") or "UTC")


def scheduled_run(deployment: DeploymentView, schedule: ScheduleView, moment: datetime) -> NewFlowRun:
    """The run Prefect's scheduler creates for one time of a deployment's schedule."""
    return NewFlowRun(
        flow_id=deployment.flow_id,
        state=schedules.scheduled_state(moment),
        parameters={**deployment.parameters, **schedule.parameters},
        idempotency_key=schedules.scheduled_run_key(deployment.id, schedule.id, moment),
        tags=schedules.scheduled_run_tags(deployment.tags),
        labels={**deployment.labels, "prefect.deployment.id": str(deployment.id)},
        deployment_id=deployment.id, deployment_version=deployment.version,
        work_pool_name=deployment.work_pool_name, work_queue_name=deployment.work_queue_name,
        job_variables={}, auto_scheduled=True,
        created_by=created_by_schedule(schedule.id, schedule.slug, schedule.schedule),
    )


def _schedule_of_key(key: str | None) -> str | None:
    parts = (key or "").split(" ", 3)
    return parts[2] if len(parts) == 4 and parts[0] == "scheduled" else None


def plan(
    deployments: Sequence[DeploymentView], ahead: Sequence[tuple[UUID, str, datetime]], now: datetime,
    limits: SchedulerLimits = DEFAULT_LIMITS,
) -> list[NewFlowRun]:
    """The runs to create for ``deployments``, knowing their future auto-scheduled runs ``ahead``."""
    future: dict[tuple[UUID, str], list[datetime]] = defaultdict(list)
    for deployment_id, key, moment in ahead:
        schedule_id = _schedule_of_key(key)
        if schedule_id is not None:
            future[(deployment_id, schedule_id)].append(moment)
    wanted: list[NewFlowRun] = []
    for deployment in deployments:
        if deployment.paused:
            continue
        for schedule in deployment.schedules:
            if not schedule.active:
                continue
            try:
                times = schedules.plan_runs(
                    as_schedule(schedule.schedule), now, future_runs=future[(deployment.id, str(schedule.id))],
                    limits=limits,
                )
            except Exception:  # noqa: BLE001 - one broken schedule must not stop the others (as Prefect)
                log.exception("schedule_failed", deployment_id=str(deployment.id), schedule_id=str(schedule.id))
                continue
            wanted += [scheduled_run(deployment, schedule, moment) for moment in times]
    return wanted


async def schedule_deployments(
    store: EventStore, now: datetime, *, updated_since: datetime | None = None,
    limits: SchedulerLimits = DEFAULT_LIMITS, cache: ViewCache | None = None, batch: int = DEPLOYMENT_BATCH,
) -> int:
    """One pass: the runs every unpaused deployment's active schedules still need (only the
    deployments changed since ``updated_since`` when given); how many runs were created."""
    created = 0
    after = ""
    while True:
        deployments = await deployment_reads.schedulable(store, after=after, limit=batch, updated_since=updated_since)
        if not deployments:
            break
        created += await schedule_batch(store, deployments, now, limits=limits, cache=cache)
        if len(deployments) < batch:
            break
        after = str(deployments[-1].id)
    if created:
        log.info("runs_scheduled", count=created, recent_only=updated_since is not None)
    return created


async def schedule_batch(
    store: EventStore, deployments: Sequence[DeploymentView], now: datetime, *,
    limits: SchedulerLimits = DEFAULT_LIMITS, cache: ViewCache | None = None,
) -> int:
    """Create the runs ``deployments`` (as read) need; how many were created.

    A deployment changed while its runs were being created had its stale runs deleted by the
    change's command, perhaps before some of these were created: those are deleted again as
    that change would have, and the next pass creates the runs of the deployment as it is now."""
    ahead = await run_sweeps.auto_scheduled_ahead(store, [d.id for d in deployments], now)
    wanted = plan(deployments, ahead, now, limits)
    created = 0
    for start in range(0, len(wanted), CREATE_CHUNK):
        created += sum(await _gather_creations(store, wanted[start : start + CREATE_CHUNK], now, cache))
    if created:
        scheduled = {run.deployment_id for run in wanted}
        read = {d.id: d for d in deployments if d.id in scheduled}
        current = await deployment_reads.get_many(store, list(read))
        for deployment_id, before in read.items():
            after = current.get(deployment_id)
            if after == before:
                continue
            log.info("deployment_changed_while_scheduling", deployment_id=str(deployment_id))
            if after is None:
                await delete_scheduled_runs(store, deployment_id, now, auto_scheduled_only=False, cache=cache)
            else:
                await delete_scheduled_runs(store, deployment_id, now, future_only=not after.paused, cache=cache)
    return created


async def _gather_creations(
    store: EventStore, runs: Sequence[NewFlowRun], now: datetime, cache: ViewCache | None,
) -> list[bool]:
    async def create(run: NewFlowRun) -> bool:
        try:
            _view, created = await flow_runs.create(store, run, cache=cache, clock=lambda: now)
        except Exception:  # noqa: BLE001 - e.g. the deployment's flow deleted meanwhile; next round sees it
            log.exception("scheduled_run_failed", deployment_id=str(run.deployment_id), key=run.idempotency_key)
            return False
        return created

    return list(await asyncio.gather(*(create(run) for run in runs)))


def scheduler_service(
    store: EventStore, *, interval: float = LOOP_SECONDS, recent_interval: float = RECENT_LOOP_SECONDS,
    limits: SchedulerLimits = DEFAULT_LIMITS, cache: ViewCache | None = None,
) -> Service:
    """The scheduler on the runner: a recent pass every ``recent_interval``, a full pass every
    ``interval`` (and first, whenever this process starts leading)."""
    last_full: list[datetime | None] = [None]
    recent_window = timedelta(seconds=2 * recent_interval + 1)  # as Prefect, a little wider than the loop

    async def step(now: datetime) -> int:
        previous = last_full[0]
        if previous is None or not previous <= now < previous + timedelta(seconds=interval):
            last_full[0] = now
            return await schedule_deployments(store, now, limits=limits, cache=cache)
        return await schedule_deployments(store, now, updated_since=now - recent_window, limits=limits, cache=cache)

    return Service(name="scheduler", step=step, interval=min(recent_interval, interval))


# -- removing runs of a changed schedule ---------------------------------------------------------


async def delete_scheduled_runs(
    store: EventStore, deployment_id: UUID, now: datetime, *, auto_scheduled_only: bool = True,
    future_only: bool = False, cache: ViewCache | None = None,
) -> int:
    """Delete the deployment's runs still Scheduled that never ran (not those awaiting a
    concurrency slot), as Prefect's ``_delete_scheduled_runs``: only the scheduler's when
    ``auto_scheduled_only``, only those due after ``now`` when ``future_only``. Each deletion is
    decided against the run as it is then, so a run a worker took meanwhile stays. How many went."""

    def doomed(view: FlowRunView) -> bool:
        state = view.state
        return (
            state is not None and state.type is StateType.SCHEDULED and state.name != "AwaitingConcurrencySlot"
            and view.run_count == 0 and view.deployment_id == deployment_id
            and (view.auto_scheduled or not auto_scheduled_only)
            and (not future_only or (view.next_scheduled_start_time is not None
                                     and view.next_scheduled_start_time > now))
        )

    targets = [view.id for view in await run_sweeps.scheduled_of_deployment(store, deployment_id) if doomed(view)]
    deleted: list[UUID] = []

    async def drop(run_id: UUID) -> None:
        def events(view: FlowRunView, _now: datetime) -> list[catalogue.Event]:
            return [catalogue.FlowRunDeleted(flow_run_id=run_id)] if doomed(view) else []

        def decided(view: FlowRunView, when: datetime) -> list[catalogue.Event]:
            chosen = events(view, when)
            if chosen:
                deleted.append(run_id)
            return chosen

        await flow_runs.FLOW_RUNS.if_exists(store, run_id, decided, cache=cache, clock=lambda: now)
        if cache is not None:
            cache.drop(cache_key("flow_runs", run_id))

    await in_chunks(targets, drop)
    count = len(set(deleted))
    if count:
        log.info("scheduled_runs_deleted", deployment_id=str(deployment_id), count=count)
    return count


__all__ = [
    "DEPLOYMENT_BATCH", "LOOP_SECONDS", "RECENT_LOOP_SECONDS", "as_schedule", "delete_scheduled_runs", "plan",
    "schedule_batch", "schedule_deployments", "scheduled_run", "scheduler_service",
]
