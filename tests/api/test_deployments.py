"""/deployments over a real server on both backends: Prefect's upsert, reads, updates, pause and
resume, schedules, listing filters, create_flow_run and get_scheduled_flow_runs."""

from __future__ import annotations

import uuid
from datetime import timedelta

from runlog.api import keys
from runlog.commands.workers import check_statuses
from runlog.schema import events as catalogue

from .conftest import START

SCHEMA = {
    "type": "object", "title": "Parameters",
    "properties": {"x": {"type": "integer", "title": "x"}, "who": {"type": "string", "default": "world"}},
    "required": ["x"],
}


async def flow(server, name: str = "etl") -> str:
    status, answer = await server.request("POST", "/flows/", json={"name": name})
    assert status in (200, 201), answer
    return answer["id"]


async def pool(server, name: str = "pool") -> dict:
    status, answer = await server.request("POST", "/work_pools/", json={"name": name, "type": "process"})
    assert status == 201, answer
    return answer


async def deploy(server, flow_id: str, name: str = "nightly", **fields) -> tuple[int, dict]:
    status, answer = await server.request("POST", "/deployments/", json={"name": name, "flow_id": flow_id, **fields})
    assert status in (200, 201), answer
    return status, answer


async def deployment_events(server) -> list[catalogue.AnyEvent]:
    store = server.app[keys.STORE]
    return [catalogue.decode(r.data) async for r in store.read_all() if r.type.startswith("deployment")]


async def test_creating_twice_upserts_one_deployment_with_the_same_id_and_only_the_fields_sent_change(server) -> None:
    flow_id = await flow(server)
    default_queue = (await pool(server))["default_queue_id"]
    status, first = await deploy(
        server, flow_id, parameters={"x": 1}, tags=["a"], description="first", work_pool_name="pool",
        work_queue_name="default", version="1", parameter_openapi_schema=SCHEMA,
    )
    assert status == 201
    assert first["flow_id"] == flow_id and first["name"] == "nightly" and first["paused"] is False
    assert first["parameters"] == {"x": 1} and first["tags"] == ["a"] and first["work_pool_name"] == "pool"
    assert first["labels"] == {"prefect.flow.id": flow_id} and first["enforce_parameter_schema"] is True
    assert first["status"] == "NOT_READY" and first["work_queue_id"] == default_queue and first["schedules"] == []
    assert first["created"] == "2026-03-01T12:00:00Z"

    status, again = await deploy(server, flow_id, description="second", version="2")
    assert status == 200 and again["id"] == first["id"]
    assert again["description"] == "second" and again["version"] == "2"
    assert again["parameters"] == {"x": 1} and again["tags"] == ["a"]  # not sent, kept
    status, listed = await server.request("POST", "/deployments/count", json={})
    assert status == 200 and listed == 1


async def test_a_deployment_of_an_unknown_flow_is_a_409(server) -> None:
    status, answer = await server.request("POST", "/deployments/", json={"name": "d", "flow_id": str(uuid.uuid4())})
    assert status == 409 and "flow" in answer["detail"]


async def test_read_by_id_and_by_name_and_404s(server) -> None:
    flow_id = await flow(server, "my-flow")
    _, created = await deploy(server, flow_id, "my-deployment")
    status, by_id = await server.request("GET", f"/deployments/{created['id']}")
    assert status == 200 and by_id == created
    status, by_name = await server.request("GET", "/deployments/name/my-flow/my-deployment")
    assert status == 200 and by_name == created
    status, answer = await server.request("GET", "/deployments/name/my-flow/other")
    assert status == 404 and answer["detail"] == "Deployment not found"
    status, answer = await server.request("GET", f"/deployments/{uuid.uuid4()}")
    assert status == 404 and answer["detail"]


async def test_patch_changes_the_fields_sent_and_delete_removes_it(server) -> None:
    flow_id = await flow(server)
    _, created = await deploy(server, flow_id, tags=["a"], parameters={"x": 1})
    path = f"/deployments/{created['id']}"
    status, _ = await server.request("PATCH", path, json={"tags": ["b", "c"], "description": "d"})
    assert status == 204
    _, read = await server.request("GET", path)
    assert read["tags"] == ["b", "c"] and read["description"] == "d" and read["parameters"] == {"x": 1}
    status, _ = await server.request("PATCH", f"/deployments/{uuid.uuid4()}", json={"tags": []})
    assert status == 404
    status, _ = await server.request("DELETE", path)
    assert status == 204
    status, _ = await server.request("GET", path)
    assert status == 404
    status, _ = await server.request("DELETE", path)
    assert status == 404


async def test_pause_and_resume_answer_null_and_set_paused(server) -> None:
    flow_id = await flow(server)
    _, created = await deploy(server, flow_id)
    status, answer = await server.request("POST", f"/deployments/{created['id']}/pause_deployment")
    assert status == 200 and answer is None
    _, read = await server.request("GET", f"/deployments/{created['id']}")
    assert read["paused"] is True
    status, answer = await server.request("POST", f"/deployments/{created['id']}/resume_deployment")
    assert status == 200
    _, read = await server.request("GET", f"/deployments/{created['id']}")
    assert read["paused"] is False
    status, _ = await server.request("POST", f"/deployments/{uuid.uuid4()}/pause_deployment")
    assert status == 404


async def test_schedules_are_created_with_the_deployment_and_replaced_on_upsert(server) -> None:
    flow_id = await flow(server)
    _, created = await deploy(server, flow_id, schedules=[
        {"schedule": {"interval": 3600, "anchor_date": "2026-01-01T00:00:00Z"}, "slug": "hourly"},
        {"schedule": {"cron": "0 9 * * mon-fri", "timezone": "Europe/Paris"}, "active": False},
        {"schedule": {"rrule": "FREQ=DAILY;INTERVAL=2"}, "parameters": {"x": 2}, "max_scheduled_runs": 5},
    ])
    interval, cron, rrule = created["schedules"]
    assert interval["schedule"] == {"interval": 3600.0, "anchor_date": "2026-01-01T00:00:00Z", "timezone": "UTC"}
    assert interval["slug"] == "hourly" and interval["active"] is True and interval["deployment_id"] == created["id"]
    assert cron["schedule"] == {"cron": "0 9 * * mon-fri", "timezone": "Europe/Paris", "day_or": True}
    assert cron["active"] is False
    assert rrule["schedule"] == {"rrule": "FREQ=DAILY;INTERVAL=2", "timezone": "UTC"}
    assert rrule["parameters"] == {"x": 2} and rrule["max_scheduled_runs"] == 5

    _, again = await deploy(server, flow_id, schedules=[{"schedule": {"interval": 60}}])
    (only,) = again["schedules"]
    assert only["schedule"]["interval"] == 60.0 and only["schedule"]["anchor_date"] == "2026-03-01T12:00:00Z"
    status, listed = await server.request("GET", f"/deployments/{created['id']}/schedules")
    assert status == 200 and listed == again["schedules"]


async def test_bad_schedules_are_refused_with_422_and_nothing_is_written(server) -> None:
    flow_id = await flow(server)
    bad = [
        {"interval": 0}, {"interval": -5}, {"cron": "not a cron"}, {"cron": "61 * * * *"}, {"cron": "H * * * *"},
        {"rrule": "FREQ=SOMETIMES"}, {"interval": 60, "timezone": "Mars/Olympus"}, {"cron": "* * * * *", "extra": 1},
        {"neither": True},
    ]
    for schedule in bad:
        status, answer = await server.request(
            "POST", "/deployments/", json={"name": "d", "flow_id": flow_id, "schedules": [{"schedule": schedule}]}
        )
        assert status == 422 and answer["detail"], (schedule, answer)
    status, answer = await server.request("POST", "/deployments/", json={
        "name": "d", "flow_id": flow_id, "schedules": [{"schedule": {"interval": 60}, "max_scheduled_runs": 51}],
    })
    assert status == 422, answer
    assert await deployment_events(server) == []


async def test_schedule_crud_with_active_slug_and_404s(server) -> None:
    flow_id = await flow(server)
    _, created = await deploy(server, flow_id)
    path = f"/deployments/{created['id']}/schedules"
    status, added = await server.request("POST", path, json=[
        {"schedule": {"interval": 600}, "slug": "ten", "parameters": {"x": 3}},
    ])
    assert status == 201 and len(added) == 1 and added[0]["slug"] == "ten"
    status, answer = await server.request("POST", path, json=[{"schedule": {"interval": 60}, "slug": "ten"}])
    assert status == 409 and answer["detail"] == "Schedule slugs must be unique within a deployment."
    schedule_id = added[0]["id"]
    status, _ = await server.request("PATCH", f"{path}/{schedule_id}", json={"active": False, "max_scheduled_runs": 3})
    assert status == 204
    _, (read,) = await server.request("GET", path)
    assert read["active"] is False and read["max_scheduled_runs"] == 3 and read["parameters"] == {"x": 3}
    assert read["schedule"]["interval"] == 600.0
    status, _ = await server.request("PATCH", f"{path}/{uuid.uuid4()}", json={"active": True})
    assert status == 404
    status, _ = await server.request("PATCH", f"/deployments/{uuid.uuid4()}/schedules/{schedule_id}", json={})
    assert status == 404
    status, _ = await server.request("DELETE", f"{path}/{schedule_id}")
    assert status == 204
    status, listed = await server.request("GET", path)
    assert listed == []
    status, _ = await server.request("DELETE", f"{path}/{schedule_id}")
    assert status == 404


async def test_patch_with_slugged_schedules_updates_them_in_place(server) -> None:
    flow_id = await flow(server)
    _, created = await deploy(server, flow_id, schedules=[{"schedule": {"interval": 60}, "slug": "a"}])
    (before,) = created["schedules"]
    path = f"/deployments/{created['id']}"
    status, _ = await server.request("PATCH", path, json={"schedules": [
        {"schedule": {"interval": 120}, "slug": "a"}, {"schedule": {"cron": "0 0 * * *"}, "slug": "b"},
    ]})
    assert status == 204
    _, read = await server.request("GET", path)
    first, second = read["schedules"]
    assert first["id"] == before["id"] and first["schedule"]["interval"] == 120.0
    assert second["slug"] == "b"
    status, answer = await server.request("PATCH", path, json={"schedules": [{"schedule": {"interval": 5}}]})
    assert status == 422 and "slug" in answer["detail"]


async def test_filters_count_and_paginate_deployments(server) -> None:
    etl, report = await flow(server, "etl"), await flow(server, "report")
    await deploy(server, etl, "alpha", tags=["prod"], work_queue_name="q1")
    await deploy(server, etl, "beta", tags=["dev"], paused=True)
    await deploy(server, report, "gamma", tags=["prod", "x"])

    async def names(body: dict) -> list[str]:
        status, answer = await server.request("POST", "/deployments/filter", json=body)
        assert status == 200, answer
        return [d["name"] for d in answer]

    assert await names({}) == ["alpha", "beta", "gamma"]
    assert await names({"sort": "NAME_DESC"}) == ["gamma", "beta", "alpha"]
    assert await names({"deployments": {"tags": {"all_": ["prod"]}}}) == ["alpha", "gamma"]
    assert await names({"deployments": {"paused": {"eq_": True}}}) == ["beta"]
    assert await names({"deployments": {"name": {"like_": "alp"}}}) == ["alpha"]
    assert await names({"deployments": {"flow_or_deployment_name": {"like_": "repo"}}}) == ["gamma"]
    assert await names({"deployments": {"work_queue_name": {"any_": ["q1"]}}}) == ["alpha"]
    assert await names({"flows": {"name": {"any_": ["etl"]}}}) == ["alpha", "beta"]
    assert await names({"limit": 1, "offset": 1}) == ["beta"]
    status, count = await server.request("POST", "/deployments/count", json={"deployments": {"tags": {"any_": ["x"]}}})
    assert status == 200 and count == 1
    status, page = await server.request("POST", "/deployments/paginate", json={"limit": 2, "page": 2})
    assert status == 200 and page["count"] == 3 and page["pages"] == 2 and [d["name"] for d in page["results"]] == ["gamma"]


async def test_create_flow_run_merges_parameters_and_tags_and_schedules_it_now(server) -> None:
    flow_id = await flow(server)
    await pool(server)
    _, deployment = await deploy(
        server, flow_id, parameters={"x": 1, "who": "team"}, tags=["a"], version="v7", work_pool_name="pool",
        work_queue_name="default", parameter_openapi_schema=SCHEMA,
    )
    status, run = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
        "parameters": {"x": 5}, "tags": ["b", "a"], "job_variables": {"env": {"K": "V"}},
    })
    assert status == 201, run
    assert run["parameters"] == {"x": 5, "who": "team"} and run["tags"] == ["a", "b"]
    assert run["deployment_id"] == deployment["id"] and run["deployment_version"] == "v7"
    assert run["work_pool_name"] == "pool" and run["work_queue_name"] == "default" and run["flow_id"] == flow_id
    assert run["job_variables"] == {"env": {"K": "V"}}
    assert run["state"]["type"] == "SCHEDULED" and run["state"]["state_details"]["scheduled_time"] == "2026-03-01T12:00:00Z"
    assert run["labels"]["prefect.deployment.id"] == deployment["id"]

    status, again = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
        "idempotency_key": "k",
    })
    assert status == 201
    status, same = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
        "idempotency_key": "k",
    })
    assert status == 200 and same["id"] == again["id"]

    status, answer = await server.request("POST", f"/deployments/{uuid.uuid4()}/create_flow_run", json={})
    assert status == 404 and answer["detail"] == "Deployment not found"


async def test_enforced_schemas_refuse_bad_parameters_as_prefect_does(server) -> None:
    flow_id = await flow(server)
    _, deployment = await deploy(server, flow_id, parameter_openapi_schema=SCHEMA)
    path = f"/deployments/{deployment['id']}/create_flow_run"
    status, answer = await server.request("POST", path, json={"parameters": {"x": "five"}})
    assert status == 409, answer
    assert answer["detail"] == ("Error creating flow run: Validation failed for field 'x'. "
                                "Failure reason: 'five' is not of type 'integer'")
    status, answer = await server.request("POST", path, json={"parameters": {}})
    assert status == 409 and "'x' is a required property" in answer["detail"]
    status, run = await server.request("POST", path, json={"parameters": {"x": "five"}, "enforce_parameter_schema": False})
    assert status == 201 and run["parameters"] == {"x": "five"}
    await server.request("PATCH", f"/deployments/{deployment['id']}", json={"enforce_parameter_schema": False})
    status, run = await server.request("POST", path, json={"parameters": {"x": []}})
    assert status == 201


async def test_get_scheduled_flow_runs_gives_due_scheduled_runs_of_those_deployments_soonest_first(server, clock) -> None:
    flow_id = await flow(server)
    _, one = await deploy(server, flow_id, "one")
    _, two = await deploy(server, flow_id, "two")

    async def run_at(deployment: dict, minutes: int, **state) -> str:
        when = (START + timedelta(minutes=minutes)).isoformat()
        status, run = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
            "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when}, **state},
        })
        assert status == 201, run
        return run["id"]

    late = await run_at(one, 5)
    early = await run_at(one, 1)
    other = await run_at(two, 2)
    await run_at(one, 60)  # not due
    pending = await run_at(one, 0)
    await server.request("POST", f"/flow_runs/{pending}/set_state", json={"state": {"type": "PENDING"}})

    status, runs = await server.request("POST", "/deployments/get_scheduled_flow_runs", json={
        "deployment_ids": [one["id"], two["id"]], "scheduled_before": (START + timedelta(minutes=10)).isoformat(),
    })
    assert status == 200, runs
    assert [r["id"] for r in runs] == [early, other, late]
    status, runs = await server.request("POST", "/deployments/get_scheduled_flow_runs", json={
        "deployment_ids": [two["id"]], "scheduled_before": (START + timedelta(hours=2)).isoformat(), "limit": 5,
    })
    assert [r["id"] for r in runs] == [other]


async def test_flow_runs_filter_by_deployment_fields(server) -> None:
    flow_id = await flow(server)
    _, tagged = await deploy(server, flow_id, "tagged", tags=["prod"])
    _, plain = await deploy(server, flow_id, "plain")
    _, run = await server.request("POST", f"/deployments/{tagged['id']}/create_flow_run", json={})
    await server.request("POST", f"/deployments/{plain['id']}/create_flow_run", json={})
    status, runs = await server.request("POST", "/flow_runs/filter", json={"deployments": {"tags": {"all_": ["prod"]}}})
    assert status == 200 and [r["id"] for r in runs] == [run["id"]]
    status, count = await server.request("POST", "/flow_runs/count", json={"deployments": {"name": {"any_": ["plain"]}}})
    assert status == 200 and count == 1
    status, runs = await server.request(
        "POST", "/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [tagged["id"]]}}}
    )
    assert [r["id"] for r in runs] == [run["id"]]


async def test_work_queue_check_answers_every_queue_as_none_has_a_legacy_filter(server) -> None:
    flow_id = await flow(server)
    first, second = await pool(server, "one"), await pool(server, "two")
    _, deployment = await deploy(server, flow_id, work_pool_name="one")
    status, answer = await server.request("GET", f"/deployments/{deployment['id']}/work_queue_check")
    assert status == 200
    assert sorted(q["id"] for q in answer) == sorted([first["default_queue_id"], second["default_queue_id"]])
    assert set(answer[0]) == {
        "id", "created", "updated", "name", "description", "is_paused", "concurrency_limit", "priority",
        "work_pool_id", "filter", "last_polled",
    }
    status, _ = await server.request("GET", f"/deployments/{uuid.uuid4()}/work_queue_check")
    assert status == 404


async def test_a_deployment_in_an_unknown_pool_is_a_404_with_prefects_detail(server) -> None:
    flow_id = await flow(server)
    status, answer = await server.request(
        "POST", "/deployments/", json={"name": "d", "flow_id": flow_id, "work_pool_name": "nope"}
    )
    assert status == 404 and answer == {"detail": 'Work pool "nope" not found.'}
    _, made = await deploy(server, flow_id)
    status, answer = await server.request("PATCH", f"/deployments/{made['id']}", json={"work_pool_name": "nope"})
    assert status == 404 and answer == {"detail": 'Work pool "nope" not found.'}


async def test_a_deployment_uses_the_pools_default_queue_or_creates_the_queue_it_names(server) -> None:
    flow_id = await flow(server)
    made = await pool(server)
    _, by_default = await deploy(server, flow_id, "a", work_pool_name="pool")
    assert by_default["work_queue_name"] == "default" and by_default["work_queue_id"] == made["default_queue_id"]
    _, named = await deploy(server, flow_id, "b", work_pool_name="pool", work_queue_name="fresh")
    status, queue = await server.request("GET", "/work_pools/pool/queues/fresh")
    assert status == 200 and named["work_queue_id"] == queue["id"] and queue["priority"] == 2
    _, again = await deploy(server, flow_id, "c", work_pool_name="pool", work_queue_name="fresh")
    assert again["work_queue_id"] == queue["id"]  # the queue is found, not created twice
    status, queues = await server.request("POST", "/work_pools/pool/queues/filter", json={})
    assert sorted(q["name"] for q in queues) == ["default", "fresh"]

    status, _ = await server.request("PATCH", f"/deployments/{by_default['id']}", json={
        "work_pool_name": "pool", "work_queue_name": "fresh",
    })
    status, moved = await server.request("GET", f"/deployments/{by_default['id']}")
    assert moved["work_queue_name"] == "fresh" and moved["work_queue_id"] == queue["id"]
    status, run = await server.request("POST", f"/deployments/{by_default['id']}/create_flow_run", json={})
    assert status == 201 and run["work_queue_name"] == "fresh" and run["work_queue_id"] == queue["id"]


async def test_a_deployment_is_ready_while_its_queue_is_polled_within_a_minute(server, clock) -> None:
    flow_id = await flow(server)
    await pool(server)
    _, deployment = await deploy(server, flow_id, work_pool_name="pool")
    assert deployment["status"] == "NOT_READY" and deployment["last_polled"] is None
    status, _ = await server.request("POST", "/work_pools/pool/get_scheduled_flow_runs", json={})
    assert status == 200
    polled = clock().isoformat().replace("+00:00", "Z")

    async def read() -> dict:
        _, answer = await server.request("GET", f"/deployments/{deployment['id']}")
        return answer

    assert (await read())["status"] == "READY" and (await read())["last_polled"] == polled
    _, listed = await server.request("POST", "/deployments/filter", json={})
    assert [(d["status"], d["last_polled"]) for d in listed] == [("READY", polled)]
    clock.advance(61)
    # The status is the recorded one, as Prefect's: READY until the status service notices.
    assert (await read())["status"] == "READY"
    assert await check_statuses(server.app[keys.STORE], clock()) == 2  # the queue and the deployment
    assert (await read())["status"] == "NOT_READY" and (await read())["last_polled"] == polled
    status, _ = await server.request("POST", "/work_pools/pool/get_scheduled_flow_runs", json={})
    assert (await read())["status"] == "READY"

    from .test_events_feed import feed_holds

    statuses = {"filter": {"event": {"name": ["prefect.deployment.ready", "prefect.deployment.not-ready"]}, "order": "ASC"}}
    events = (await feed_holds(server, 3, statuses))["events"]
    assert [e["event"] for e in events] == [
        "prefect.deployment.ready", "prefect.deployment.not-ready", "prefect.deployment.ready",
    ]
    _, pool_view = await server.request("GET", "/work_pools/pool")
    # Prefect's related resources: the flow, the work queue, the work pool.
    assert events[0]["related"][1:] == [
        {"prefect.resource.id": f"prefect.work-queue.{pool_view['default_queue_id']}", "prefect.resource.name": "default",
         "prefect.resource.role": "work-queue"},
        {"prefect.resource.id": f"prefect.work-pool.{pool_view['id']}", "prefect.resource.name": "pool",
         "prefect.work-pool.type": pool_view["type"], "prefect.resource.role": "work-pool"},
    ]


async def test_a_served_deployment_is_ready_while_its_runner_polls_it_and_shows_prefects_status_events(
    server, clock
) -> None:
    from .test_events_feed import feed_holds

    flow_id = await flow(server)
    _, deployment = await deploy(server, flow_id)
    store = server.app[keys.STORE]

    async def read() -> dict:
        _, answer = await server.request("GET", f"/deployments/{deployment['id']}")
        return answer

    async def poll() -> None:
        status, _ = await server.request(
            "POST", "/deployments/get_scheduled_flow_runs", json={"deployment_ids": [deployment["id"]]}
        )
        assert status == 200

    assert (await read())["status"] == "NOT_READY"
    await poll()
    first = clock().isoformat().replace("+00:00", "Z")
    assert (await read())["status"] == "READY" and (await read())["last_polled"] == first
    clock.advance(2)
    await poll()  # within POLL_RECORD_SECONDS of the recorded poll: nothing recorded
    assert (await read())["last_polled"] == first
    clock.advance(40)
    await poll()
    second = clock().isoformat().replace("+00:00", "Z")
    assert (await read())["last_polled"] == second
    clock.advance(59)
    assert await check_statuses(store, clock()) == 0  # polled 59 s ago: still READY
    clock.advance(2)
    assert await check_statuses(store, clock()) == 1
    assert (await read())["status"] == "NOT_READY"
    assert await check_statuses(store, clock()) == 0  # recorded once

    names = {"filter": {"event": {"prefix": ["prefect.deployment."]}, "order": "ASC"}}
    events = (await feed_holds(server, 3, names))["events"]
    assert [e["event"] for e in events] == [
        "prefect.deployment.created", "prefect.deployment.ready", "prefect.deployment.not-ready",
    ]
    _, ready, not_ready = events
    assert ready["resource"] == {
        "prefect.resource.id": f"prefect.deployment.{deployment['id']}", "prefect.resource.name": deployment["name"],
    }
    assert ready["occurred"] == first and ready["payload"] == {}
    assert not_ready["occurred"] == clock().isoformat().replace("+00:00", "Z")
    assert [r["prefect.resource.role"] for r in ready["related"]] == ["flow"]


async def test_prefects_deployment_events_appear_in_the_feed(server, clock) -> None:
    from ..servers import until

    flow_id = await flow(server, "evented")
    _, created = await deploy(server, flow_id, "d", tags=["a"])
    clock.advance(1)
    await deploy(server, flow_id, "d", description="nothing Prefect reports")  # description is reported
    clock.advance(1)
    await server.request("PATCH", f"/deployments/{created['id']}", json={"tags": ["b"], "version": "2"})
    clock.advance(1)
    await server.request("PATCH", f"/deployments/{created['id']}", json={"work_queue_name": "q"})  # not reported
    await server.request("DELETE", f"/deployments/{created['id']}")
    body = {"filter": {"event": {"prefix": ["prefect.deployment."]}, "order": "ASC"}}
    answer: dict = {}

    async def four() -> bool:
        status, page = await server.request("POST", "/events/filter", json=body)
        assert status == 200, page
        answer.update(page)
        return page["total"] >= 4

    await until(four, what="four deployment events")
    created_event, described, patched, deleted = answer["events"]
    assert [e["event"] for e in answer["events"]] == [
        "prefect.deployment.created", "prefect.deployment.updated", "prefect.deployment.updated",
        "prefect.deployment.deleted",
    ]
    resource = {"prefect.resource.id": f"prefect.deployment.{created['id']}", "prefect.resource.name": "d"}
    assert all(e["resource"] == resource for e in answer["events"])
    assert created_event["related"] == [
        {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.name": "evented", "prefect.resource.role": "flow"},
    ]
    assert created_event["occurred"] == "2026-03-01T12:00:00Z"
    assert described["payload"] == {
        "updated_fields": ["description"], "updates": {"description": {"from": None, "to": "nothing Prefect reports"}},
    }
    assert patched["payload"]["updated_fields"] == ["tags", "version"]
    assert patched["payload"]["updates"]["tags"] == {"from": ["a"], "to": ["b"]}


async def test_a_deployment_runs_state_events_name_the_deployment_and_carry_its_tags(server, clock) -> None:
    from ..servers import until

    flow_id = await flow(server, "named")
    _, deployment = await deploy(server, flow_id, "nightly", tags=["from-deployment"])
    _, run = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={"tags": ["own"]})
    body = {"filter": {"event": {"prefix": ["prefect.flow-run."]}}}
    answer: dict = {}

    async def one() -> bool:
        status, page = await server.request("POST", "/events/filter", json=body)
        answer.update(page)
        return status == 200 and page["total"] >= 1

    await until(one, what="the run's Scheduled event")
    (scheduled,) = answer["events"]
    assert scheduled["event"] == "prefect.flow-run.Scheduled"
    assert scheduled["related"] == [
        {"prefect.resource.id": f"prefect.flow.{flow_id}", "prefect.resource.role": "flow",
         "prefect.resource.name": "named"},
        {"prefect.resource.id": f"prefect.deployment.{deployment['id']}", "prefect.resource.role": "deployment",
         "prefect.resource.name": "nightly"},
        {"prefect.resource.id": "prefect.tag.from-deployment", "prefect.resource.role": "tag"},
        {"prefect.resource.id": "prefect.tag.own", "prefect.resource.role": "tag"},
    ]
