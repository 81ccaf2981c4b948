"""Prefect's event feed with the stock client: a failed run's event, and `prefect event stream` live."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from ..servers import prefect_event_stream
from .test_prefect_client import Runlog, runlog  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60


def failed_event(runlog: Runlog, run_id: str, timeout: float = 60.0) -> dict | None:
    """The run's Failed event from /events/filter, once the feed (which follows the log a
    moment behind, batching its writes) has it; None if it never comes."""
    flt = {"event": {"name": ["prefect.flow-run.Failed"]}, "resource": {"id": [f"prefect.flow-run.{run_id}"]}}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = runlog.post("/events/filter", {"filter": flt})["events"]
        if events:
            return events[0]
        time.sleep(0.1)
    return None


def test_a_failed_tagged_run_shows_as_prefects_event_and_streams_live(runlog):
    with prefect_event_stream(runlog.env, WAIT_SECONDS) as stream:
        # A marker event proves the subscription is open; what follows it arrives live.
        marker = f"runlog.test.marker-{uuid.uuid4()}"
        occurred = datetime.now(UTC).isoformat()
        stream.wait_for("Subscribing to event stream")
        runlog.http.post("/events", json=[{
            "occurred": occurred, "event": marker, "id": str(uuid.uuid4()),
            "resource": {"prefect.resource.id": "runlog.test"},
        }]).raise_for_status()
        stream.wait_for(marker)
        outcome = runlog.run_flow("tagged_failing")
        assert outcome["state"] == "FAILED", outcome
        run_id = outcome["flow_run_id"]
        line = stream.wait_for(f"prefect.flow-run.Failed prefect.flow-run.{run_id}")
    assert line.split()[1:] == ["prefect.flow-run.Failed", f"prefect.flow-run.{run_id}"]

    event = failed_event(runlog, run_id)
    assert event is not None
    run = runlog.get(f"/flow_runs/{run_id}")
    flow = runlog.get(f"/flows/{run['flow_id']}")
    assert event["resource"] == {
        "prefect.resource.id": f"prefect.flow-run.{run_id}",
        "prefect.resource.name": run["name"],
        "prefect.run-count": "1",
        "prefect.state-message": run["state"]["message"],
        "prefect.state-name": "Failed",
        "prefect.state-timestamp": event["resource"]["prefect.state-timestamp"],
        "prefect.state-type": "FAILED",
    }
    assert "ValueError: boom" in run["state"]["message"]
    assert event["id"] == run["state"]["id"]
    assert event["related"] == [
        {"prefect.resource.id": f"prefect.flow.{flow['id']}", "prefect.resource.role": "flow", "prefect.resource.name": "compat-etl"},
        {"prefect.resource.id": "prefect.tag.daily-etl", "prefect.resource.role": "tag"},
    ]
    assert event["payload"] == {
        "intended": {"from": "RUNNING", "to": "FAILED"},
        "initial_state": {"type": "RUNNING", "name": "Running"},
        "validated_state": {"type": "FAILED", "name": "Failed", "message": run["state"]["message"]},
    }
    running = runlog.post("/events/filter", {"filter": {"event": {"name": ["prefect.flow-run.Running"]},
                                                         "resource": {"id": [f"prefect.flow-run.{run_id}"]}}})
    assert event["follows"] == running["events"][0]["id"]
