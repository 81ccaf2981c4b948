"""Late runs (Prefect's MarkLateRuns) as a background service of the runner.

A run still named "Scheduled" whose scheduled start lies more than ``after_seconds`` (15 s by
default) in the past is proposed the state Late: type SCHEDULED, name "Late", its scheduled time
kept. The orchestration rules decide it like any other transition (a run that a worker moved on
in the meantime, or one already Late, is refused), so the service only ever proposes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from runlog.eventstore import EventStore
from runlog.projections import run_sweeps, runs_writer
from runlog.projections.cache import ViewCache
from runlog.schema.events import StateDetails, StateType

from . import flow_runs
from .orchestration import ProposedState, Status
from .runner import Service

log = structlog.get_logger("runlog.late_runs")

LOOP_SECONDS = 5.0
AFTER_SECONDS = 15.0
"""Prefect's defaults: checked every 5 s, a run is late 15 s after its scheduled time."""
CHUNK = 64
"""Runs marked at once (as flow_runs.DELETE_CHUNK)."""


async def mark_late_runs(
    store: EventStore, now: datetime, *, after_seconds: float = AFTER_SECONDS, cache: ViewCache | None = None,
) -> int:
    """One round: propose Late to every overdue Scheduled run (up to Prefect's batch of 400);
    how many became Late."""
    candidates = await run_sweeps.late_candidates(store, now - timedelta(seconds=after_seconds))

    async def mark(run_id: UUID) -> bool:
        run = await runs_writer.get_flow_run(store, run_id)
        if run is None or run.state is None:
            return False
        late = ProposedState(
            type=StateType.SCHEDULED, name="Late",
            state_details=StateDetails(scheduled_time=run.next_scheduled_start_time),
        )
        # CoreFlowPolicy on SCHEDULED -> SCHEDULED "Late" runs the rules of Prefect's
        # MarkLateRunsPolicy (EnsureOnlyScheduledFlowsMarkedLate; deployment concurrency aside).
        outcome = await flow_runs.set_state(store, run_id, late, cache=cache, clock=lambda: now)
        return outcome is not None and outcome[1].status is Status.ACCEPT

    marked = 0
    # Runs are separate streams: a chunk of them in flight at once shares the store's group commit.
    for start in range(0, len(candidates), CHUNK):
        marked += sum(await asyncio.gather(*(mark(run_id) for run_id in candidates[start : start + CHUNK])))
    if marked:
        log.info("runs_marked_late", count=marked)
    return marked


def late_runs_service(
    store: EventStore, *, interval: float = LOOP_SECONDS, after_seconds: float = AFTER_SECONDS,
    cache: ViewCache | None = None,
) -> Service:
    async def step(now: datetime) -> int:
        return await mark_late_runs(store, now, after_seconds=after_seconds, cache=cache)

    return Service(name="late_runs", step=step, interval=interval)


__all__ = ["AFTER_SECONDS", "LOOP_SECONDS", "late_runs_service", "mark_late_runs"]
