"""What rebuilding the trigger windows costs a starting notifier: a fresh matcher's first round.

    python -m bench.bench_window_restore [--backend sqlite|postgres|both] [--runs N] [--postgres-url URL]

The log holds --runs flow runs (each Pending, Running, Failed: four records with its creation),
all within the look-back of one automation counting failures (threshold above the runs, one
hour), and the matcher's checkpoint at the head, as after a restart. Timed: a new matcher's
first step, which finds where the look-back starts (a binary search over positions), then
observes every record again. Prints the time, the records observed and their rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid

import msgspec

from runlog.api.logging import configure_logging
from runlog.commands import automations, flow_runs, flows
from runlog.commands.clock import system_clock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import open_store
from runlog.notifier.matcher import Matcher
from runlog.notifier.templates import Renderer
from runlog.schema.automations import AutomationDefinition
from runlog.schema.events import StateType

from runlog.projections.registry import inline_projections

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases


def many_failures(runs: int) -> AutomationDefinition:
    return msgspec.convert({
        "name": "many failures", "enabled": True,
        "trigger": {
            "type": "event", "id": str(uuid.uuid4()), "posture": "Reactive", "threshold": runs + 1, "within": 3600,
            "match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"],
        },
        "actions": [{"type": "do-nothing"}],
    }, AutomationDefinition)


async def measure(url: str, runs: int) -> tuple[float, int]:
    async with open_store(url, projections=inline_projections()) as store:
        await automations.create(store, many_failures(runs), clock=system_clock)
        flow, _ = await flows.register(store, "etl", [], clock=system_clock)

        async def one(index: int) -> None:
            run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id, name=f"run-{index}"), clock=system_clock)
            for state in (StateType.PENDING, StateType.RUNNING, StateType.FAILED):
                await flow_runs.set_state(store, run.id, ProposedState(type=state), clock=system_clock)

        for start in range(0, runs, 50):
            await asyncio.gather(*(one(i) for i in range(start, min(runs, start + 50))))
        renderer = Renderer("http://127.0.0.1:4200")
        await Matcher(store, renderer=renderer).step(system_clock())  # checkpoint at the head
        head = await store.head()
        began = time.perf_counter()
        await Matcher(store, renderer=renderer).step(system_clock())  # the restart: rebuilds the window
        return time.perf_counter() - began, head


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                seconds, records = await measure(f"sqlite:///{scratch}/bench.db", args.runs)
        else:
            async with postgres_databases(args.postgres_url, "windows") as (url,):
                seconds, records = await measure(url, args.runs)
        print(f"{backend:8}  {args.runs} runs, {records} records in the look-back: first round "
              f"{seconds * 1000:7.1f} ms ({records / seconds:,.0f} records/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
