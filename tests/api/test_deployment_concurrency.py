"""Deployment concurrency over a real server on both backends: the limit reads back as Prefect's
global_concurrency_limit, and set_state answers a second run with AwaitingConcurrencySlot."""

from __future__ import annotations

from .test_deployments import deploy, flow


async def run_of(server, deployment_id: str) -> str:
    status, run = await server.request("POST", f"/deployments/{deployment_id}/create_flow_run", json={})
    assert status == 201, run
    return run["id"]


async def test_a_limit_reads_back_as_a_global_concurrency_limit_named_after_the_deployment(server) -> None:
    _status, created = await deploy(server, await flow(server), concurrency_limit=1)
    assert created["concurrency_limit"] is None and created["concurrency_options"] is None
    assert created["global_concurrency_limit"]["limit"] == 1
    assert created["global_concurrency_limit"]["name"] == f"deployment:{created['id']}"
    status, limit = await server.request("GET", f"/v2/concurrency_limits/deployment:{created['id']}")
    assert status == 200 and limit["limit"] == 1 and limit["id"] == created["global_concurrency_limit"]["id"]

    status, _ = await server.request("PATCH", f"/deployments/{created['id']}", json={"concurrency_limit": None})
    assert status == 204
    _status, read = await server.request("GET", f"/deployments/{created['id']}")
    assert read["global_concurrency_limit"] is None


async def test_the_second_run_waits_for_a_slot_and_gets_it_after_the_first_ends(server) -> None:
    _status, created = await deploy(server, await flow(server), concurrency_limit=1)
    first, second = await run_of(server, created["id"]), await run_of(server, created["id"])
    status, answer = await server.request("POST", f"/flow_runs/{first}/set_state", json={"state": {"type": "PENDING"}})
    assert status == 201 and answer["status"] == "ACCEPT"
    lease = answer["state"]["state_details"]["deployment_concurrency_lease_id"]
    assert lease is not None

    status, answer = await server.request("POST", f"/flow_runs/{second}/set_state", json={"state": {"type": "PENDING"}})
    assert answer["status"] == "REJECT", answer
    assert (answer["state"]["type"], answer["state"]["name"]) == ("SCHEDULED", "AwaitingConcurrencySlot")
    assert answer["details"]["reason"] == "Deployment concurrency limit reached."

    await server.request("POST", f"/flow_runs/{first}/set_state", json={"state": {"type": "RUNNING"}})
    await server.request("POST", f"/flow_runs/{first}/set_state", json={"state": {"type": "COMPLETED"}})
    status, limit = await server.request("GET", f"/v2/concurrency_limits/deployment:{created['id']}")
    assert limit["active_slots"] == 0
    status, answer = await server.request(
        "POST", f"/flow_runs/{second}/set_state", json={"state": {"type": "PENDING"}, "force": False}
    )
    assert answer["status"] == "ACCEPT", answer


async def test_a_bad_collision_strategy_is_a_422(server) -> None:
    flow_id = await flow(server)
    status, answer = await server.request("POST", "/deployments/", json={
        "name": "x", "flow_id": flow_id, "concurrency_limit": 1, "concurrency_options": {"collision_strategy": "NOPE"},
    })
    assert status == 422 and "detail" in answer


async def test_the_slot_wait_is_a_setting(env, clock) -> None:
    from datetime import datetime, timedelta

    from ..servers import serve

    async with serve({**env, "RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2m"}, clock=clock) as server:
        _status, created = await deploy(server, await flow(server), concurrency_limit=1)
        first, second = await run_of(server, created["id"]), await run_of(server, created["id"])
        await server.request("POST", f"/flow_runs/{first}/set_state", json={"state": {"type": "PENDING"}})
        _status, answer = await server.request(
            "POST", f"/flow_runs/{second}/set_state", json={"state": {"type": "PENDING"}}
        )
        scheduled = datetime.fromisoformat(answer["state"]["state_details"]["scheduled_time"])
        assert scheduled == clock() + timedelta(minutes=2)
