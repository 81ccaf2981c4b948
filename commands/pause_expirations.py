"""Pause expirations (Prefect's FailExpiredPauses) as a background service of the runner.

A Paused run whose ``pause_timeout`` has passed is forced to Failed with Prefect's message; a
run resumed or cancelled in the meantime is left alone (the state read just before is checked
again by the executor's expected version, so a resume that lands first wins).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from runlog.eventstore import EventStore
from runlog.projections import run_sweeps
from runlog.projections.cache import ViewCache
from runlog.projections.runs import FlowRunView
from runlog.schema.events import StateType

from . import flow_runs
from .orchestration import ProposedState, Status
from .orchestration.common import aware
from .runner import Service

log = structlog.get_logger("runlog.pause_expirations")

LOOP_SECONDS = 5.0
"""Prefect's default interval."""
EXPIRED_MESSAGE = "The flow was paused and never resumed."


def pause_expired(run: FlowRunView, now: datetime) -> bool:
    """Whether the run is Paused with a pause timeout before ``now``."""
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        return False
    timeout = state.state_details.pause_timeout
    return timeout is not None and aware(timeout) < now


async def fail_expired_pauses(store: EventStore, now: datetime, *, cache: ViewCache | None = None) -> int:
    """One round: fail every Paused run whose pause timed out; how many were failed."""
    failed = 0
    for run in await run_sweeps.runs_in_state(store, StateType.PAUSED.value):
        if not pause_expired(run, now):
            continue
        expired_state_id = run.state.id if run.state is not None else None

        # Decided against the run as it is when the append happens: only the very pause that
        # was seen expired is failed (Prefect re-reads the run inside its transaction).
        outcome = await flow_runs.set_state(
            store, run.id, ProposedState(type=StateType.FAILED, message=EXPIRED_MESSAGE), force=True,
            cache=cache, clock=lambda: now, only_if=lambda view: view.state is not None
            and view.state.id == expired_state_id,
        )
        if outcome is not None and outcome[1].status is Status.ACCEPT:
            failed += 1
    if failed:
        log.info("expired_pauses_failed", count=failed)
    return failed


def pause_expirations_service(
    store: EventStore, *, interval: float = LOOP_SECONDS, cache: ViewCache | None = None,
) -> Service:
    async def step(now: datetime) -> int:
        return await fail_expired_pauses(store, now, cache=cache)

    return Service(name="pause_expirations", step=step, interval=interval)


__all__ = ["EXPIRED_MESSAGE", "LOOP_SECONDS", "fail_expired_pauses", "pause_expirations_service", "pause_expired"]
