"""Flow runs made from deployments, over a real server on both backends, as Prefect 3.8.8 keeps
them: who made a run (created_by), parameter templates resolved on create_flow_run, a deleted
queue cleared from its runs, the default agent pool for a queue named without a pool, and the
fields of a run only the server sets."""

from __future__ import annotations

from base64 import b64encode

from runlog.projections.verify import verify

from .test_deployments import deploy, flow, pool
from .test_work_pool_runs import scheduled_run


def automation_headers(automation_id: str, name: str) -> dict[str, str]:
    return {"Prefect-Automation-ID": automation_id, "Prefect-Automation-Name": b64encode(name.encode()).decode()}


AUTOMATION = "6f1c2b7e-7a0e-4a55-9a51-1d0c1b2e3f40"


async def test_a_run_made_for_an_automation_records_it_as_its_creator(server) -> None:
    flow_id = await flow(server)
    _, deployment = await deploy(server, flow_id)
    status, run = await server.request(
        "POST", f"/deployments/{deployment['id']}/create_flow_run", json={},
        headers=automation_headers(AUTOMATION, "nightly rerun ✓"),
    )
    assert status == 201, run
    creator = {"id": AUTOMATION, "type": "AUTOMATION", "display_value": "nightly rerun ✓"}
    assert run["created_by"] == creator
    status, read = await server.request("GET", f"/flow_runs/{run['id']}")
    assert status == 200 and read["created_by"] == creator
    status, direct = await server.request(
        "POST", "/flow_runs/", json={"flow_id": flow_id}, headers=automation_headers(AUTOMATION, "direct"),
    )
    assert status == 201 and direct["created_by"]["display_value"] == "direct"

    # A client's own run has none; a name that is not base64 gives none, as Prefect reads it.
    _, plain = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={})
    assert plain["created_by"] is None
    _, garbled = await server.request(
        "POST", "/flow_runs/", json={"flow_id": flow_id},
        headers={"Prefect-Automation-ID": AUTOMATION, "Prefect-Automation-Name": "%%%"},
    )
    assert garbled["created_by"] is None
    status, answer = await server.request(
        "POST", "/flow_runs/", json={"flow_id": flow_id}, headers=automation_headers("not-a-uuid", "x"),
    )
    assert status == 422 and "Prefect-Automation-ID" in answer["detail"]

    async def ids(created_by: dict) -> set[str]:
        status, runs = await server.request("POST", "/flow_runs/filter", json={"flow_runs": {"created_by": created_by}})
        assert status == 200, runs
        return {r["id"] for r in runs}

    assert await ids({"id_": [AUTOMATION]}) == await ids({"type_": ["AUTOMATION"]}) == {run["id"], direct["id"]}
    assert await ids({"is_null_": True}) == {plain["id"], garbled["id"]}
    assert await ids({"type_": ["SCHEDULE"]}) == set()


async def test_a_body_setting_auto_scheduled_or_created_by_is_refused_as_prefect_refuses_extra_fields(server) -> None:
    flow_id = await flow(server)
    for field, value in (("auto_scheduled", True), ("auto_scheduled", False), ("created_by", {"type": "X"})):
        status, answer = await server.request("POST", "/flow_runs/", json={"flow_id": flow_id, field: value})
        assert status == 422 and field in answer["detail"], answer
    # the names inside parameters are a run's own business
    status, run = await server.request(
        "POST", "/flow_runs/", json={"flow_id": flow_id, "parameters": {"auto_scheduled": 1, "created_by": 2}},
    )
    assert status == 201 and run["auto_scheduled"] is False and run["created_by"] is None
    assert run["parameters"] == {"auto_scheduled": 1, "created_by": 2}


async def test_create_flow_run_resolves_parameter_templates_as_prefect_does(server) -> None:
    flow_id = await flow(server)
    status, _ = await server.request("POST", "/variables/", json={"name": "region", "value": {"code": "eu"}})
    assert status == 201
    _, deployment = await deploy(server, flow_id, parameters={
        "n": {"__prefect_kind": "json", "value": "[1, 2]"},
        "where": {"__prefect_kind": "workspace_variable", "variable_name": "region"},
        "unset": {"__prefect_kind": "json"},
    })
    status, run = await server.request(
        "POST", f"/deployments/{deployment['id']}/create_flow_run",
        json={"parameters": {"label": {"__prefect_kind": "jinja", "template": "run-{{ 20 + 22 }}"},
                             "raw": {"__prefect_kind": "none", "value": "{{ kept }}"}}},
    )
    assert status == 201, run
    assert run["parameters"] == {"n": [1, 2], "where": {"code": "eu"}, "label": "run-42", "raw": "{{ kept }}"}

    for parameters, detail in (
        ({"x": {"__prefect_kind": "json", "value": "{bad"}},
         "Error hydrating flow run parameters: Invalid JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"),
        ({"x": {"__prefect_kind": "jinja"}}, "Error hydrating flow run parameters: Missing 'template' key in __prefect object"),
        ({"x": {"__prefect_kind": "workspace_variable", "variable_name": "nope"}},
         "Error hydrating flow run parameters: Variable 'nope' not found in workspace."),
    ):
        status, answer = await server.request(
            "POST", f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters},
        )
        assert (status, answer) == (400, {"detail": detail})


async def test_deleting_a_queue_or_its_pool_clears_the_queue_of_its_runs(server, env) -> None:
    await pool(server, "p")
    _, fast = await server.request("POST", "/work_pools/p/queues", json={"name": "fast"})
    flow_id = await flow(server)
    in_fast = await scheduled_run(server, flow_id, "in-fast", 0, queue="fast")
    in_default = await scheduled_run(server, flow_id, "in-default", 0)
    assert in_fast["work_queue_id"] == fast["id"]
    status, _ = await server.request("DELETE", "/work_pools/p/queues/fast")
    assert status == 204

    _, read = await server.request("GET", f"/flow_runs/{in_fast['id']}")
    # as Prefect's foreign key: no queue and so no pool; the name it was created with stays
    assert (read["work_queue_id"], read["work_pool_id"], read["work_pool_name"]) == (None, None, None)
    assert read["work_queue_name"] == "fast"
    _, runs = await server.request("POST", "/flow_runs/filter", json={"work_pools": {"name": {"any_": ["p"]}}})
    assert [r["name"] for r in runs] == ["in-default"]
    status, answer = await server.request("POST", f"/flow_runs/{in_fast['id']}/set_state",
                                          json={"state": {"type": "PENDING"}, "force": True})
    assert status in (200, 201) and answer["status"] == "ACCEPT"
    _, read = await server.request("GET", f"/flow_runs/{in_fast['id']}")
    assert read["work_queue_id"] is None and read["state_type"] == "PENDING"  # a later state keeps it cleared

    status, _ = await server.request("DELETE", "/work_pools/p")
    assert status == 204
    _, read = await server.request("GET", f"/flow_runs/{in_default['id']}")
    assert (read["work_queue_id"], read["work_pool_id"], read["work_pool_name"]) == (None, None, None)
    _, count = await server.request("POST", "/flow_runs/count", json={"work_pool_queues": {}})
    assert count == 0
    assert (await verify(env["RUNLOG_DATABASE_URL"])).equal


async def test_a_deployment_naming_only_a_queue_goes_to_the_default_agent_pool(server) -> None:
    flow_id = await flow(server)
    status, deployment = await deploy(server, flow_id, work_queue_name="legacy")
    assert status == 201
    _, agent_pool = await server.request("GET", "/work_pools/default-agent-pool")
    assert agent_pool["type"] == "prefect-agent"
    status, queue = await server.request("GET", "/work_pools/default-agent-pool/queues/legacy")
    assert status == 200
    assert deployment["work_pool_name"] == "default-agent-pool" and deployment["work_queue_name"] == "legacy"
    assert deployment["work_queue_id"] == queue["id"]
    _, run = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={})
    assert run["work_queue_id"] == queue["id"] and run["work_pool_name"] == "default-agent-pool"

    # the pool and a queue that exist are used, "default" is the pool's default queue
    _, other = await deploy(server, flow_id, name="other", work_queue_name="legacy")
    assert other["work_queue_id"] == queue["id"]
    _, on_default = await deploy(server, flow_id, name="on-default", work_queue_name="default")
    assert on_default["work_queue_id"] == agent_pool["default_queue_id"]
    _, queues = await server.request("POST", "/work_pools/default-agent-pool/queues/filter", json={})
    # as Prefect makes it: the new queue first, the pool's default queue moved down
    assert [(q["name"], q["priority"], q["description"]) for q in queues] == [
        ("legacy", 1, ""), ("default", 2, "The work pool's default queue."),
    ]
    _, pools = await server.request("POST", "/work_pools/filter", json={})
    assert [p["name"] for p in pools] == ["default-agent-pool"]

    # an update that names a queue alone moves it there; one that nulls the pool takes it out
    status, _ = await server.request("PATCH", f"/deployments/{other['id']}", json={"work_queue_name": "second"})
    assert status == 204
    _, read = await server.request("GET", f"/deployments/{other['id']}")
    assert read["work_pool_name"] == "default-agent-pool" and read["work_queue_name"] == "second"
    status, _ = await server.request(
        "PATCH", f"/deployments/{other['id']}", json={"work_pool_name": None, "work_queue_name": "third"},
    )
    assert status == 204
    _, read = await server.request("GET", f"/deployments/{other['id']}")
    assert read["work_pool_name"] is None and read["work_queue_id"] is None
