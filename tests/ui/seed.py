"""What the browser tests' pages show, made by the stock Prefect client against a server:

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.ui.seed

a flow with tasks, logs at several levels, a task that fails once and is retried, a flow that
fails, a parent with a subflow, a markdown artifact; a process work pool with a worker's
heartbeat, a deployment in it with an interval schedule and a scheduled run; a secret block; a Slack
webhook block ``ui-alerts`` (a notification channel) pointed at RUNLOG_TEST_UI_HOOK_URL, the tests'
loopback receiver (a Slack-like URL that goes nowhere without it); an automation; a variable; a
global and a tag concurrency limit.

Prints one JSON line naming what it made (ids, names), which the tests look for on the pages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.automations import Automation
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.events.actions import DoNothing
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.variables import Variable

ATTEMPTS: dict[str, int] = {}
POOL = "ui-pool"
WORKER = "ui-worker"


@task
def ui_extract(n: int) -> list[int]:
    get_run_logger().info("ui_extract read %s rows", n)
    return list(range(n))


@task(retries=1, retry_delay_seconds=0)
def ui_transform(rows: list[int]) -> int:
    ATTEMPTS["transform"] = ATTEMPTS.get("transform", 0) + 1
    if ATTEMPTS["transform"] == 1:
        get_run_logger().warning("ui_transform attempt 1 will fail")
        raise ValueError("ui_transform fails on its first attempt")
    return sum(rows)


@flow(name="ui-etl")
def etl(n: int = 4) -> int:
    logger = get_run_logger()
    logger.debug("ui-etl debug line")
    logger.info("ui-etl starting with n=%s", n)
    total = ui_transform(ui_extract(n))
    create_markdown_artifact(key="ui-report", markdown=f"# UI report\n\ntotal **{total}**", description="the etl's report")
    logger.error("ui-etl error line (not a failure)")
    return total


@flow(name="ui-failing")
def failing() -> None:
    get_run_logger().critical("ui-failing is about to raise")
    raise RuntimeError("ui-failing always fails")


@flow(name="ui-child")
def child(v: int) -> int:
    get_run_logger().info("ui-child got %s", v)
    return v * 10


@flow(name="ui-parent")
def parent() -> int:
    return child(4)


@flow(name="ui-deployed")
def deployed(x: int = 1) -> int:
    return x


async def infrastructure() -> dict:
    async with get_client() as client:
        await client.send_worker_heartbeat(POOL, WORKER, heartbeat_interval_seconds=30)
        await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="ui-global", limit=3))
        tag_limit = await client.create_concurrency_limit(tag="ui-tag", concurrency_limit=2)
        deployment = await client.read_deployment_by_name("ui-deployed/ui-deployment")
        scheduled = await client.create_flow_run_from_deployment(deployment.id, parameters={"x": 7})
        return {
            "deployment_id": str(deployment.id), "scheduled_run_id": str(scheduled.id),
            "scheduled_run_name": scheduled.name, "tag_limit_id": str(tag_limit),
        }


def main() -> None:
    logging.getLogger("prefect").setLevel(logging.DEBUG)
    runs = {}
    for name, scenario in (("etl", etl), ("failing", failing), ("parent", parent)):
        state = scenario(return_state=True)
        runs[name] = str(state.state_details.flow_run_id)
    deployment_id = deployed.to_deployment(
        name="ui-deployment", work_pool_name=POOL, interval=timedelta(hours=1), tags=["ui"],
        description="the UI tests' deployment", parameters={"x": 2},
    )
    # The pool must exist before the deployment names it.
    asyncio.run(_pool())
    deployment_id = deployment_id.apply()
    made = asyncio.run(infrastructure())
    Secret(value="ui-seed-secret").save("ui-secret", overwrite=True)
    # In the catalogue for the form that creates one, and a channel for the automations' wizards.
    hook = os.environ.get("RUNLOG_TEST_UI_HOOK_URL") or "https://hooks.slack.com/services/T000/B000/SEED"
    alerts = SlackWebhook(url=hook).save("ui-alerts", overwrite=True)
    Variable.set("ui_variable", {"threshold": 42}, tags=["ui"])
    automation = Automation(
        name="ui-automation", description="every failed run",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"}, expect={"prefect.flow-run.Failed"},
            posture=Posture.Reactive, threshold=1, within=timedelta(seconds=0),
        ),
        actions=[DoNothing()],
    ).create()
    print(json.dumps({
        "runs": runs, "automation_id": str(automation.id), "alerts_block_id": str(alerts), **made, "applied_deployment_id": str(deployment_id),
    }), flush=True)


async def _pool() -> None:
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=POOL, type="process", description="the UI tests' pool"))


if __name__ == "__main__":
    main()
