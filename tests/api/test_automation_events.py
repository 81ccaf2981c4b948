"""An automation's firing over a real server on both backends: the notifier carries out a
change-flow-run-state action on the failing tagged run, and the event feed (/events/filter)
shows Prefect's prefect.automation.triggered and action.triggered/executed events beside the
run's own."""

from __future__ import annotations

import uuid

import pytest

from runlog.commands.clock import ManualClock

from ..notifier.receiver import receiver
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


async def a_block(server, slug: str, data: dict, secret_fields: list[str]) -> str:
    """A block document of a new type SLUG, saved as the Prefect client saves one; its id."""
    block_type = await ok(server, "POST", "/block_types/", 201, json={"name": slug.title(), "slug": slug})
    fields = {"title": slug.title(), "type": "object", "properties": {k: {"type": "string"} for k in data},
              "secret_fields": secret_fields, "block_type_slug": slug, "block_schema_references": {}}
    schema = await ok(server, "POST", "/block_schemas/", 201,
                      json={"fields": fields, "block_type_id": block_type["id"], "capabilities": []})
    document = await ok(server, "POST", "/block_documents/", 201, json={
        "name": f"my-{slug}", "data": data, "block_schema_id": schema["id"], "block_type_id": block_type["id"]})
    return document["id"]


async def test_call_webhook_calls_a_webhook_block_and_refuses_another_kind(server, clock):
    async with receiver() as rcv:
        hook = await a_block(server, "webhook", {"url": rcv.url + "/in", "method": "POST",
                                                 "headers": {"Authorization": "Bearer s3cr3t"}}, ["url", "headers.*"])
        other = await a_block(server, "not-a-webhook", {"url": rcv.url + "/other"}, ["url"])
        actions = [{"type": "call-webhook", "block_document_id": block, "payload": "{{ flow_run.name }} failed"}
                   for block in (hook, other)]
        await ok(server, "POST", "/automations/", 201, json={**RETRY_ON_FAILURE, "name": "hooks", "actions": actions})
        await failing_run(server, clock)
        answer: dict = {}

        async def both_done() -> bool:
            answer.update(await feed(server, {"filter": {"event": {"name": [
                "prefect.automation.action.executed", "prefect.automation.action.failed"]}}}))
            return answer["total"] == 2

        await until(both_done, what="both call-webhook actions' outcomes in the feed")
        [seen] = rcv.seen
        assert (seen.path, seen.headers["Authorization"], seen.body) == ("/in", "Bearer s3cr3t", b"etl-run failed")
        outcome = {e["payload"]["action_index"]: e for e in answer["events"]}
        assert outcome[0]["event"] == "prefect.automation.action.executed"
        assert {"prefect.resource.id": f"prefect.block-document.{hook}", "prefect.resource.role": "block",
                "prefect.resource.name": "my-webhook"} in outcome[0]["related"]
        assert {"prefect.resource.id": "prefect.block-type.webhook", "prefect.resource.role": "block-type"} \
            in outcome[0]["related"]
        assert outcome[1]["event"] == "prefect.automation.action.failed"
        assert outcome[1]["payload"]["reason"] == "The referenced block was not a webhook block"
