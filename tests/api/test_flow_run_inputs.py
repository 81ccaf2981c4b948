"""/flow_runs/{id}/input and /flow_runs/{id}/resume over HTTP, on both backends: Prefect's
codes and messages, the input checked against the schema the paused flow stored, and the
inputs table rebuilt from the log equal to the live one."""

from __future__ import annotations

import json

from runlog.projections.verify import verify


async def paused_run(server, keyset: dict[str, str] | None = None) -> str:
    _, flow = await server.request("POST", "/flows/", json={"name": "waits-for-input"})
    _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"]})
    for state in ({"type": "RUNNING"},
                  {"type": "PAUSED", "name": "Paused",
                   "state_details": {"pause_key": "1", "run_input_keyset": keyset}}):
        status, result = await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": state})
        assert result["status"] == "ACCEPT", result
    return run["id"]


async def test_inputs_are_created_read_filtered_and_deleted(server) -> None:
    run_id = await paused_run(server)
    base = f"/flow_runs/{run_id}/input"
    for key, value in (("greeting", '"hi"'), ("greeting-2", '{"n": 2}'), ("other", "plain text")):
        status, body = await server.request("POST", base, json={"key": key, "value": value, "sender": "me"})
        assert (status, body) == (201, None)

    assert await server.request("GET", f"{base}/greeting-2") == (200, '{"n": 2}')
    assert await server.request("GET", f"{base}/other") == (200, "plain text")
    status, found = await server.request("POST", f"{base}/filter", json={"prefix": "greeting", "limit": 5})
    assert status == 200
    assert [(i["key"], i["value"], i["sender"], i["flow_run_id"]) for i in found] == [
        ("greeting", '"hi"', "me", run_id), ("greeting-2", '{"n": 2}', "me", run_id)]
    _, limited = await server.request("POST", f"{base}/filter", json={"prefix": "greeting"})
    assert [i["key"] for i in limited] == ["greeting"]  # Prefect's default limit is 1
    _, excluded = await server.request("POST", f"{base}/filter",
                                       json={"prefix": "", "limit": 10, "exclude_keys": ["greeting"]})
    assert [i["key"] for i in excluded] == ["greeting-2", "other"]

    status, body = await server.request("POST", base, json={"key": "greeting", "value": "again"})
    assert (status, body) == (409, {"detail": "A flow run input with this key already exists."})
    assert (await server.request("DELETE", f"{base}/greeting"))[0] == 204
    assert await server.request("GET", f"{base}/greeting") == (404, {"detail": "Flow run input not found"})
    assert await server.request("DELETE", f"{base}/greeting") == (404, {"detail": "Flow run input not found"})
    # The key is free again once deleted.
    assert (await server.request("POST", base, json={"key": "greeting", "value": "again"}))[0] == 201


async def test_bad_keys_and_unknown_runs_are_refused(server) -> None:
    run_id = await paused_run(server)
    status, body = await server.request("POST", f"/flow_runs/{run_id}/input", json={"key": "Not_OK", "value": "x"})
    assert status == 422 and "lowercase letters, numbers, and dashes" in body["detail"]
    unknown = "00000000-0000-4000-8000-000000000001"
    assert await server.request("POST", f"/flow_runs/{unknown}/input", json={"key": "k", "value": "x"}) == (
        404, {"detail": "Flow run not found"})
    assert (await server.request("POST", f"/flow_runs/{unknown}/resume", json={}))[0] == 404


SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name"]}
KEYSET = {"description": "paused-1-description", "response": "paused-1-response", "schema": "paused-1-schema"}


async def test_resume_checks_the_input_against_the_stored_schema_and_stores_it(server) -> None:
    run_id = await paused_run(server, KEYSET)
    base = f"/flow_runs/{run_id}"

    status, result = await server.request("POST", f"{base}/resume", json={"run_input": {"name": "x"}})
    assert status == 200
    assert (result["status"], result["details"]) == (
        "REJECT", {"type": "abort_details", "reason": "Run input schema not found."})
    assert result["state"]["type"] == "PAUSED"

    await server.request("POST", f"{base}/input", json={"key": KEYSET["schema"], "value": json.dumps(SCHEMA)})
    status, result = await server.request("POST", f"{base}/resume", json={"run_input": {"name": 3}})
    assert (status, result["status"]) == (200, "REJECT")
    assert result["details"]["reason"] == (
        "Reason: Validation failed for field 'name'. Failure reason: 3 is not of type 'string'")
    assert (await server.request("GET", f"{base}/input/{KEYSET['response']}"))[0] == 404

    status, result = await server.request("POST", f"{base}/resume", json={"run_input": {"name": "Ada", "age": 36}})
    assert (status, result["status"], result["state"]["type"]) == (201, "ACCEPT", "RUNNING")
    status, stored = await server.request("GET", f"{base}/input/{KEYSET['response']}")
    assert status == 200 and json.loads(stored) == {"name": "Ada", "age": 36}

    status, result = await server.request("POST", f"{base}/resume", json={})
    assert (status, result) == (200, {"state": None, "status": "ABORT", "details": {
        "type": "abort_details", "reason": "Cannot resume a flow run that is not paused."}})


async def test_resume_without_a_keyset_just_resumes(server) -> None:
    run_id = await paused_run(server)
    status, result = await server.request("POST", f"/flow_runs/{run_id}/resume")
    assert (status, result["status"], result["state"]["type"]) == (201, "ACCEPT", "RUNNING")


async def test_inputs_table_rebuilt_from_the_log_equals_the_live_one_and_a_deleted_run_takes_its_inputs(
    server, store_url,
) -> None:
    run_id = await paused_run(server)
    for key in ("a", "b", "c"):
        await server.request("POST", f"/flow_runs/{run_id}/input", json={"key": key, "value": key})
    await server.request("DELETE", f"/flow_runs/{run_id}/input/b")
    other = await paused_run(server)
    await server.request("POST", f"/flow_runs/{other}/input", json={"key": "a", "value": "kept"})
    assert (await server.request("DELETE", f"/flow_runs/{run_id}"))[0] == 204
    assert await server.request("GET", f"/flow_runs/{run_id}/input/a") == (404, {"detail": "Flow run input not found"})
    assert await server.request("GET", f"/flow_runs/{other}/input/a") == (200, "kept")

    report = await verify(store_url)
    (check,) = [check for check in report.tables if check.table == "flow_run_inputs"]
    assert check.live == 1  # the other run's "a": the deleted run took its inputs with it
    assert report.equal, report
