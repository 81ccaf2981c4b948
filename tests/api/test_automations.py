"""/automations over a real server on both backends: Prefect's routes, shapes and status codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from runlog.api import keys
from runlog.schema import events as catalogue


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BLOCK = str(uuid.uuid4())


def trigger(**fields) -> dict:
    return {
        "type": "event", "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"},
        "after": [], "expect": ["prefect.flow-run.Failed"], "for_each": ["prefect.resource.id"],
        "posture": "Reactive", "threshold": 1, "within": 0.0, "id": str(uuid.uuid4()),
    } | fields


def notify(**fields) -> dict:
    return {"type": "send-notification", "block_document_id": BLOCK, "subject": "s", "body": "{{ flow_run.name }}"} | fields


def body(name: str = "etl-failures", **fields) -> dict:
    return {
        "name": name, "description": "", "enabled": True, "tags": [], "trigger": trigger(), "actions": [notify()],
        "actions_on_trigger": [], "actions_on_resolve": [], "owner_resource": None,
    } | fields


def update(name: str = "etl-failures", **fields) -> dict:
    """A PUT body: Prefect's AutomationUpdate has no owner_resource."""
    return {k: v for k, v in body(name, **fields).items() if k != "owner_resource"}


async def create(server, **fields) -> dict:
    status, answer = await server.request("POST", "/automations/", json=body(**fields))
    assert status == 201, answer
    return answer


async def automation_events(server) -> list[catalogue.AnyEvent]:
    store = server.app[keys.STORE]
    return [catalogue.decode(r.data) async for r in store.read_all() if r.type.startswith("automation.")]


def refused(status: int, answer, *words: str) -> None:
    assert status == 422, answer
    assert all(word in answer["detail"] for word in words), answer


async def test_create_answers_201_with_id_times_and_a_new_trigger_id_and_reads_back(server) -> None:
    sent = body()
    status, created = await server.request("POST", "/automations/", json=sent)
    assert status == 201, created
    uuid.UUID(created["id"])
    assert created["created"] == created["updated"] == "2026-03-01T12:00:00Z"
    assert created["trigger"]["id"] != sent["trigger"]["id"]  # reset, as Prefect does
    assert {k: v for k, v in created["trigger"].items() if k != "id"} == {
        k: v for k, v in sent["trigger"].items() if k != "id"
    }
    assert created["actions"] == sent["actions"]
    status, read = await server.request("GET", f"/automations/{created['id']}")
    assert status == 200 and read == created


async def test_filter_reads_by_name_as_the_client_does_and_ls_lists_all(server, clock) -> None:
    first = await create(server, name="a-rule", tags=["ops"])
    clock.advance(1)
    second = await create(server, name="b-rule")
    clock.advance(1)
    again = await create(server, name="a-rule")  # names need not be unique, as in Prefect
    status, by_name = await server.request("POST", "/automations/filter", json={
        "sort": "UPDATED_DESC", "automations": {"name": {"any_": ["a-rule"]}},
    })
    assert status == 200 and [a["id"] for a in by_name] == [again["id"], first["id"]]
    status, listed = await server.request("POST", "/automations/filter", json={
        "automations": None, "sort": None, "limit": None, "offset": 0,
    })
    assert status == 200 and {a["id"] for a in listed} == {first["id"], second["id"], again["id"]}
    assert [a["name"] for a in listed] == ["a-rule", "a-rule", "b-rule"]  # NAME_ASC by default
    status, page = await server.request("POST", "/automations/filter", json={"sort": "CREATED_DESC", "limit": 1,
                                                                          "offset": 1})
    assert status == 200 and [a["id"] for a in page] == [second["id"]]
    status, tagged = await server.request("POST", "/automations/filter", json={"automations": {"tags": {"all_": ["ops"]}}})
    assert status == 200 and [a["id"] for a in tagged] == [first["id"]]
    assert await server.request("POST", "/automations/count", json={"automations": {"name": {"any_": ["b-rule"]}}}) == (200, 1)
    assert await server.request("POST", "/automations/count") == (200, 3)


async def test_put_replaces_the_definition_and_gives_the_trigger_a_new_id(server, clock) -> None:
    created = await create(server)
    clock.advance(minutes=5)
    replaced = update(name="renamed", description="now for crashes", trigger=trigger(expect=["prefect.flow-run.Crashed"]))
    assert await server.request("PUT", f"/automations/{created['id']}", json=replaced) == (204, None)
    status, read = await server.request("GET", f"/automations/{created['id']}")
    assert status == 200
    assert read["name"] == "renamed" and read["description"] == "now for crashes"
    assert read["trigger"]["expect"] == ["prefect.flow-run.Crashed"]
    assert read["trigger"]["id"] not in (created["trigger"]["id"], replaced["trigger"]["id"])
    assert read["created"] == "2026-03-01T12:00:00Z" and read["updated"] == "2026-03-01T12:05:00Z"
    missing = str(uuid.uuid4())
    status, answer = await server.request("PUT", f"/automations/{missing}", json=replaced)
    assert status == 404 and answer == {"detail": "Automation not found"}


async def test_patch_enables_and_disables_and_delete_removes(server) -> None:
    created = await create(server)
    assert await server.request("PATCH", f"/automations/{created['id']}", json={"enabled": False}) == (204, None)
    assert (await server.request("GET", f"/automations/{created['id']}"))[1]["enabled"] is False
    assert await server.request("PATCH", f"/automations/{created['id']}", json={"enabled": True}) == (204, None)
    assert (await server.request("GET", f"/automations/{created['id']}"))[1]["enabled"] is True
    assert await server.request("DELETE", f"/automations/{created['id']}") == (204, None)
    assert (await server.request("GET", f"/automations/{created['id']}"))[0] == 404
    assert (await server.request("DELETE", f"/automations/{created['id']}"))[0] == 404
    assert (await server.request("PATCH", f"/automations/{created['id']}", json={"enabled": True}))[0] == 404
    kinds = [catalogue.event_type(e) for e in await automation_events(server)]
    assert kinds == ["automation.created", "automation.enabled_changed", "automation.enabled_changed",
                     "automation.deleted"]


@pytest.mark.parametrize(("change", "words"), [
    ({"trigger": {"type": "compound", "require": "any", "triggers": [trigger()], "within": None}},
     ("compound triggers are not supported",)),
    ({"trigger": {"type": "sequence", "triggers": [trigger()], "within": None}}, ("sequence triggers are not supported",)),
    ({"actions": [{"type": "run-deployment"}]}, ("actions[0]", "deployment_id is required")),
    ({"actions": [{"type": "pause-work-pool", "source": "inferred", "work_pool_id": str(uuid.uuid4())}]},
     ("actions[0]", "work_pool_id is not allowed")),
    ({"actions": [{"type": "launch-rocket"}]}, ("launch-rocket", "not supported")),
    ({"actions": [{"type": "run-deployment", "deployment_id": str(uuid.uuid4()),
                   "parameters": {"a": {"b": {"__prefect_kind": "json", "value": "{"}}, "c": "{{ x"}}]},
     ("actions[0]", "Invalid parameters", "a.b: Invalid JSON: Expecting property name", "c: Invalid jinja")),
    ({"actions": [notify(body="{{ flow_run.name")]}, ("actions[0]", "'body' is not a valid template")),
    ({"actions_on_trigger": [notify(subject="{% if %}")]}, ("actions_on_trigger[0]", "'subject' is not a valid template")),
    ({"actions": [{"type": "call-webhook", "block_document_id": BLOCK, "payload": "{{ x | no_such_filter }}"}]},
     ("'payload' is not a valid template",)),
    ({"trigger": trigger(posture="Proactive", within=5)}, ("greater than or equal to 10 seconds",)),
    ({"trigger": trigger(posture="Sideways")}, ("trigger",)),
    ({"actions": [{"type": "send-notification", "body": "no block"}]}, ("block_document_id",)),
])
async def test_what_runlog_cannot_carry_out_is_refused_with_422_naming_it(server, change, words) -> None:
    status, answer = await server.request("POST", "/automations/", json=body(**change))
    refused(status, answer, *words)
    assert await automation_events(server) == []


async def test_accepted_actions_and_a_proactive_trigger_defaulting_to_ten_seconds(server) -> None:
    actions = [
        notify(), {"type": "call-webhook", "block_document_id": BLOCK, "payload": {"text": "{{ event.event }}"}},
        {"type": "do-nothing"}, {"type": "cancel-flow-run"}, {"type": "suspend-flow-run"},
        {"type": "resume-flow-run"}, {"type": "change-flow-run-state", "state": "FAILED", "message": "stuck"},
    ]
    created = await create(server, actions=actions, trigger=trigger(posture="Proactive", within=0,
                                                                    after=["prefect.flow-run.Running"]))
    assert [a["type"] for a in created["actions"]] == [a["type"] for a in actions]
    assert created["actions"][1]["payload"] == '{"text":"{{ event.event }}"}'
    assert created["actions"][6] == {"type": "change-flow-run-state", "name": None, "state": "FAILED",
                                     "message": "stuck", "force": False}
    assert created["trigger"]["within"] == 10.0


async def test_unknown_fields_are_refused_at_the_top_and_ignored_inside(server) -> None:
    status, answer = await server.request("POST", "/automations/", json=body(colour="red"))
    assert status == 422, answer
    created = await create(server, trigger=trigger(novel="ignored"), actions=[notify(novel="ignored")])
    assert "novel" not in created["trigger"] and "novel" not in created["actions"][0]


async def test_related_to_and_owned_by_follow_the_owner_resource(server) -> None:
    owned = await create(server, owner_resource="prefect.deployment.abc")
    await create(server)
    status, related = await server.request("GET", "/automations/related-to/prefect.deployment.abc")
    assert status == 200 and [a["id"] for a in related] == [owned["id"]]
    assert (await server.request("GET", "/automations/related-to/prefect.deployment.other")) == (200, [])
    assert (await server.request("DELETE", "/automations/owned-by/prefect.deployment.abc"))[0] == 202
    assert (await server.request("GET", f"/automations/{owned['id']}"))[0] == 404
    assert await server.request("POST", "/automations/count") == (200, 1)


async def test_mute_until_is_kept_and_lifted(server) -> None:
    created = await create(server)
    until = "2026-03-02T08:00:00Z"
    assert await server.request("PUT", f"/runlog/automations/{created['id']}/mute", json={"until": until}) == (204, None)
    assert (await server.request("GET", f"/automations/{created['id']}"))[1]["muted_until"] == until
    # A PUT of the definition keeps the mute: it is not part of Prefect's definition.
    assert (await server.request("PUT", f"/automations/{created['id']}", json=update()))[0] == 204
    assert (await server.request("GET", f"/automations/{created['id']}"))[1]["muted_until"] == until
    assert await server.request("PUT", f"/runlog/automations/{created['id']}/mute", json={"until": None}) == (204, None)
    assert (await server.request("GET", f"/automations/{created['id']}"))[1]["muted_until"] is None


async def test_an_unknown_channel_name_is_404(server) -> None:
    status, answer = await server.request("GET", "/runlog/channels/ops")
    assert status == 404 and "ops" in answer["detail"]


async def test_within_may_be_an_iso_duration_and_every_automation_reads_them_all(server, clock) -> None:
    from runlog.projections.automations import every_automation

    first = await create(server, trigger=trigger(within="PT5M"))
    assert first["trigger"]["within"] == 300.0
    clock.advance(1)
    second = await create(server, name="second", enabled=False)
    async with server.app[keys.STORE].reading() as tx:
        assert [a.id for a in await every_automation(tx)] == [uuid.UUID(first["id"]), uuid.UUID(second["id"])]


@pytest.mark.parametrize("path", ["/templates/validate", "/automations/templates/validate"])
async def test_template_validation_answers_204_for_a_template_an_automation_accepts(server, path: str) -> None:
    assert await server.request("POST", path, json="Flow run {{ flow_run.name }} is {{ flow_run.state.name }}") == (204, None)
    # v1's UI posts the template's text as text/plain, which Prefect's server reads as the template.
    plain = await server.request("POST", path, data="{{ flow.name }}", headers={"Content-Type": "text/plain"})
    assert plain == (204, None)
    assert await server.request("POST", path) == (204, None)  # no body: the empty template


@pytest.mark.parametrize("template, line, words", [
    ("ok\n{{ flow_run.name", 2, "unexpected end of template"),
    ("{{ x | no_such_filter }}", 1, "no_such_filter"),
    ("{% for a in b %}{% for c in a %}{% for d in c %}{% endfor %}{% endfor %}{% endfor %}", 0, "no more than 2 loops deep"),
])
async def test_template_validation_answers_422_with_prefects_error_shape(server, template: str, line: int, words: str) -> None:
    """The line and message the UI shows under the field (Prefect's ``error``, not ``detail``);
    the same templates that creating an automation refuses."""
    status, answer = await server.request("POST", "/templates/validate", json=template)
    assert status == 422 and answer["error"]["line"] == line and words in answer["error"]["message"], answer
    assert answer["error"]["source"] == template
    refused_too, _ = await server.request("POST", "/automations/", json=body(actions=[notify(body=template)]))
    assert refused_too == 422


async def test_template_validation_refuses_a_json_body_that_is_not_a_string(server) -> None:
    status, answer = await server.request("POST", "/templates/validate", json={"template": "{{ x }}"})
    assert status == 422 and "Expected `str`" in answer["detail"], answer
