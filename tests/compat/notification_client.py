"""Run with the Prefect client against a server (PREFECT_API_URL): the set-up a user writes to be
told when a run of a flow tagged daily-etl fails: a webhook block and an automation that sends
it. Takes the receiver's URL; prints the block and automation ids as one JSON line."""

from __future__ import annotations

import json
import sys

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture


def main(url: str) -> None:
    block = CustomWebhookNotificationBlock(name="ops", url=url, json_data={"text": "{{body}}", "title": "{{subject}}"})
    block_id = block.save("ops", overwrite=True)
    automation = Automation(
        name="daily-etl failures",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
            expect={"prefect.flow-run.Failed"},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[SendNotification(
            block_document_id=block_id, subject="{{ flow.name }} failed",
            body="{{ flow_run.id }} entered {{ flow_run.state.name }}: {{ flow_run.state.message }}",
        )],
    ).create()
    print(json.dumps({"block_id": str(block_id), "automation_id": str(automation.id)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
