"""Fills a Prefect server with a little of everything through the stock client; the source of the
import tests. ``python -m tests.compat.prefect_source`` against PREFECT_API_URL prints one JSON
line of the ids it made (flow runs by name, the deployment, the block document, ...).

Flows with tasks, a failure, retries (of a flow and of a task), logs, a deployment with a
schedule on a pool and queue, a block with a secret, a variable, an artifact, a tag
concurrency limit and a global one, and an automation.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

from prefect import flow, get_run_logger, task
from uuid import UUID

from prefect.artifacts import create_markdown_artifact
from prefect.automations import Automation
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.client.schemas.schedules import IntervalSchedule
from prefect.variables import Variable

ATTEMPTS: dict[str, int] = {}


@task(name="add", tags=["math"])
def add(a: int, b: int) -> int:
    get_run_logger().info("adding %s and %s", a, b)
    return a + b


@task(name="flaky", retries=2, retry_delay_seconds=0)
def flaky() -> str:
    ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
    if ATTEMPTS["flaky"] < 2:
        raise ValueError("not yet")
    return "ok"


@flow(name="adder")
def adder(n: int = 2) -> int:
    logger = get_run_logger()
    total = 0
    for i in range(n):
        total = add(total, i)
    logger.warning("total is %s", total)
    create_markdown_artifact("# total\n" + str(total), key="adder-total", description="the sum")
    return total


@flow(name="breaks")
def breaks() -> None:
    get_run_logger().error("about to fail")
    raise RuntimeError("broken on purpose")


@flow(name="retrier", retries=1, retry_delay_seconds=0)
def retrier() -> str:
    ATTEMPTS["retrier"] = ATTEMPTS.get("retrier", 0) + 1
    if ATTEMPTS["retrier"] < 2:
        raise ValueError("first attempt fails")
    return flaky()


async def setup() -> dict:
    made: dict = {}
    async with get_client() as client:
        pool = await client.create_work_pool(WorkPoolCreate(name="import-pool", type="process", description="a pool"))
        queue = await client.create_work_queue(name="import-queue", work_pool_name="import-pool", priority=2)
        made["work_pool_id"], made["work_queue_id"] = str(pool.id), str(queue.id)
        flow_id = await client.create_flow_from_name("adder")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="nightly", work_pool_name="import-pool", work_queue_name="import-queue",
            parameters={"n": 3}, tags=["nightly"], description="every hour", concurrency_limit=2,
            schedules=[],
        )
        await client.create_deployment_schedules(
            deployment_id, [(IntervalSchedule(interval=timedelta(hours=1)), False)]
        )
        made["deployment_id"] = str(deployment_id)
        run = await client.create_flow_run_from_deployment(deployment_id, tags=["manual"])
        made["deployment_run_id"] = str(run.id)
        await client.create_concurrency_limit(tag="math", concurrency_limit=5)
        gcl = await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="db", limit=3))
        made["global_limit_id"] = str(gcl)
    return made


def more() -> None:
    """One more run (the source grows): its id and how many task runs it made."""
    state = adder(2, return_state=True)
    print(json.dumps({"run_id": str(state.state_details.flow_run_id), "task_runs": 2}))


def main() -> None:
    if sys.argv[1:] == ["more"]:
        more()
        return
    made = asyncio.run(setup())
    runs = {
        "adder": adder(4, return_state=True).state_details.flow_run_id,
        "breaks": breaks(return_state=True).state_details.flow_run_id,
        "retrier": retrier(return_state=True).state_details.flow_run_id,
    }
    Secret(value="s3cr3t-value").save("import-secret")
    Variable.set("import_var", {"answer": 42, "list": [1, 2]}, tags=["t"])
    made["block_document_id"] = str(Secret.load("import-secret")._block_document_id)
    automation = Automation(
        name="rerun-on-failure", description="runs the nightly deployment when adder fails",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"}, expect={"prefect.flow-run.Failed"},
            posture=Posture.Reactive, threshold=1, within=timedelta(seconds=0),
        ),
        actions=[RunDeployment(source="selected", deployment_id=UUID(made["deployment_id"]), parameters={"n": 1})],
    ).create()
    made["automation_id"] = str(automation.id)
    made["runs"] = {name: str(run_id) for name, run_id in runs.items()}
    print(json.dumps(made))


if __name__ == "__main__":
    main()
