"""Endpoints only Prefect's web UI calls, over a real server on both backends: the flow run graph
(v2), a task run with its flow run's name, and saved searches (kept as events)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from runlog.api import keys
from runlog.schema import events as catalogue

from .conftest import START


async def post(server, path: str, body: dict) -> dict:
    status, answer = await server.request("POST", path, json=body)
    assert status in (200, 201), (path, status, answer)
    return answer


async def set_state(server, kind: str, run_id: str, state_type: str, clock) -> None:
    await post(server, f"/{kind}/{run_id}/set_state", {"state": {"type": state_type}, "force": True})


async def test_the_graph_has_a_node_per_task_run_and_subflow_with_edges_from_inputs(server, clock) -> None:
    flow = await post(server, "/flows/", {"name": "graph-parent"})
    child_flow = await post(server, "/flows/", {"name": "graph-child"})
    run = await post(server, "/flow_runs/", {"flow_id": flow["id"], "name": "parent-run"})
    await set_state(server, "flow_runs", run["id"], "RUNNING", clock)

    def task(name: str, inputs: dict) -> dict:
        return {"flow_run_id": run["id"], "task_key": name, "dynamic_key": "0", "name": name, "task_inputs": inputs}

    extract = await post(server, "/task_runs/", task("extract", {}))
    load = await post(server, "/task_runs/", task("load", {"rows": [{"input_type": "task_run", "id": extract["id"]}]}))
    wrapper = await post(server, "/task_runs/", task("child-wrapper", {
        "v": [{"input_type": "parameter", "name": "v"}], "__parents__": [{"input_type": "task_run", "id": load["id"]}],
    }))
    child = await post(server, "/flow_runs/", {
        "flow_id": child_flow["id"], "name": "child-run", "parent_task_run_id": wrapper["id"],
    })
    for task_run in (extract, load, wrapper):
        await set_state(server, "task_runs", task_run["id"], "RUNNING", clock)
        clock.advance(1)
        await set_state(server, "task_runs", task_run["id"], "COMPLETED", clock)
    await set_state(server, "flow_runs", child["id"], "RUNNING", clock)
    await post(server, "/artifacts/", {"key": "graph-report", "type": "markdown", "data": "# one", "flow_run_id": run["id"],
                                       "task_run_id": load["id"]})
    await post(server, "/artifacts/", {"type": "markdown", "data": "# flow's own", "flow_run_id": run["id"]})

    status, graph = await server.request("GET", f"/flow_runs/{run['id']}/graph-v2")
    assert status == 200, graph
    nodes = dict((node_id, node) for node_id, node in graph["nodes"])
    assert set(nodes) == {extract["id"], load["id"], child["id"]}  # the wrapper task shows as its subflow
    assert nodes[child["id"]]["kind"] == "flow-run" and nodes[child["id"]]["label"] == "graph-child / child-run"
    assert nodes[child["id"]]["state_type"] == "RUNNING" and nodes[child["id"]]["end_time"] is None
    assert nodes[load["id"]]["parents"] == [{"id": extract["id"]}]
    assert nodes[extract["id"]]["children"] == [{"id": load["id"]}]
    assert nodes[child["id"]]["encapsulating"] == [{"id": load["id"]}] and nodes[child["id"]]["parents"] == []
    assert sorted(graph["root_node_ids"]) == sorted([extract["id"], child["id"]])
    assert [a["key"] for a in nodes[load["id"]]["artifacts"]] == ["graph-report"]
    assert nodes[load["id"]]["artifacts"][0]["is_latest"] is True
    assert [a["key"] for a in graph["artifacts"]] == [None]
    assert [s["type"] for s in graph["states"]] == ["PENDING", "RUNNING"]  # a new run is Pending
    assert graph["start_time"] is not None and graph["end_time"] is None

    # since: only what ended at or after it (or has not ended)
    later = (START + timedelta(days=1)).isoformat()
    status, graph = await server.request("GET", f"/flow_runs/{run['id']}/graph-v2", params={"since": later})
    assert status == 200 and [node_id for node_id, _ in graph["nodes"]] == [child["id"]]
    status, answer = await server.request("GET", f"/flow_runs/{run['id']}/graph-v2", params={"since": "yesterday"})
    assert status == 422 and "since" in answer["detail"]
    status, answer = await server.request("GET", f"/flow_runs/{uuid.uuid4()}/graph-v2")
    assert status == 404 and answer["detail"].startswith("Flow run")


async def test_a_ui_task_run_carries_its_flow_run_name(server) -> None:
    flow = await post(server, "/flows/", {"name": "named"})
    run = await post(server, "/flow_runs/", {"flow_id": flow["id"], "name": "the-run"})
    task_run = await post(server, "/task_runs/", {"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0", "name": "t-1"})
    status, plain = await server.request("GET", f"/task_runs/{task_run['id']}")
    status, shown = await server.request("GET", f"/ui/task_runs/{task_run['id']}")
    assert status == 200 and shown == {**plain, "flow_run_name": "the-run"}
    status, answer = await server.request("GET", f"/ui/task_runs/{uuid.uuid4()}")
    assert status == 404 and answer == {"detail": "Task not found"}


async def test_saved_searches_upsert_by_name_list_by_name_and_delete(server, clock) -> None:
    flt = {"object": "flow_run", "property": "state", "type": "string", "operation": "equals", "value": "Failed"}
    status, first = await server.request("PUT", "/saved_searches/", json={"name": "failed runs", "filters": [flt]})
    assert status == 201 and first["name"] == "failed runs" and first["filters"] == [flt]
    assert first["created"] == first["updated"] == "2026-03-01T12:00:00Z"
    clock.advance(60)
    replaced = {**flt, "value": "Crashed"}
    status, again = await server.request("PUT", "/saved_searches/", json={"name": "failed runs", "filters": [replaced]})
    assert status == 200 and again["id"] == first["id"] and again["filters"] == [replaced]
    assert again["created"] == first["created"] and again["updated"] == "2026-03-01T12:01:00Z"
    status, other = await server.request("PUT", "/saved_searches/", json={"name": "all runs"})
    assert status == 201 and other["filters"] == []

    status, listed = await server.request("POST", "/saved_searches/filter", json={})
    assert status == 200 and [s["name"] for s in listed] == ["all runs", "failed runs"]
    status, page = await server.request("POST", "/saved_searches/filter", json={"offset": 1, "limit": 1})
    assert [s["name"] for s in page] == ["failed runs"]
    status, read = await server.request("GET", f"/saved_searches/{first['id']}")
    assert status == 200 and read == again

    status, _ = await server.request("DELETE", f"/saved_searches/{first['id']}")
    assert status == 204
    status, answer = await server.request("GET", f"/saved_searches/{first['id']}")
    assert status == 404 and answer == {"detail": "Saved search not found"}
    status, answer = await server.request("DELETE", f"/saved_searches/{first['id']}")
    assert status == 404
    status, answer = await server.request("PUT", "/saved_searches/", json={"filters": []})
    assert status == 422, answer

    # Kept in the log: every save and the delete, on the one stream.
    store = server.app[keys.STORE]
    kinds = [type(catalogue.decode(r.data)).__name__ async for r in store.read_stream("saved_searches")]
    assert kinds == ["SavedSearchSaved", "SavedSearchSaved", "SavedSearchSaved", "SavedSearchDeleted"]


SCHEMA = {
    "type": "object",
    "properties": {
        "x": {"type": "integer"}, "name": {"type": "string"},
        "rows": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["x"],
}


async def test_schema_validation_answers_errors_by_property_as_prefect(server) -> None:
    status, ok = await server.request("POST", "/ui/schemas/validate", json={"schema": SCHEMA, "values": {"x": 1}})
    assert status == 200 and ok == {"errors": [], "valid": True}
    status, bad = await server.request("POST", "/ui/schemas/validate", json={
        "schema": SCHEMA, "values": {"name": "n", "rows": [1, "two"]},
    })
    assert status == 200 and bad["valid"] is False
    assert {"property": "x", "errors": ["'x' is a required property"]} in bad["errors"]
    assert {"property": "rows", "errors": [{"index": 1, "errors": ["'two' is not of type 'integer'"]}]} in bad["errors"]
    # An optional property without a default may be null (Prefect's preprocessing).
    status, null = await server.request("POST", "/ui/schemas/validate", json={"schema": SCHEMA, "values": {"x": 1, "name": None}})
    assert null == {"errors": [], "valid": True}


async def test_schema_validation_resolves_workspace_variables_and_refuses_a_bad_schema(server) -> None:
    status, _ = await server.request("POST", "/variables/", json={"name": "count", "value": 3})
    assert status == 201
    variable = {"__prefect_kind": "workspace_variable", "variable_name": "count"}
    status, ok = await server.request("POST", "/ui/schemas/validate", json={"schema": SCHEMA, "values": {"x": variable}})
    assert status == 200 and ok["valid"] is True, ok
    status, answer = await server.request("POST", "/ui/schemas/validate", json={
        "schema": {"type": "object", "properties": {"x": {"type": 12}}}, "values": {},
    })
    assert status == 422 and answer["detail"].startswith("Invalid schema:")
    status, answer = await server.request("POST", "/ui/schemas/validate", json={"values": {}})
    assert status == 422


async def test_collection_views_come_from_the_prefect_package(server) -> None:
    status, view = await server.request("GET", "/collections/views/aggregate-worker-metadata")
    assert status == 200 and "process" in view["prefect"] and "prefect-agent" not in view["prefect"]
    status, answer = await server.request("GET", "/collections/views/no-such-view")
    assert status == 404 and answer == {"detail": "View no-such-view not found in registry"}
    status, answer = await server.request("GET", "/collections/views/demo-flows")  # not shipped
    assert status == 404 and answer == {"detail": "Requested content missing for view demo-flows"}
