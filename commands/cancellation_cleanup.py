"""Cancellation cleanup (Prefect's CancellationCleanup services) as one background service.

Each round does what Prefect 3.8.8's three perpetual functions do:

- the task runs of a flow run Cancelled in the last day that are still open are forced to
  Cancelled ("The parent flow run was cancelled.");
- an open subflow run whose containing flow run (through its parent task run) is Cancelled is
  proposed Cancelling when it has a deployment (a worker must tear its infrastructure down) and
  Cancelled when it has none, through the orchestration rules;
- a run left Cancelling for longer than ``cancelling_timeout`` (300 s) is proposed Cancelled
  with Prefect's timeout message, through the orchestration rules.

A run that has no infrastructure never waits for the timeout: the rules themselves turn a
Cancelling proposal for a Scheduled run without an infrastructure pid, a Resuming run or a
suspended run into Cancelled (BypassCancellingFlowRunsWithNoInfra). Prefect also queues a
teardown message for the run's worker after the timeout; runlog has no worker channel yet, so
the state change is all this records.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from runlog.eventstore import EventStore
from runlog.projections import run_sweeps
from runlog.projections.cache import ViewCache
from runlog.projections.runs import FlowRunView
from runlog.schema.events import StateType

from . import flow_runs, task_runs
from .orchestration import ProposedState, Status
from .orchestration.common import aware
from .runner import Service

log = structlog.get_logger("runlog.cancellation_cleanup")

LOOP_SECONDS = 20.0
CANCELLING_TIMEOUT_SECONDS = 300.0
"""Prefect's defaults: a round every 20 s; a run may stay Cancelling for 5 minutes."""
CANCELLED_PARENTS_LOOKBACK = timedelta(days=1)
"""Only flow runs cancelled this recently have their task runs swept (Prefect's window)."""
PARENT_CANCELLED_MESSAGE = "The parent flow run was cancelled."
CANCELLING_TIMEOUT_MESSAGE = "Flow run cancellation timed out; marked this flow run as Cancelled."


def subflow_target(subflow: FlowRunView) -> StateType | None:
    """The state a subflow of a cancelled run is proposed: Cancelling with a deployment (its
    worker tears it down), Cancelled without; None when it is already Cancelling with one."""
    if subflow.deployment_id is not None:
        if subflow.state is not None and subflow.state.type is StateType.CANCELLING:
            return None
        return StateType.CANCELLING
    return StateType.CANCELLED


def cancelling_timed_out(run: FlowRunView, now: datetime, timeout_seconds: float) -> bool:
    state = run.state
    if state is None or state.type is not StateType.CANCELLING:
        return False
    return aware(state.timestamp) + timedelta(seconds=timeout_seconds) <= now


async def cancel_child_task_runs(store: EventStore, now: datetime, *, cache: ViewCache | None = None) -> int:
    cancelled = 0
    for flow_run_id in await run_sweeps.cancelled_since(store, now - CANCELLED_PARENTS_LOOKBACK):
        for task_run_id in await run_sweeps.open_task_runs(store, flow_run_id):
            outcome = await task_runs.set_state(
                store, task_run_id, ProposedState(type=StateType.CANCELLED, message=PARENT_CANCELLED_MESSAGE),
                force=True, cache=cache, clock=lambda: now,
            )
            if outcome is not None and outcome[1].status is Status.ACCEPT:
                cancelled += 1
    return cancelled


async def cancel_subflows(store: EventStore, now: datetime, *, cache: ViewCache | None = None) -> int:
    changed = 0
    for subflow in await run_sweeps.subflows_of_cancelled_runs(store):
        target = subflow_target(subflow)
        if target is None:
            continue
        outcome = await flow_runs.set_state(
            store, subflow.id, ProposedState(type=target, message=PARENT_CANCELLED_MESSAGE),
            cache=cache, clock=lambda: now,
        )
        if outcome is not None and outcome[1].status is Status.ACCEPT:
            changed += 1
    return changed


async def cancel_timed_out_cancelling(
    store: EventStore, now: datetime, *, timeout_seconds: float = CANCELLING_TIMEOUT_SECONDS,
    cache: ViewCache | None = None,
) -> int:
    cancelled = 0
    for run in await run_sweeps.runs_in_state(store, StateType.CANCELLING.value):
        if not cancelling_timed_out(run, now, timeout_seconds):
            continue
        seen = run.state.id if run.state is not None else None
        outcome = await flow_runs.set_state(
            store, run.id, ProposedState(type=StateType.CANCELLED, message=CANCELLING_TIMEOUT_MESSAGE),
            cache=cache, clock=lambda: now,
            # Only the Cancelling state that was seen timing out: a run that moved on is left alone.
            only_if=lambda view: view.state is not None and view.state.id == seen,
        )
        if outcome is not None and outcome[1].status is Status.ACCEPT:
            cancelled += 1
    return cancelled


async def clean_up_cancellations(
    store: EventStore, now: datetime, *, cancelling_timeout_seconds: float = CANCELLING_TIMEOUT_SECONDS,
    cache: ViewCache | None = None,
) -> dict[str, int]:
    """One round of all three sweeps; how many runs each changed."""
    done = {
        "task_runs_cancelled": await cancel_child_task_runs(store, now, cache=cache),
        "subflows_cancelled": await cancel_subflows(store, now, cache=cache),
        "cancelling_timed_out": await cancel_timed_out_cancelling(
            store, now, timeout_seconds=cancelling_timeout_seconds, cache=cache,
        ),
    }
    if any(done.values()):
        log.info("cancellations_cleaned_up", **done)
    return done


def cancellation_cleanup_service(
    store: EventStore, *, interval: float = LOOP_SECONDS,
    cancelling_timeout_seconds: float = CANCELLING_TIMEOUT_SECONDS, cache: ViewCache | None = None,
) -> Service:
    async def step(now: datetime) -> dict[str, int]:
        return await clean_up_cancellations(
            store, now, cancelling_timeout_seconds=cancelling_timeout_seconds, cache=cache,
        )

    return Service(name="cancellation_cleanup", step=step, interval=interval)


__all__ = [
    "CANCELLING_TIMEOUT_MESSAGE", "CANCELLING_TIMEOUT_SECONDS", "LOOP_SECONDS", "PARENT_CANCELLED_MESSAGE",
    "cancel_child_task_runs", "cancel_subflows", "cancel_timed_out_cancelling", "cancellation_cleanup_service",
    "cancelling_timed_out", "clean_up_cancellations", "subflow_target",
]
