"""The scheduler catching up: N deployments with an hourly schedule and no runs yet, one full
scheduler pass (Prefect's defaults: at least 3 runs and an hour ahead each, so 3 runs per
deployment), timed; then an idle pass over the same deployments.

    python -m bench.bench_scheduler [--backend sqlite|postgres|both] [--deployments N] [--postgres-url URL]

The pass is one call of the service's step with a fixed "now", as the runner makes it. The
target (issue 11): 1,000 deployments caught up in <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime

from runlog.api.logging import configure_logging
from runlog.commands import deployments, flows
from runlog.commands.clock import ManualClock
from runlog.commands.deployments import NewSchedule
from runlog.commands.scheduler import schedule_deployments
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
HOURLY = {"cron": "0 * * * *", "timezone": "UTC"}


async def measure(url: str, count: int) -> dict[str, float]:
    clock = ManualClock(NOW)
    figures: dict[str, float] = {}
    async with open_store(url, projections=inline_projections()) as store:
        flow, _ = await flows.register(store, "bench-scheduler", [], clock=clock)
        for start in range(0, count, 50):
            await asyncio.gather(*(
                deployments.upsert(store, flow.id, f"hourly-{n}", {"parameters": {"n": n}, "tags": ["bench"]},
                                   [NewSchedule(schedule=HOURLY)], clock=clock)
                for n in range(start, min(start + 50, count))
            ))
        began = time.perf_counter()
        created = await schedule_deployments(store, NOW)
        figures[f"catch-up pass: {count} deployments, {created} runs"] = time.perf_counter() - began
        began = time.perf_counter()
        again = await schedule_deployments(store, NOW)
        figures[f"idle pass: {count} deployments, {again} runs"] = time.perf_counter() - began
    return figures


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                figures = await measure(f"sqlite:///{scratch}/bench.db", args.deployments)
        else:
            async with postgres_databases(args.postgres_url, "scheduler") as (url,):
                figures = await measure(url, args.deployments)
        for name, seconds in figures.items():
            print(f"{backend:8}  {name:45} {seconds:8.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
