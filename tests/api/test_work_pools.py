"""/work_pools, their queues and workers, and /work_queues over a real server on both backends:
Prefect 3.8's routes, shapes, status codes and status rules, on a manual clock."""

from __future__ import annotations


from runlog.api import keys
from runlog.commands.workers import check_statuses
from runlog.projections.verify import verify
from runlog.schema import events as catalogue

TEMPLATE = {"job_configuration": {"command": "{{ command }}"}, "variables": {"properties": {"command": {"type": "string"}}}}


async def create_pool(server, name: str, **fields) -> dict:
    status, answer = await server.request("POST", "/work_pools/", json={"name": name, "type": "process", **fields})
    assert status == 201, answer
    return answer


async def heartbeat(server, pool: str, worker: str, interval: int | None = 30) -> None:
    status, answer = await server.request(
        "POST", f"/work_pools/{pool}/workers/heartbeat", json={"name": worker, "heartbeat_interval_seconds": interval}
    )
    assert status == 204, answer


async def pool_events(server) -> list:
    store = server.app[keys.STORE]
    return [catalogue.decode(r.data) async for r in store.read_all()
            if r.type.startswith(("work_pool.", "work_queue.", "worker."))]


async def test_a_pool_is_created_with_its_template_and_a_default_queue(server) -> None:
    pool = await create_pool(server, "mypool", base_job_template=TEMPLATE)
    assert pool["base_job_template"] == TEMPLATE and pool["type"] == "process"
    assert pool["status"] == "NOT_READY" and pool["is_paused"] is False and pool["concurrency_limit"] is None
    assert pool["storage_configuration"] == {
        "bundle_upload_step": None, "bundle_execution_step": None, "default_result_storage_block_id": None,
    }
    status, read = await server.request("GET", "/work_pools/mypool")
    assert status == 200 and read == pool
    status, queues = await server.request("POST", "/work_pools/mypool/queues/filter", json={})
    assert status == 200 and [q["name"] for q in queues] == ["default"]
    assert queues[0]["id"] == pool["default_queue_id"] and queues[0]["priority"] == 1
    assert queues[0]["work_pool_name"] == "mypool" and queues[0]["status"] == "NOT_READY"
    status, by_id = await server.request("GET", f"/work_queues/{pool['default_queue_id']}")
    assert status == 200 and by_id["name"] == "default"


async def test_duplicate_reserved_and_unknown_pools_get_prefects_answers(server) -> None:
    await create_pool(server, "dup")
    status, answer = await server.request("POST", "/work_pools/", json={"name": "dup", "type": "process"})
    assert status == 409 and answer["detail"] == "A work pool with this name already exists."
    status, answer = await server.request("POST", "/work_pools/", json={"name": "Prefect-x", "type": "process"})
    assert status == 403 and "reserved" in answer["detail"]
    status, answer = await server.request("POST", "/work_pools/", json={"name": "a/b", "type": "process"})
    assert status == 422 and answer["detail"]
    status, answer = await server.request("GET", "/work_pools/nope")
    assert status == 404 and answer == {"detail": 'Work pool "nope" not found.'}
    status, answer = await server.request("POST", "/work_pools/nope/workers/heartbeat", json={"name": "w"})
    assert status == 404


async def test_filter_count_patch_and_delete_pools(server) -> None:
    for name in ("b-pool", "a-pool", "c-pool"):
        await create_pool(server, name)
    status, pools = await server.request("POST", "/work_pools/filter", json={"limit": None, "offset": 0, "work_pools": None})
    assert status == 200 and [p["name"] for p in pools] == ["a-pool", "b-pool", "c-pool"]
    status, count = await server.request("POST", "/work_pools/count", json={"work_pools": {"name": {"any_": ["a-pool", "c-pool"]}}})
    assert status == 200 and count == 2
    status, _ = await server.request("PATCH", "/work_pools/a-pool", json={"description": "d", "concurrency_limit": 3})
    assert status == 204
    _, pool = await server.request("GET", "/work_pools/a-pool")
    assert pool["description"] == "d" and pool["concurrency_limit"] == 3 and pool["active_slots"] == 0
    status, _ = await server.request("DELETE", "/work_pools/a-pool")
    assert status == 204
    status, _ = await server.request("GET", "/work_pools/a-pool")
    assert status == 404
    status, _ = await server.request("DELETE", "/work_pools/a-pool")
    assert status == 404


async def test_pausing_a_pool_records_paused_and_unpausing_goes_by_its_workers(server, clock) -> None:
    await create_pool(server, "p")
    await heartbeat(server, "p", "w1")
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["status"] == "READY"
    await server.request("PATCH", "/work_pools/p", json={"is_paused": True})
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["status"] == "PAUSED" and pool["is_paused"] is True
    clock.advance(91)  # the worker is gone by now
    await server.request("PATCH", "/work_pools/p", json={"is_paused": False})
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["status"] == "NOT_READY"
    statuses = [e.status for e in await pool_events(server) if isinstance(e, catalogue.WorkPoolStatusChanged)]
    assert statuses == ["READY", "PAUSED", "NOT_READY"]


async def test_a_worker_goes_online_with_a_heartbeat_and_offline_after_three_missed(server, clock, env) -> None:
    await create_pool(server, "p")
    await heartbeat(server, "p", "w1", interval=10)
    status, workers = await server.request("POST", "/work_pools/p/workers/filter", json={})
    assert status == 200 and len(workers) == 1
    assert workers[0]["name"] == "w1" and workers[0]["status"] == "ONLINE" and workers[0]["heartbeat_interval_seconds"] == 10
    assert workers[0]["last_heartbeat_time"] == "2026-03-01T12:00:00Z"
    clock.advance(29)
    store = server.app[keys.STORE]
    assert await check_statuses(store, clock()) == 0
    clock.advance(2)  # 31 s > 3 x 10 s
    assert await check_statuses(store, clock()) == 2  # the worker OFFLINE, the pool NOT_READY
    assert await check_statuses(store, clock()) == 0  # once per change
    _, workers = await server.request("POST", "/work_pools/p/workers/filter", json={"workers": {"status": {"any_": ["OFFLINE"]}}})
    assert [w["status"] for w in workers] == ["OFFLINE"]
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["status"] == "NOT_READY"
    await heartbeat(server, "p", "w1", interval=10)
    _, pool = await server.request("GET", "/work_pools/p")
    assert pool["status"] == "READY"
    worker_statuses = [e.status for e in await pool_events(server) if isinstance(e, catalogue.WorkerStatusChanged)]
    assert worker_statuses == ["ONLINE", "OFFLINE", "ONLINE"]
    status, _ = await server.request("DELETE", "/work_pools/p/workers/w1")
    assert status == 204
    _, workers = await server.request("POST", "/work_pools/p/workers/filter", json={})
    assert workers == []
    status, answer = await server.request("DELETE", "/work_pools/p/workers/w1")
    assert status == 404 and answer == {"detail": "Worker not found."}
    assert (await verify(env["RUNLOG_DATABASE_URL"])).equal


async def test_queues_in_a_pool_create_read_patch_delete_and_priorities(server, env) -> None:
    await create_pool(server, "p")
    status, high = await server.request("POST", "/work_pools/p/queues", json={"name": "high", "priority": 1})
    assert status == 201 and high["priority"] == 1 and high["work_pool_name"] == "p"
    _, queues = await server.request("POST", "/work_pools/p/queues/filter", json={})
    assert [(q["name"], q["priority"]) for q in queues] == [("high", 1), ("default", 2)]
    status, low = await server.request("POST", "/work_pools/p/queues", json={"name": "low"})
    assert status == 201 and low["priority"] == 3
    status, answer = await server.request("POST", "/work_pools/p/queues", json={"name": "low"})
    assert status == 409 and answer["detail"]
    status, read = await server.request("GET", "/work_pools/p/queues/low")
    assert status == 200 and read["id"] == low["id"]
    status, _ = await server.request("PATCH", "/work_pools/p/queues/low", json={"concurrency_limit": 2, "is_paused": True})
    assert status == 204
    _, read = await server.request("GET", f"/work_queues/{low['id']}")
    assert read["concurrency_limit"] == 2 and read["is_paused"] is True and read["status"] == "PAUSED"
    assert read["active_slots"] == 0
    status, _ = await server.request("DELETE", "/work_pools/p/queues/high")
    assert status == 204
    _, queues = await server.request("POST", "/work_pools/p/queues/filter", json={})
    # as in Prefect, a deletion leaves the gap (priorities only stay unique and in order)
    assert [(q["name"], q["priority"]) for q in queues] == [("default", 2), ("low", 3)]
    status, answer = await server.request("DELETE", "/work_pools/p/queues/default")
    assert status == 422 and answer["detail"] == "Can't delete a pool's default queue."
    status, answer = await server.request("GET", "/work_pools/p/queues/high")
    assert status == 404 and answer == {"detail": "Work pool queue 'p/high' not found."}
    status, _ = await server.request("GET", f"/work_queues/{high['id']}")
    assert status == 404
    assert (await verify(env["RUNLOG_DATABASE_URL"])).equal


async def test_work_queues_routes_and_the_queue_status(server, clock) -> None:
    status, queue = await server.request("POST", "/work_queues/", json={"name": "legacy"})
    assert status == 201 and queue["work_pool_name"] == "default-agent-pool"
    status, by_name = await server.request("GET", "/work_queues/name/legacy")
    assert status == 200 and by_name["id"] == queue["id"]
    status, listed = await server.request("POST", "/work_queues/filter", json={"work_queues": {"name": {"startswith_": ["leg"]}}})
    assert status == 200 and [q["name"] for q in listed] == ["legacy"]
    status, detail = await server.request("GET", f"/work_queues/{queue['id']}/status")
    assert status == 200 and detail == {
        "healthy": False, "late_runs_count": 0, "last_polled": None,
        "health_check_policy": {"maximum_late_runs": 0, "maximum_seconds_since_last_polled": 60},
    }
    status, runs = await server.request("POST", f"/work_queues/{queue['id']}/get_runs", json={})
    assert status == 200 and runs == []
    _, detail = await server.request("GET", f"/work_queues/{queue['id']}/status")
    assert detail["healthy"] is True and detail["last_polled"] == "2026-03-01T12:00:00Z"
    _, read = await server.request("GET", f"/work_queues/{queue['id']}")
    assert read["status"] == "READY"
    clock.advance(61)
    assert await check_statuses(server.app[keys.STORE], clock()) == 1
    _, read = await server.request("GET", f"/work_queues/{queue['id']}")
    assert read["status"] == "NOT_READY"
    status, _ = await server.request("PATCH", f"/work_queues/{queue['id']}", json={"name": "renamed"})
    assert status == 204
    status, _ = await server.request("DELETE", f"/work_queues/{queue['id']}")
    assert status == 204
    status, answer = await server.request("GET", f"/work_queues/{queue['id']}")
    assert status == 404 and answer["detail"]
