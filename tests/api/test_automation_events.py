"""An automation's firing over a real server on both backends: the notifier carries out a
change-flow-run-state action on the failing tagged run, and the event feed (/events/filter)
shows Prefect's prefect.automation.triggered and action.triggered/executed events beside the
run's own."""

from __future__ import annotations

import uuid

import pytest

from runlog.commands.clock import ManualClock

from ..servers import serve, until
from .test_events_feed import START, failing_run, feed, ok

RETRY_ON_FAILURE = {
    "name": "retry daily-etl", "enabled": True,
    "trigger": {
        "type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
        "expect": ["prefect.flow-run.Failed"], "after": [], "for_each": [],
    },
    "actions": [{"type": "change-flow-run-state", "state": "SCHEDULED", "name": "AwaitingRetry",
                 "message": "retried by an automation", "force": True}],
}
AUTOMATION_EVENTS = {"filter": {"event": {"prefix": ["prefect.automation."]}}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server(tmp_path, store_url: str, clock):
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}, clock=clock) as running:
        yield running


async def test_a_firing_changes_the_run_and_shows_in_the_event_feed(server, clock):
    automation = await ok(server, "POST", "/automations/", 201, json=RETRY_ON_FAILURE)
    run_id, _flow_id = await failing_run(server, clock)
    untagged, _ = await failing_run(server, clock, flow="other", run_tags=())
    answer: dict = {}

    async def executed() -> bool:
        answer.update(await feed(server, AUTOMATION_EVENTS))
        return any(e["event"] == "prefect.automation.action.executed" for e in answer["events"])

    await until(executed, what="the action's executed event in the feed")
    run = await ok(server, "GET", f"/flow_runs/{run_id}")
    assert (run["state"]["type"], run["state"]["name"], run["state"]["message"]) == (
        "SCHEDULED", "AwaitingRetry", "retried by an automation")
    other = await ok(server, "GET", f"/flow_runs/{untagged}")
    assert other["state"]["type"] == "FAILED"

    events = {e["event"]: e for e in answer["events"]}
    assert sorted(events) == ["prefect.automation.action.executed", "prefect.automation.action.triggered",
                              "prefect.automation.triggered"]
    failed = (await feed(server, {"filter": {"event": {"name": ["prefect.flow-run.Failed"]},
                                             "resource": {"id": [f"prefect.flow-run.{run_id}"]}}}))["events"][0]
    triggered, acted, done = (events[f"prefect.automation.{n}"] for n in ("triggered", "action.triggered", "action.executed"))
    assert triggered["resource"] == {"prefect.resource.id": f"prefect.automation.{automation['id']}",
                                     "prefect.resource.name": "retry daily-etl", "prefect.posture": "Reactive"}
    assert triggered["payload"]["triggering_event"]["id"] == failed["id"]
    assert acted["payload"] == {"action_index": 0, "action_type": "change-flow-run-state",
                                "invocation": acted["payload"]["invocation"]}
    uuid.UUID(acted["payload"]["invocation"])
    assert {"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "target"} in acted["related"]
    assert done["follows"] == acted["id"] and done["payload"]["status_code"] == 201
    # The run's new state is itself a Prefect event, after the automation's.
    scheduled = await feed(server, {"filter": {"event": {"name": ["prefect.flow-run.AwaitingRetry"]}}})
    assert scheduled["total"] == 1
