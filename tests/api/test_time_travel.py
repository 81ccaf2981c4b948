"""Time travel over HTTP: ``?at=`` on the flow run, work pool and concurrency limit reads answers
from a fold of the log up to that position (or the last position recorded at or before a time)."""

from __future__ import annotations


import pytest

from runlog.api import keys


async def head(server) -> int:
    return await server.app[keys.STORE].head()


async def new_run(server, **fields) -> dict:
    status, flow = await server.request("POST", "/flows/", json={"name": "etl"})
    assert status in (200, 201), flow
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], **fields})
    assert status == 201, run
    return run


async def test_a_flow_run_read_at_a_position_shows_its_state_and_bookkeeping_then(server, clock) -> None:
    run = await new_run(server, name="brisk-otter")
    created = await head(server)
    await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    running = await head(server)
    clock.advance(90)
    await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "COMPLETED"}})

    status, then = await server.request("GET", f"/flow_runs/{run['id']}?at={running}")
    assert status == 200
    assert then["state_type"] == "RUNNING" and then["run_count"] == 1
    assert then["end_time"] is None and then["total_run_time"] == 0
    status, first = await server.request("GET", f"/flow_runs/{run['id']}?at={created}")
    assert first["state_type"] == "PENDING" and first["run_count"] == 0 and first["start_time"] is None
    _, now = await server.request("GET", f"/flow_runs/{run['id']}")
    assert now["state_type"] == "COMPLETED" and now["total_run_time"] == pytest.approx(90.0, abs=0.01)
    # Folded up to the head, the run is exactly the live one: one fold, not two.
    _, latest = await server.request("GET", f"/flow_runs/{run['id']}?at={await head(server)}")
    assert latest == now
    _, states = await server.request("GET", f"/flow_run_states/?flow_run_id={run['id']}&at={running}")
    assert [s["type"] for s in states] == ["PENDING", "RUNNING"]


async def test_the_answer_names_the_position_it_reflects(server) -> None:
    run = await new_run(server)
    position = await head(server)
    async with server.session.get(f"{server.base}/flow_runs/{run['id']}?at={position}") as response:
        assert response.status == 200
        assert response.headers["X-Runlog-Position"] == str(position)


async def test_a_time_resolves_to_the_last_position_recorded_at_or_before_it(server) -> None:
    run = await new_run(server)
    created = await head(server)
    await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
    # recorded_at is the store's own time of the append; ask for exactly the creation's.
    async with server.app[keys.STORE].reading() as tx:
        sql = ("SELECT recorded_at FROM events WHERE position = ?" if tx.dialect == "sqlite"
               else "SELECT recorded_at::text FROM events WHERE position = ?")
        (recorded,) = (await tx.fetch(sql, created))[0]
    when = str(recorded).replace(" ", "T")
    if when.endswith("+00"):
        when += ":00"
    async with server.session.get(f"{server.base}/flow_runs/{run['id']}", params={"at": when}) as response:
        then = await response.json()
        assert response.status == 200, then
        assert response.headers["X-Runlog-Position"] == str(created)
    assert then["state_type"] == "PENDING"


async def test_a_bad_at_is_a_422_and_a_run_not_yet_created_a_404(server) -> None:
    _, flow = await server.request("POST", "/flows/", json={"name": "etl"})
    before = await head(server)
    _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"]})
    for bad in ("yesterday", "-3", "1.5", str(await head(server) + 10)):
        status, answer = await server.request("GET", f"/flow_runs/{run['id']}", params={"at": bad})
        assert status == 422, bad
        assert "at" in answer["detail"]
    status, answer = await server.request("GET", f"/flow_runs/{run['id']}?at={before}")
    assert status == 404 and f"position {before}" in answer["detail"]
    status, _ = await server.request("GET", f"/flow_runs/{run['id']}", params={"at": "2001-01-01T00:00:00Z"})
    assert status == 404


async def test_a_deleted_run_is_still_there_before_its_deletion(server) -> None:
    run = await new_run(server, name="gone-soon")
    alive = await head(server)
    status, _ = await server.request("DELETE", f"/flow_runs/{run['id']}")
    assert status == 204
    assert (await server.request("GET", f"/flow_runs/{run['id']}"))[0] == 404
    status, then = await server.request("GET", f"/flow_runs/{run['id']}?at={alive}")
    assert status == 200 and then["name"] == "gone-soon"


async def test_a_work_pool_read_at_a_position_shows_its_queues_and_workers_then(server, clock) -> None:
    status, _ = await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    assert status == 201
    created = await head(server)
    status, _ = await server.request("POST", "/work_pools/p/queues", json={"name": "high", "priority": 1})
    assert status == 201
    await server.request("POST", "/work_pools/p/workers/heartbeat", json={"name": "w1", "heartbeat_interval_seconds": 30})
    with_worker = await head(server)
    await server.request("PATCH", "/work_pools/p", json={"description": "later", "concurrency_limit": 3})

    status, then = await server.request("GET", f"/work_pools/p?at={created}")
    assert status == 200
    assert then["description"] is None and then["concurrency_limit"] is None
    assert [q["name"] for q in then["queues"]] == ["default"] and then["workers"] == []
    _, later = await server.request("GET", f"/work_pools/p?at={with_worker}")
    assert sorted(q["name"] for q in later["queues"]) == ["default", "high"]
    assert [w["name"] for w in later["workers"]] == ["w1"]
    _, now = await server.request("GET", f"/work_pools/p?at={await head(server)}")
    assert now["description"] == "later" and now["concurrency_limit"] == 3
    # Folded up to the head, the pool, its queues and its workers are exactly the live ones.
    _, live = await server.request("GET", "/work_pools/p")
    _, live_queues = await server.request("POST", "/work_pools/p/queues/filter", json={})
    _, live_workers = await server.request("POST", "/work_pools/p/workers/filter", json={})
    queues, workers = now.pop("queues"), now.pop("workers")
    assert {**now, "active_slots": live["active_slots"]} == live
    key = lambda item: item["id"]  # noqa: E731
    assert sorted(queues, key=key) == sorted(live_queues, key=key)
    assert workers == live_workers
    status, answer = await server.request("GET", "/work_pools/p?at=0")
    assert status == 404 and "not found at log position 0" in answer["detail"]


async def test_a_concurrency_limit_read_at_a_position_shows_its_limit_and_slots_then(server, clock) -> None:
    status, made = await server.request("POST", "/v2/concurrency_limits/", json={"name": "db", "limit": 2})
    assert status == 201
    created = await head(server)
    status, _ = await server.request("POST", "/v2/concurrency_limits/increment-with-lease", json={
        "names": ["db"], "slots": 1, "mode": "concurrency", "lease_duration": 300})
    assert status == 200
    taken = await head(server)
    await server.request("PATCH", "/v2/concurrency_limits/db", json={"limit": 5})

    _, then = await server.request("GET", f"/v2/concurrency_limits/db?at={created}")
    assert then["limit"] == 2 and then["active_slots"] == 0
    _, held = await server.request("GET", f"/v2/concurrency_limits/{made['id']}?at={taken}")
    assert held["limit"] == 2 and held["active_slots"] == 1
    _, now = await server.request("GET", "/v2/concurrency_limits/db")
    assert now["limit"] == 5
    status, _ = await server.request("GET", f"/v2/concurrency_limits/db?at={created - 1}")
    assert status == 404


async def test_a_tag_limit_read_at_a_position(server) -> None:
    status, _ = await server.request("POST", "/concurrency_limits/", json={"tag": "gpu", "concurrency_limit": 1})
    assert status in (200, 201)
    created = await head(server)
    await server.request("POST", "/concurrency_limits/", json={"tag": "gpu", "concurrency_limit": 4})
    _, then = await server.request("GET", f"/concurrency_limits/tag/gpu?at={created}")
    assert then["concurrency_limit"] == 1
    _, by_id = await server.request("GET", f"/concurrency_limits/{then['id']}?at={created}")
    assert by_id == then
    _, now = await server.request("GET", "/concurrency_limits/tag/gpu")
    assert now["concurrency_limit"] == 4


async def test_a_workers_heartbeats_and_lives_at_each_position(server, clock) -> None:
    """Of a worker's heartbeats only the first and last of each life up to the position shape
    its view: checked at every position of a worker beating, deleted and beating again."""
    await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
    expected: list[tuple[int, object]] = []

    async def beat() -> None:
        status, _ = await server.request("POST", "/work_pools/p/workers/heartbeat", json={"name": "w"})
        assert status == 204
        _, live = await server.request("POST", "/work_pools/p/workers/filter", json={})
        expected.append((await head(server), live))

    for _ in range(3):
        await beat()
        clock.advance(10)
    status, _ = await server.request("DELETE", "/work_pools/p/workers/w")
    assert status == 204
    expected.append((await head(server), []))
    for _ in range(3):
        clock.advance(10)
        await beat()
    for position, live in expected:
        _, then = await server.request("GET", f"/work_pools/p?at={position}")
        assert then["workers"] == live, position
