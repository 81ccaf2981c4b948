"""Run with the Prefect client against a server (PREFECT_API_URL): an automation that sends a
failing run of a flow tagged daily-etl back to Scheduled ("AwaitingRetry") with the stock
SDK's ChangeFlowRunState action. Prints the automation's id as one JSON line."""

from __future__ import annotations

import json

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture


def main() -> None:
    automation = Automation(
        name="retry daily-etl",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
            expect={"prefect.flow-run.Failed"},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="AwaitingRetry", message="retried", force=True)],
    ).create()
    print(json.dumps({"automation_id": str(automation.id)}), flush=True)


if __name__ == "__main__":
    main()
