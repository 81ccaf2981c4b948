"""Run history as served today (a query per request over the runs tables): N flow runs spread
over 30 days through the commands (Scheduled, then most of them Running and Completed or Failed,
some late), then the history reads timed in process, as the route makes them.

    python -m bench.bench_history [--backend sqlite|postgres|both] [--runs N] [--repeat R] [--postgres-url URL]

Prints p50 and p99 of: hourly over 7 days, daily over 30 days, hourly over 7 days filtered by
one tag, and the average lateness. Issue 12's target (<= 50 ms at 1,000,000 runs) needs the
pre-aggregated projection, which does not exist yet; these figures are the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from runlog.api.logging import configure_logging
from runlog.api.queries import history as queries
from runlog.api.schemas import filters as f
from runlog.commands import flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import open_store
from runlog.projections.history import window
from runlog.projections.registry import inline_projections
from runlog.projections.tables import us
from runlog.schema.events import StateDetails, StateType

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=30)
HOUR = 3_600_000_000


async def load(store, count: int, clock: ManualClock) -> None:
    flow, _ = await flows.register(store, "bench-history", [], clock=clock)
    span = (NOW - START).total_seconds()

    async def one(n: int) -> None:
        expected = START + timedelta(seconds=span * n / count)
        scheduled = ProposedState(type=StateType.SCHEDULED, timestamp=expected - timedelta(minutes=5),
                                  state_details=StateDetails(scheduled_time=expected))
        run, _ = await flow_runs.create(
            store, flow_runs.NewFlowRun(flow_id=flow.id, state=scheduled, tags=[f"t{n % 10}"]), clock=clock,
        )
        if n % 10 == 9:  # one in ten never started: late until now
            return
        started = expected + timedelta(seconds=n % 120)
        for kind, moment in ((StateType.RUNNING, started),
                             (StateType.FAILED if n % 7 == 0 else StateType.COMPLETED, started + timedelta(seconds=30))):
            await flow_runs.set_state(store, run.id, ProposedState(type=kind, timestamp=moment), force=True, clock=clock)

    for first in range(0, count, 200):
        await asyncio.gather(*(one(n) for n in range(first, min(first + 200, count))))


async def timed(call, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def measure(url: str, count: int, repeat: int) -> dict[str, tuple[float, float]]:
    clock = ManualClock(NOW)
    async with open_store(url, projections=inline_projections()) as store:
        began = time.perf_counter()
        await load(store, count, clock)
        print(f"  loaded {count} runs in {time.perf_counter() - began:.1f} s")
        end = us(NOW)
        week = window(end - 7 * 24 * HOUR, end, HOUR)  # type: ignore[operator]
        month = window(end - 30 * 24 * HOUR, end, 24 * HOUR)  # type: ignore[operator]
        tag = f.FlowRunCountRequest(flow_runs=f.FlowRunFilter(tags=f.FlowRunFilterTags(all_=["t3"])))
        everything = f.FlowRunCountRequest()
        return {
            "hourly over 7 days": await timed(lambda: queries.flow_run_history(store, everything, week, NOW), repeat),
            "daily over 30 days": await timed(lambda: queries.flow_run_history(store, everything, month, NOW), repeat),
            "hourly over 7 days, one tag": await timed(lambda: queries.flow_run_history(store, tag, week, NOW), repeat),
            "average lateness": await timed(lambda: queries.average_lateness(store, everything, NOW), repeat),
        }


def report(backend: str, count: int, figures: dict[str, tuple[float, float]]) -> None:
    print(f"{backend}, {count} runs:")
    for name, (p50, p99) in figures.items():
        print(f"  {name:32s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                figures = await measure(f"sqlite:///{scratch}/bench.db", args.runs, args.repeat)
        else:
            async with postgres_databases(args.postgres_url, "history") as (url,):
                figures = await measure(url, args.runs, args.repeat)
        report(backend, args.runs, figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
