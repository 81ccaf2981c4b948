"""A flow run's creator among its events' related resources, as Prefect 3.8.8 relates it
(models/events.py, _provenance_as_related_resources): last, for an automation or a deployment,
not for a schedule. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from runlog.projections.prefect_events import flow_run_related
from runlog.projections.runs import FlowRunView

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def run_made_by(created_by: dict | None) -> FlowRunView:
    return FlowRunView(id=uuid.uuid4(), created=NOW, updated=NOW, name="r", flow_id=uuid.uuid4(), tags=["t"],
                       created_by=created_by)


def test_an_automation_made_run_relates_its_creator_last() -> None:
    automation = str(uuid.uuid4())
    related = flow_run_related(run_made_by({"id": automation, "type": "AUTOMATION", "display_value": "rerun"}), None)
    assert related[-1] == {"prefect.resource.id": f"prefect.automation.{automation}", "prefect.resource.role": "creator",
                           "prefect.resource.name": "rerun"}
    assert related[-2]["prefect.resource.role"] == "tag"


def test_a_scheduled_run_or_a_clients_own_relates_no_creator() -> None:
    schedule = {"id": str(uuid.uuid4()), "type": "SCHEDULE", "display_value": "IntervalSchedule"}
    for created_by in (schedule, None):
        assert all(r["prefect.resource.role"] != "creator" for r in flow_run_related(run_made_by(created_by), None))
