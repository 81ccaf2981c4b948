"""Run with the Prefect client against a server (PREFECT_API_URL): a deployment of the flow
"compat-kicked" and an automation that runs it (the stock SDK's RunDeployment, with parameters
and job variables) when a run tagged daily-etl fails. Prints the ids as one JSON line."""

from __future__ import annotations

import asyncio
import json

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import EventTrigger, Posture


async def deployment() -> str:
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("compat-kicked")
        deployment_id = await client.create_deployment(flow_id=flow_id, name="kicked", parameters={"x": 1, "y": 2})
        return str(deployment_id)


def main() -> None:
    deployment_id = asyncio.run(deployment())
    automation = Automation(
        name="kick off on failure",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
            expect={"prefect.flow-run.Failed"},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[RunDeployment(source="selected", deployment_id=deployment_id, parameters={"y": 7},
                               job_variables={"env": {"MODE": "recovery"}})],
    ).create()
    print(json.dumps({"automation_id": str(automation.id), "deployment_id": deployment_id}), flush=True)


if __name__ == "__main__":
    main()
