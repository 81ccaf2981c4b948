"""The time-based services' rounds: how long one late-runs round takes to mark a batch late,
and how long a round takes when there is nothing to do among many scheduled runs.

    python -m bench.bench_services [--backend sqlite|postgres|both] [--late N] [--idle N] [--postgres-url URL]

Creates N Scheduled runs a minute overdue and times one ``mark_late_runs`` round (Prefect marks
at most 400 per round), then --idle runs scheduled in the future and times an idle round of
each service. Every round is one call of the service's step with a fixed "now", as the runner
makes it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta

from runlog.api.logging import configure_logging
from runlog.commands import flow_runs, flows
from runlog.commands.cancellation_cleanup import clean_up_cancellations
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.late_runs import mark_late_runs
from runlog.commands.orchestration import ProposedState
from runlog.commands.pause_expirations import fail_expired_pauses
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections
from runlog.schema.events import StateDetails, StateType

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def scheduled_runs(store, flow_id, count: int, at: datetime, clock) -> None:
    state = ProposedState(type=StateType.SCHEDULED, name="Scheduled", state_details=StateDetails(scheduled_time=at))
    for start in range(0, count, 100):
        await asyncio.gather(*(
            flow_runs.create(store, NewFlowRun(flow_id=flow_id, state=state), clock=clock)
            for _ in range(min(100, count - start))
        ))


async def measure(url: str, late: int, idle: int) -> dict[str, float]:
    clock = ManualClock(NOW - timedelta(hours=1))
    figures: dict[str, float] = {}
    async with open_store(url, projections=inline_projections()) as store:
        flow, _ = await flows.register(store, "bench-services", [], clock=clock)
        await scheduled_runs(store, flow.id, late, NOW - timedelta(minutes=1), clock)
        began = time.perf_counter()
        marked = await mark_late_runs(store, NOW)
        figures[f"late_runs round marking {marked}"] = time.perf_counter() - began
        await scheduled_runs(store, flow.id, idle, NOW + timedelta(days=1), clock)
        for name, step in (("late_runs", lambda: mark_late_runs(store, NOW)),
                           ("pause_expirations", lambda: fail_expired_pauses(store, NOW)),
                           ("cancellation_cleanup", lambda: clean_up_cancellations(store, NOW))):
            began = time.perf_counter()
            await step()
            figures[f"{name} idle round ({late + idle} runs)"] = time.perf_counter() - began
    return figures


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                figures = await measure(f"sqlite:///{scratch}/bench.db", args.late, args.idle)
        else:
            async with postgres_databases(args.postgres_url, "services") as (url,):
                figures = await measure(url, args.late, args.idle)
        for name, seconds in figures.items():
            print(f"{backend:8}  {name:45} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--late", type=int, default=400)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
