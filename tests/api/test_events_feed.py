"""The event feed over a real server on both backends: /events/filter, /filter/next, /count-by.

Flow-run state changes show as Prefect's ``prefect.flow-run.<State>`` events beside the events
clients sent in; the feed is an asynchronous projection, so each test waits for it to catch up.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec

from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.projections.rebuild import rebuild

from ..servers import until

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def ok(server, method: str, path: str, expect: int = 200, **kwargs):
    status, body = await server.request(method, path, **kwargs)
    assert status == expect, (status, body)
    return body


async def failing_run(server, clock: ManualClock, *, flow: str = "etl", run_tags=("daily-etl",), flow_tags=("team-a",)):
    """A flow run created (Pending), then taken to Running and Failed a second apart; its and its flow's ids."""
    flow_body = await ok(server, "POST", "/flows/", 201, json={"name": flow, "tags": list(flow_tags)})
    run = await ok(server, "POST", "/flow_runs/", 201, json={"flow_id": flow_body["id"], "name": f"{flow}-run", "tags": list(run_tags)})
    for state, message in (("RUNNING", None), ("FAILED", "Flow run encountered an exception: boom")):
        clock.advance(1)
        body = {"state": {"type": state, "message": message}}
        answer = await ok(server, "POST", f"/flow_runs/{run['id']}/set_state", 201, json=body)
        assert answer["status"] == "ACCEPT", answer
    return run["id"], flow_body["id"]


async def feed(server, body: dict | None = None) -> dict:
    return await ok(server, "POST", "/events/filter", json=body or {})


async def feed_holds(server, count: int, body: dict | None = None) -> dict:
    """The feed's answer once it holds ``count`` events (the projection runs after the append)."""
    answer: dict = {}

    async def enough() -> bool:
        answer.update(await feed(server, body))
        return answer["total"] >= count

    await until(enough, what=f"{count} events in the feed")
    return answer


async def test_a_failed_run_shows_as_prefects_flow_run_event(server, clock):
    run_id, flow_id = await failing_run(server, clock)
    answer = await feed_holds(server, 3)
    failed, running, pending = answer["events"]  # newest first
    assert [failed["event"], running["event"], pending["event"]] == [
        "prefect.flow-run.Failed", "prefect.flow-run.Running", "prefect.flow-run.Pending"]
    assert failed["resource"] == {
        "prefect.resource.id": f"prefect.flow-run.{run_id}",
        "prefect.resource.name": "etl-run",
        "prefect.run-count": "1",
        "prefect.state-message": "Flow run encountered an exception: boom",
        "prefect.state-name": "Failed",
        "prefect.state-timestamp": "2026-03-01T12:00:02+00:00",
        "prefect.state-type": "FAILED",
    }
    assert failed["related"] == [
        {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.role": "flow", "prefect.resource.name": "etl"},
        {"prefect.resource.id": "prefect.tag.daily-etl", "prefect.resource.role": "tag"},
        {"prefect.resource.id": "prefect.tag.team-a", "prefect.resource.role": "tag"},
    ]
    assert failed["payload"] == {
        "intended": {"from": "RUNNING", "to": "FAILED"},
        "initial_state": {"type": "RUNNING", "name": "Running"},
        "validated_state": {"type": "FAILED", "name": "Failed", "message": "Flow run encountered an exception: boom"},
    }
    assert failed["follows"] == running["id"] and running["follows"] == pending["id"]
    assert pending["follows"] is None and pending["payload"]["initial_state"] is None
    assert pending["resource"]["prefect.run-count"] == "0" and pending["resource"]["prefect.state-message"] == ""
    assert failed["occurred"] == "2026-03-01T12:00:02Z"
    history = await ok(server, "GET", f"/flow_run_states/?flow_run_id={run_id}")
    assert failed["id"] == next(s["id"] for s in history if s["type"] == "FAILED")  # the state's id


async def test_client_events_show_as_sent_beside_derived_ones(server, clock):
    sent = {
        "occurred": "2026-03-01T11:59:00Z", "event": "my.custom.event", "id": str(uuid.uuid4()),
        "resource": {"prefect.resource.id": "my.resource.1", "colour": "blue"},
        "related": [{"prefect.resource.id": "prefect.flow.x", "prefect.resource.role": "flow"}],
        "payload": {"answer": 42}, "follows": None,
    }
    await ok(server, "POST", "/events", 204, json=[sent])
    await failing_run(server, clock)
    answer = await feed_holds(server, 4)
    mine = answer["events"][-1]
    assert {k: mine[k] for k in sent} == sent
    assert mine["received"]


async def test_filters_narrow_the_feed(server, clock):
    run_id, flow_id = await failing_run(server, clock)
    await failing_run(server, clock, flow="other", run_tags=(), flow_tags=())
    await feed_holds(server, 6)

    async def names(flt: dict) -> list[str]:
        return [e["event"] for e in (await feed(server, {"filter": flt}))["events"]]

    assert await names({"event": {"name": ["prefect.flow-run.Failed"]}, "related": {"id": ["prefect.tag.daily-etl"]}}) == [
        "prefect.flow-run.Failed"]
    assert await names({"resource": {"id": [f"prefect.flow-run.{run_id}"]}, "order": "ASC"}) == [
        "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Failed"]
    assert len(await names({"event": {"prefix": ["prefect.flow-run."], "exclude_name": ["prefect.flow-run.Running"]}})) == 4
    assert len(await names({"resource": {"labels": {"prefect.state-type": ["FAILED", "CRASHED"]}}})) == 2
    assert len(await names({"resource": {"labels": {"prefect.state-type": "!FAILED"}}})) == 4
    assert len(await names({"related": {"role": ["flow"], "labels": {"prefect.resource.name": "e*"}}})) == 3
    assert len(await names({"any_resource": {"id_prefix": [f"prefect.flow.{flow_id}"]}})) == 3
    assert len(await names({"resource": {"id_prefix": ["prefect.flow-run."], "distinct": True}})) == 2
    assert await names({"occurred": {"since": "2026-03-01T12:00:04Z"}}) == ["prefect.flow-run.Failed"]
    assert await names({"text": {"query": "boom -other"}}) == ["prefect.flow-run.Failed"]


async def test_pages_follow_the_next_page_link(server, clock):
    await failing_run(server, clock)
    await failing_run(server, clock, flow="other")
    first = await feed_holds(server, 6, {"limit": 4})
    assert len(first["events"]) == 4 and first["total"] == 6
    link = first["next_page"]
    assert link.startswith(server.base + "/events/filter/next?page-token=")
    async with server.session.get(link) as response:
        assert response.status == 200
        second = await response.json()
    assert len(second["events"]) == 2 and second["next_page"] is None
    seen = [e["id"] for e in first["events"] + second["events"]]
    assert len(set(seen)) == 6
    status, _ = await server.request("GET", "/events/filter/next?page-token=bm90LWEtdG9rZW4=")
    assert status == 403
    status, _ = await server.request("POST", "/events/filter", json={"limit": 51})
    assert status == 422


async def test_count_by_event_resource_and_time(server, clock):
    await failing_run(server, clock)
    await failing_run(server, clock, flow="other")
    await feed_holds(server, 6)
    window = {"occurred": {"since": "2026-03-01T00:00:00Z", "until": "2026-03-01T23:59:59Z"}}
    by_event = await ok(server, "POST", "/events/count-by/event", json={"filter": window})
    assert [(c["value"], c["count"]) for c in by_event] == [
        ("prefect.flow-run.Failed", 2), ("prefect.flow-run.Pending", 2), ("prefect.flow-run.Running", 2)]
    by_resource = await ok(server, "POST", "/events/count-by/resource", json={"filter": window})
    assert sorted(c["label"] for c in by_resource) == ["etl-run", "other-run"]
    by_hour = await ok(server, "POST", "/events/count-by/time", json={"filter": window, "time_unit": "hour"})
    assert len(by_hour) == 12 + 1  # midnight to the clock's noon, zeros filled in
    assert by_hour[12]["count"] == 6 and by_hour[12]["start_time"] == "2026-03-01T12:00:00Z"
    by_day = await ok(server, "POST", "/events/count-by/day", json={"filter": window})
    assert [c["count"] for c in by_day] == [6]
    status, body = await server.request("POST", "/events/count-by/time", json={"filter": window, "time_unit": "second"})
    assert status == 422 and "buckets" in body["detail"]
    status, _ = await server.request("POST", "/events/count-by/colour", json={"filter": window})
    assert status == 422


RESOURCES_SENT = {
    "e1": ({"prefect.resource.id": "a.1", "colour": "blue"},
           [{"prefect.resource.id": "b.1", "prefect.resource.role": "owner", "colour": "red"},
            {"prefect.resource.id": "c.1", "prefect.resource.role": "member", "colour": "green"}]),
    "e2": ({"prefect.resource.id": "b.1", "colour": "red", "prefect.resource.role": "weird"},
           [{"prefect.resource.id": "a.1", "prefect.resource.role": "owner", "size": "big"}]),
    "e3": ({"prefect.resource.id": "c.2"}, []),
}
"""Three client events (named e1, e2, e3) for RESOURCE_FILTERS: (resource, related) each."""

RESOURCE_FILTERS = [
    ({"any_resource": {"id": ["a.1"]}}, ["e1", "e2"]),
    ({"any_resource": {"id_prefix": ["b."]}}, ["e1", "e2"]),
    ({"any_resource": {"id": ["c.1"]}}, ["e1"]),
    ({"any_resource": {"labels": {"colour": "blue"}}}, ["e1"]),
    ({"any_resource": {"labels": {"colour": "red"}}}, ["e1", "e2"]),
    ({"any_resource": {"labels": {"colour": "green"}}}, ["e1"]),
    ({"any_resource": {"labels": {"prefect.resource.role": "owner"}}}, ["e1", "e2"]),
    ({"any_resource": {"labels": {"prefect.resource.role": "weird"}}}, []),
    ({"any_resource": {"labels": {"prefect.resource.id": "c.*"}}}, ["e1", "e3"]),
    ({"any_resource": [{"id": ["a.1"]}, {"id": ["b.1"]}]}, ["e1", "e2"]),
    ({"any_resource": [{"id": ["a.1"]}, {"id": ["c.1"]}]}, ["e1"]),
    ({"related": {"id": ["a.1"]}}, ["e2"]),
    ({"related": {"id": ["c.1"]}}, ["e1"]),
    ({"related": {"id": ["b.1"]}}, ["e1"]),
    ({"related": {"labels": {"colour": "red"}}}, ["e1"]),
    ({"related": {"labels": {"colour": "blue"}}}, []),
    ({"related": {"labels": {"colour": "!red"}}}, ["e1"]),
    ({"related": {"labels": {"prefect.resource.role": "member"}}}, ["e1"]),
    ({"related": {"role": ["owner"], "labels": {"size": "big"}}}, ["e2"]),
    ({"related": {"resources_in_roles": [["a.1", "owner"]]}}, ["e2"]),
    ({"related": {"resources_in_roles": [["a.1", "flow"]]}}, []),
    ({"related": [{"role": ["owner"]}, {"id": ["c.1"]}]}, ["e1"]),
    ({"related": [{"role": ["owner"]}, {"id": ["c.2"]}]}, []),
    ({"resource": {"labels": {"colour": "red"}}}, ["e2"]),
    ({"resource": {"labels": {"colour": ["blue", "red"]}}}, ["e1", "e2"]),
    ({"resource": {"labels": {"colour": "!blue"}}}, ["e2"]),
    ({"resource": {"labels": {"prefect.resource.role": "weird"}}}, ["e2"]),
    ({"resource": {"labels": {"prefect.resource.id": "a.*"}}}, ["e1"]),
    ({"resource": {"id": ["c.2"]}, "any_resource": {"id": ["c.2"]}}, ["e3"]),
]
"""Filters on RESOURCES_SENT and the events each selects."""


async def send_resource_events(server) -> None:
    await ok(server, "POST", "/events", 204, json=[
        {"occurred": f"2026-03-01T11:00:0{i}Z", "event": name, "id": str(uuid.uuid4()), "resource": resource, "related": related}
        for i, (name, (resource, related)) in enumerate(RESOURCES_SENT.items())
    ])
    await feed_holds(server, 3)


async def resource_filter_answers(server) -> list[tuple[dict, list[str]]]:
    async def names(flt: dict) -> list[str]:
        return sorted(e["event"] for e in (await feed(server, {"filter": flt}))["events"])

    return [(flt, await names(flt)) for flt, _ in RESOURCE_FILTERS]


async def test_resource_filters_match_the_primary_and_related_resources_as_prefect_does(server, clock):
    """Which resource each resource criterion looks at: ``any_resource`` the primary and every
    related one; ``related`` only the related ones; ``resource.labels`` only the primary, its
    labels read as sent (a related resource always names a role: the API refuses one that does
    not). Labels other than the id and role are the resource's own."""
    await send_resource_events(server)
    assert await resource_filter_answers(server) == RESOURCE_FILTERS


async def test_a_feed_built_by_version_1_answers_the_same_and_its_rebuild_drops_what_it_kept(server, clock, env):
    """Version 1 of the feed kept a row for each event's primary resource (ordinal 0, role '')
    and every resource's labels beside it. A server whose feed still holds such rows (another
    process of the old version writing, until the new one's rebuild) answers as before, and the
    rebuild leaves the rows version 2 makes."""
    await send_resource_events(server)
    async with open_store(env["RUNLOG_DATABASE_URL"]) as store:
        async with store.reading() as tx:
            version_2 = await tx.fetch("SELECT * FROM event_feed_resources ORDER BY event_id, ordinal")
            for event_id, occurred, resource_id, body in await tx.fetch(
                "SELECT id, occurred, resource_id, body FROM event_feed"
            ):
                event = msgspec.json.decode(body)
                await tx.execute(
                    "INSERT INTO event_feed_resources (event_id, ordinal, occurred, resource_id, role, labels) "
                    "VALUES (?, 0, ?, ?, '', ?)", event_id, occurred, resource_id, msgspec.json.encode(event["resource"]).decode(),
                )
                for ordinal, related in enumerate(event["related"], 1):
                    await tx.execute("UPDATE event_feed_resources SET labels = ? WHERE event_id = ? AND ordinal = ?",
                                     msgspec.json.encode(related).decode(), event_id, ordinal)
        assert await resource_filter_answers(server) == RESOURCE_FILTERS
        await rebuild(store, ["event_feed"])
        async with store.reading() as tx:
            assert await tx.fetch("SELECT * FROM event_feed_resources ORDER BY event_id, ordinal") == version_2
    assert await resource_filter_answers(server) == RESOURCE_FILTERS
