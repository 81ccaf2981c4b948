"""Run with the Prefect client against a server (PREFECT_API_URL): create an automation with
the SDK, read it by name and id, update it, and print what the client saw as one JSON line."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from prefect.automations import Automation
from prefect.events.actions import DoNothing, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture


def main() -> None:
    automation = Automation(
        name="compat-etl-failures",
        description="failed runs of daily-etl",
        trigger=EventTrigger(
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
            expect={"prefect.flow-run.Failed"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive, threshold=1, within=timedelta(seconds=0),
        ),
        actions=[SendNotification(block_document_id=uuid.uuid4(), subject="Run failed",
                                  body="{{ flow_run.name }} entered {{ flow_run.state.name }}")],
    ).create()
    by_name = Automation.read(name="compat-etl-failures")
    by_name.description = "updated by the client"
    by_name.actions = [*by_name.actions, DoNothing()]
    by_name.update()
    by_id = Automation.read(id=automation.id)
    print(json.dumps({
        "id": str(automation.id),
        "name_read_id": str(by_name.id), "expect": sorted(by_id.trigger.expect),
        "description": by_id.description, "actions": [a.type for a in by_id.actions],
        "within": by_id.trigger.within.total_seconds(), "enabled": by_id.enabled,
    }))


if __name__ == "__main__":
    main()
