"""Loads the same runs into two servers with the stock Prefect client, each step on both at once.

``python -m tests.compat.history_loader URL_A URL_B`` prints one JSON line, {"servers": [A, B]}: for each server, the
ids of its flows, flow runs and task runs by name. Prefect's API sets a state's timestamp itself
(the client cannot send one), so the runs are placed by fixed past scheduled times and every
transition is made on both servers together, milliseconds apart: run times and lateness agree
to within that. Used by test_history_vs_prefect.py.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State, StateDetails, StateType
from prefect.states import AwaitingRetry, Cancelled, Completed, Crashed, Failed, Paused, Pending, Running, Scheduled

BASE = datetime(2024, 3, 1, tzinfo=UTC)
FLOWS = ("etl", "report", "ingest")
Known = dict[str, dict[str, str]]  # "flows" | "runs" | "tasks" -> name -> id, on one server
RUNS = 27


@flow(name="etl")
def etl() -> None: ...


@flow(name="report")
def report() -> None: ...


@flow(name="ingest")
def ingest() -> None: ...


@task(name="step")
def step() -> None: ...


FLOW_OBJECTS = {"etl": etl, "report": report, "ingest": ingest}


def late(when: datetime) -> State:
    return State(type=StateType.SCHEDULED, name="Late", state_details=StateDetails(scheduled_time=when))


# What happens to run i after it is created Scheduled: the states it is then forced into.
KINDS: dict[str, Any] = {
    "completed": lambda e: [Pending(), Running(), Completed()],
    "failed": lambda e: [Pending(), Running(), Failed()],
    "crashed": lambda e: [Running(), Crashed()],
    "cancelled": lambda e: [Cancelled()],  # finished without running
    "running": lambda e: [Pending(), Running()],
    "scheduled": lambda e: [],
    "late": lambda e: [late(e)],
    "paused": lambda e: [Pending(), Running(), Paused()],
    "retried": lambda e: [
        Pending(), Running(), AwaitingRetry(scheduled_time=datetime.now(UTC)), Running(), Completed(),
    ],
}


def plan() -> list[dict[str, Any]]:
    """The runs: name, flow, expected start (fixed, in the past), tags and kind."""
    kinds = list(KINDS)
    return [
        {
            "name": f"run-{i:02d}", "flow": FLOWS[i % 3], "kind": kinds[i % len(kinds)],
            "expected": BASE + timedelta(hours=2 * i, minutes=(i * 7) % 60),
            "tags": (["even"] if i % 2 == 0 else ["odd"]) + (["x"] if i % 4 == 0 else []),
        }
        for i in range(RUNS)
    ]


async def main(urls: list[str]) -> None:
    runs = plan()
    ids: list[Known] = [{"flows": {}, "runs": {}, "tasks": {}} for _ in urls]
    async with PrefectClient(api=urls[0]) as a, PrefectClient(api=urls[1]) as b:
        clients = (a, b)

        async def both(make) -> list[Any]:  # the same step on both servers, together
            return await asyncio.gather(*(make(c, i) for c, i in zip(clients, ids, strict=True)))

        for run in runs:
            async def create(client: PrefectClient, known: Known, run=run) -> None:
                created = await client.create_flow_run(
                    FLOW_OBJECTS[run["flow"]], name=run["name"], tags=run["tags"],
                    state=Scheduled(scheduled_time=run["expected"]),
                )
                known["runs"][run["name"]] = str(created.id)
                known["flows"][run["flow"]] = str(created.flow_id)

            await both(create)
        # Transitions interleaved across runs, so the runs' times differ from one another.
        steps = {run["name"]: KINDS[run["kind"]](run["expected"]) for run in runs}
        while any(steps.values()):
            for run in runs:
                if steps[run["name"]]:
                    new = steps[run["name"]].pop(0)

                    async def move(client: PrefectClient, known: Known, run=run, new=new) -> None:
                        await client.set_flow_run_state(UUID(known["runs"][run["name"]]), new, force=True)

                    await both(move)
            await asyncio.sleep(0.2)  # so that run times are not all zero
        # Task runs of the completed and running flow runs: one finished, one failed, one running.
        for run in runs:
            if run["kind"] not in ("completed", "running"):
                continue
            for suffix, path in (("ok", [Running(), Completed()]), ("bad", [Running(), Failed()]), ("on", [Running()])):
                name = f"{run['name']}-{suffix}"

                async def create_task(client: PrefectClient, known: Known, run=run, name=name) -> None:
                    created = await client.create_task_run(
                        step, flow_run_id=UUID(known["runs"][run["name"]]), dynamic_key=name, name=name,
                        state=Pending(),
                    )
                    known["tasks"][name] = str(created.id)

                await both(create_task)
                for new in path:
                    async def move_task(client: PrefectClient, known: Known, name=name, new=new) -> None:
                        await client.set_task_run_state(UUID(known["tasks"][name]), new, force=True)

                    await both(move_task)
        # A subflow run of run-00's task "wrapper" (which then counts as no task of run-00's),
        # and two deployments of etl.
        async def subflow(client: PrefectClient, known: Known) -> None:
            wrapper = await client.create_task_run(
                step, flow_run_id=UUID(known["runs"]["run-00"]), dynamic_key="wrapper", name="wrapper", state=Running(),
            )
            known["tasks"]["wrapper"] = str(wrapper.id)
            child = await client.create_flow_run(  # an hour before the others: no tie in a sort by expected start
                ingest, name="child", parent_task_run_id=wrapper.id,
                state=Scheduled(scheduled_time=BASE - timedelta(hours=1)),
            )
            known["runs"]["child"] = str(child.id)
            for name in ("d1", "d2"):
                await client.create_deployment(flow_id=UUID(known["flows"]["etl"]), name=name)

        await both(subflow)
    print(json.dumps({"servers": ids}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:3]))
