"""Runs in work pools over a real server on both backends: a run created with a work pool name
records its queue, get_scheduled_flow_runs answers as Prefect's worker query does, and the flow
run filters on pools and queues find it."""

from __future__ import annotations

from datetime import timedelta

from .conftest import START

from runlog.api import keys
from runlog.schema import events as catalogue


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def make_flow(server) -> str:
    status, flow = await server.request("POST", "/flows/", json={"name": "pooled"})
    assert status in (200, 201), flow
    return flow["id"]


async def scheduled_run(server, flow_id: str, name: str, when: float, pool: str | None = "p", queue: str | None = None) -> dict:
    body = {
        "flow_id": flow_id, "name": name, "work_pool_name": pool, "work_queue_name": queue,
        "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": at(when)}},
    }
    status, run = await server.request("POST", "/flow_runs/", json=body)
    assert status == 201, run
    return run


async def set_state(server, run_id: str, state_type: str) -> None:
    status, answer = await server.request(
        "POST", f"/flow_runs/{run_id}/set_state", json={"state": {"type": state_type}, "force": True}
    )
    assert status in (200, 201) and answer["status"] == "ACCEPT", answer


async def poll(server, pool: str = "p", **body) -> list[dict]:
    status, answer = await server.request("POST", f"/work_pools/{pool}/get_scheduled_flow_runs", json=body)
    assert status == 200, answer
    return answer


async def test_a_run_created_in_a_pool_records_its_queue_and_pool(server) -> None:
    _, pool = await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    _, fast = await server.request("POST", "/work_pools/p/queues", json={"name": "fast"})
    flow_id = await make_flow(server)
    default_run = await scheduled_run(server, flow_id, "in-default", 0)
    assert default_run["work_queue_id"] == pool["default_queue_id"] and default_run["work_pool_id"] == pool["id"]
    assert default_run["work_queue_name"] == "default" and default_run["work_pool_name"] == "p"
    fast_run = await scheduled_run(server, flow_id, "in-fast", 0, queue="fast")
    assert fast_run["work_queue_id"] == fast["id"]
    nowhere = await scheduled_run(server, flow_id, "no-such-pool", 0, pool="missing")
    assert nowhere["work_queue_id"] is None and nowhere["work_pool_id"] is None
    status, read = await server.request("GET", f"/flow_runs/{fast_run['id']}")
    assert status == 200 and read["work_queue_id"] == fast["id"]

    async def names(body: dict) -> set[str]:
        status, runs = await server.request("POST", "/flow_runs/filter", json=body)
        assert status == 200, runs
        return {r["name"] for r in runs}

    assert await names({"work_pools": {"name": {"any_": ["p"]}}}) == {"in-default", "in-fast"}
    assert await names({"work_pool_queues": {"name": {"any_": ["fast"]}}}) == {"in-fast"}
    assert await names({"work_pool_queues": {"id": {"any_": [pool["default_queue_id"]]}}}) == {"in-default"}
    assert await names({"flow_runs": {"work_queue_name": {"any_": ["default"]}}}) == {"in-default"}
    status, count = await server.request("POST", "/flow_runs/count", json={"work_pools": {"id": {"any_": [pool["id"]]}}})
    assert status == 200 and count == 2


async def test_scheduled_runs_come_by_queue_priority_then_time_within_the_bounds(server, clock) -> None:
    await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    await server.request("POST", "/work_pools/p/queues", json={"name": "urgent", "priority": 1})  # default becomes 2
    flow_id = await make_flow(server)
    await scheduled_run(server, flow_id, "default-early", 0)
    await scheduled_run(server, flow_id, "default-late", 30)
    await scheduled_run(server, flow_id, "urgent-later", 20, queue="urgent")
    await scheduled_run(server, flow_id, "far-future", 3600, queue="urgent")
    running = await scheduled_run(server, flow_id, "running", 0)
    await set_state(server, running["id"], "RUNNING")

    got = await poll(server, scheduled_before=at(60))
    assert [r["flow_run"]["name"] for r in got] == ["urgent-later", "default-early", "default-late"]
    assert {r["work_pool_id"] for r in got} == {got[0]["flow_run"]["work_pool_id"]}
    assert got[0]["work_queue_id"] == got[0]["flow_run"]["work_queue_id"]
    assert [r["flow_run"]["name"] for r in await poll(server, scheduled_before=at(60), scheduled_after=at(10))] == [
        "urgent-later", "default-late",
    ]
    assert [r["flow_run"]["name"] for r in await poll(server, scheduled_before=at(60), limit=1)] == ["urgent-later"]
    assert [r["flow_run"]["name"] for r in await poll(server, work_queue_names=["default"], scheduled_before=at(60))] == [
        "default-early", "default-late",
    ]
    status, answer = await server.request("POST", "/work_pools/p/get_scheduled_flow_runs", json={"work_queue_names": ["nope"]})
    assert status == 404 and answer["detail"]


async def test_concurrency_limits_and_pauses_hold_runs_back(server) -> None:
    await server.request("POST", "/work_pools/", json={"name": "p", "type": "process", "concurrency_limit": 2})
    flow_id = await make_flow(server)
    runs = [await scheduled_run(server, flow_id, f"run-{i}", i) for i in range(4)]
    await set_state(server, runs[0]["id"], "PENDING")
    # the pool's limit 2, one Pending: one more
    assert [r["flow_run"]["name"] for r in await poll(server)] == ["run-1"]
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["active_slots"] == 1
    await server.request("PATCH", "/work_pools/p", json={"concurrency_limit": None})
    await server.request("PATCH", "/work_pools/p/queues/default", json={"concurrency_limit": 3})
    assert [r["flow_run"]["name"] for r in await poll(server)] == ["run-1", "run-2"]
    await server.request("PATCH", "/work_pools/p/queues/default", json={"is_paused": True})
    assert await poll(server) == []
    await server.request("PATCH", "/work_pools/p/queues/default", json={"is_paused": False, "concurrency_limit": None})
    await server.request("PATCH", "/work_pools/p", json={"is_paused": True})
    assert await poll(server) == []
    await server.request("PATCH", "/work_pools/p", json={"is_paused": False})
    assert len(await poll(server)) == 3


async def test_a_poll_marks_the_queues_polled_and_ready_once(server, clock) -> None:
    await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    await poll(server)
    clock.advance(5)
    await poll(server)
    _, queue = await server.request("GET", "/work_pools/p/queues/default")
    assert queue["status"] == "READY" and queue["last_polled"] == at(5)
    store = server.app[keys.STORE]
    events = [catalogue.decode(r.data) async for r in store.read_all() if r.type.startswith("work_queue.")]
    assert [type(e).__name__ for e in events] == [
        "WorkQueueCreated", "WorkQueuesPolled", "WorkQueueStatusChanged", "WorkQueuesPolled",
    ]
