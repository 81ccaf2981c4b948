"""References that must exist, deletes that cascade, and deleted runs' keys.

Over the real server on both backends. Prefect 3.8.8's own server answers a flow run of an
unknown flow, a subflow run of an unknown parent task run and a task run of an unknown flow run
with 409 "Data integrity conflict" (its foreign keys) and stores nothing; it stores log lines of
unknown flow runs; and a deleted run no longer holds its idempotency key.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from runlog.schema import streams
from runlog.api import keys
from runlog.commands import run_keys
from runlog.commands.integrity import KnownIds
from runlog.eventstore import NewEvent

from . import isolate_runlog_env
from ..servers import serve
from .test_events_in import lifecycle, send_events

UNKNOWN = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def new_flow(server, name: str = "refs") -> str:
    status, flow = await server.request("POST", "/flows/", json={"name": name})
    assert status in (200, 201)
    return flow["id"]


async def new_flow_run(server, flow_id: str, **fields) -> dict:
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow_id, **fields})
    assert status == 201, run
    return run


async def stream_types(server, stream: str) -> list[str]:
    return [record.type async for record in server.app[keys.STORE].read_stream(stream)]


async def event_types(server) -> list[str]:
    return [record.type async for record in server.app[keys.STORE].read_all()]


async def count(server, path: str, body: dict | None = None) -> int:
    status, answer = await server.request("POST", path, json=body or {})
    assert status == 200
    return answer


# -- references a create must find ----------------------------------------------------------------


async def test_a_flow_run_of_an_unknown_flow_is_refused_with_409_naming_it_and_nothing_is_stored(local):
    async with serve(local) as server:
        status, answer = await server.request("POST", "/flow_runs/", json={"flow_id": UNKNOWN, "name": "orphan"})
        assert status == 409
        assert answer["detail"].startswith("Data integrity conflict")
        assert f"flow_id {UNKNOWN}" in answer["detail"]
        assert await event_types(server) == []
        assert await count(server, "/flow_runs/count") == 0


async def test_a_subflow_run_of_an_unknown_parent_task_run_is_refused_with_409_naming_it(local):
    async with serve(local) as server:
        flow_id = await new_flow(server)
        before = await event_types(server)
        status, answer = await server.request(
            "POST", "/flow_runs/", json={"flow_id": flow_id, "parent_task_run_id": UNKNOWN}
        )
        assert status == 409
        assert f"parent_task_run_id {UNKNOWN}" in answer["detail"]
        assert await event_types(server) == before
        # A parent that exists is accepted.
        parent_run = await new_flow_run(server, flow_id)
        _, task = await server.request("POST", "/task_runs/", json={
            "flow_run_id": parent_run["id"], "task_key": "sub", "dynamic_key": "0"})
        subflow = await new_flow_run(server, flow_id, parent_task_run_id=task["id"])
        assert subflow["parent_task_run_id"] == task["id"]


async def test_a_task_run_of_an_unknown_flow_run_is_refused_with_409_naming_it(local):
    async with serve(local) as server:
        status, answer = await server.request("POST", "/task_runs/", json={
            "flow_run_id": UNKNOWN, "task_key": "k", "dynamic_key": "0"})
        assert status == 409
        assert f"flow_run_id {UNKNOWN}" in answer["detail"]
        explicit = str(uuid.uuid4())
        status, _ = await server.request("POST", "/task_runs/", json={
            "flow_run_id": UNKNOWN, "task_key": "k", "dynamic_key": "1", "id": explicit})
        assert status == 409
        assert await event_types(server) == []
        # A task run without a flow run (a background task) needs none.
        status, _ = await server.request("POST", "/task_runs/", json={"task_key": "k", "dynamic_key": "0"})
        assert status == 201


async def test_log_lines_of_an_unknown_flow_run_are_stored_as_prefect_stores_them(local):
    async with serve(local) as server:
        line = {"name": "x", "level": 20, "message": "kept", "timestamp": "2026-01-01T00:00:00Z",
                "flow_run_id": UNKNOWN, "task_run_id": UNKNOWN}
        assert (await server.request("POST", "/logs/", json=[line]))[0] == 201
        status, logs = await server.request("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [UNKNOWN]}}})
        assert status == 200 and [entry["message"] for entry in logs] == ["kept"]


async def test_client_task_run_events_of_an_unknown_flow_run_are_kept_but_build_no_task_run(local):
    async with serve(local) as server:
        task_run_id, flow_run_id = uuid.uuid4(), uuid.UUID(UNKNOWN)
        await send_events(server, lifecycle(task_run_id, flow_run_id))
        assert (await server.request("GET", f"/task_runs/{task_run_id}"))[0] == 404
        assert await stream_types(server, streams.task_run(task_run_id)) == []
        # The events themselves are in the log, as Prefect keeps them.
        assert (await event_types(server)).count("prefect.event") == 3


# -- deletes cascade --------------------------------------------------------------------------------


async def test_deleting_a_flow_deletes_its_runs_and_their_task_runs(local):
    async with serve(local) as server:
        flow_id = await new_flow(server)
        kept_flow = await new_flow(server, "kept")
        runs = [await new_flow_run(server, flow_id) for _ in range(3)]
        kept_run = await new_flow_run(server, kept_flow)
        tasks = []
        for run in (*runs, kept_run):
            _, task = await server.request("POST", "/task_runs/", json={
                "flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"})
            tasks.append(task["id"])
        assert (await server.request("DELETE", f"/flows/{flow_id}"))[0] == 204
        for run in runs:
            assert (await server.request("GET", f"/flow_runs/{run['id']}"))[0] == 404
        for task_id in tasks[:3]:
            assert (await server.request("GET", f"/task_runs/{task_id}"))[0] == 404
        assert (await server.request("GET", f"/flow_runs/{kept_run['id']}"))[0] == 200
        assert (await server.request("GET", f"/task_runs/{tasks[3]}"))[0] == 200
        # The history stays in the log.
        assert (await stream_types(server, streams.flow_run(runs[0]["id"])))[-1] == "flow_run.deleted"
        # This server had just seen the flow exist (it trusts that for a while without reading
        # it again); its deletion is forgotten at once, so a new run of it is refused.
        status, answer = await server.request("POST", "/flow_runs/", json={"flow_id": flow_id})
        assert status == 409 and flow_id in answer["detail"]


def test_known_ids_expire_after_their_ttl_and_are_bounded() -> None:
    now = 0.0
    known = KnownIds(ttl=30.0, size=2, monotonic=lambda: now)
    a, b, c = (uuid.UUID(int=n) for n in (1, 2, 3))
    known.add(a)
    now = 30.0
    assert a in known
    now = 30.5
    assert a not in known  # trusted for 30 s, then read again
    known.add(a)
    known.add(b)
    known.add(c)  # the oldest goes past the size
    assert a not in known and b in known and c in known
    known.discard(b)
    assert b not in known


async def test_deleting_a_flow_run_deletes_its_task_runs(local):
    async with serve(local) as server:
        run = await new_flow_run(server, await new_flow(server))
        _, task = await server.request("POST", "/task_runs/", json={
            "flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"})
        assert (await server.request("DELETE", f"/flow_runs/{run['id']}"))[0] == 204
        assert (await server.request("GET", f"/task_runs/{task['id']}"))[0] == 404
        assert await count(server, "/task_runs/count") == 0


# -- a deleted run's key is free again --------------------------------------------------------------


async def test_a_deleted_flow_runs_idempotency_key_creates_a_new_run_and_keeps_the_old_history(local):
    async with serve(local) as server:
        flow_id = await new_flow(server)
        ids = []
        for _generation in range(3):
            first = await new_flow_run(server, flow_id, idempotency_key="nightly-2026-01-01")
            status, again = await server.request("POST", "/flow_runs/", json={
                "flow_id": flow_id, "idempotency_key": "nightly-2026-01-01"})
            assert status == 200 and again["id"] == first["id"]
            ids.append(first["id"])
            assert (await server.request("DELETE", f"/flow_runs/{first['id']}"))[0] == 204
        assert len(set(ids)) == 3
        for run_id in ids:
            assert await stream_types(server, streams.flow_run(run_id)) == [
                "flow_run.created", "flow_run.state_changed", "flow_run.deleted"]
        # The same key on another flow is another run.
        other = await new_flow_run(server, await new_flow(server, "other"), idempotency_key="nightly-2026-01-01")
        assert other["id"] not in ids


async def test_a_deleted_task_runs_key_creates_a_new_task_run(local):
    async with serve(local) as server:
        run = await new_flow_run(server, await new_flow(server))
        body = {"flow_run_id": run["id"], "task_key": "extract", "dynamic_key": "3"}
        status, first = await server.request("POST", "/task_runs/", json=body)
        assert status == 201
        assert (await server.request("DELETE", f"/task_runs/{first['id']}"))[0] == 204
        status, second = await server.request("POST", "/task_runs/", json=body)
        assert status == 201 and second["id"] != first["id"]
        status, again = await server.request("POST", "/task_runs/", json=body)
        assert status == 200 and again["id"] == second["id"]
        assert (await stream_types(server, streams.task_run(first["id"])))[-1] == "task_run.deleted"


async def test_a_deleted_task_runs_own_id_is_refused_with_a_clear_409(local):
    async with serve(local) as server:
        run = await new_flow_run(server, await new_flow(server))
        body = {"flow_run_id": run["id"], "task_key": "extract", "dynamic_key": "0", "id": str(uuid.uuid4())}
        assert (await server.request("POST", "/task_runs/", json=body))[0] == 201
        assert (await server.request("DELETE", f"/task_runs/{body['id']}"))[0] == 204
        status, answer = await server.request("POST", "/task_runs/", json=body)
        assert status == 409
        assert f"task run {body['id']} was deleted" in answer["detail"]


@pytest.mark.parametrize("deleted_before", [0, 2])
async def test_concurrent_creations_with_one_key_converge_on_one_run(local, deleted_before):
    async with serve(local) as server:
        flow_id = await new_flow(server)
        body = {"flow_id": flow_id, "idempotency_key": "once"}
        for _ in range(deleted_before):
            run = await new_flow_run(server, flow_id, idempotency_key="once")
            assert (await server.request("DELETE", f"/flow_runs/{run['id']}"))[0] == 204
        answers = await asyncio.gather(*(server.request("POST", "/flow_runs/", json=body) for _ in range(16)))
        assert sorted(status for status, _ in answers) == [200] * 15 + [201]
        assert len({run["id"] for _, run in answers}) == 1
        assert await count(server, "/flow_runs/count") == 1


async def test_concurrent_task_run_creations_with_one_key_after_a_deletion_converge(local):
    async with serve(local) as server:
        run = await new_flow_run(server, await new_flow(server))
        body = {"flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"}
        _, first = await server.request("POST", "/task_runs/", json=body)
        assert (await server.request("DELETE", f"/task_runs/{first['id']}"))[0] == 204
        answers = await asyncio.gather(*(server.request("POST", "/task_runs/", json=body) for _ in range(16)))
        assert sorted(status for status, _ in answers) == [200] * 15 + [201]
        assert len({task["id"] for _, task in answers}) == 1


async def test_the_first_unused_generation_is_found_past_any_number_of_used_ones(store):
    # Streams exist for generations 0 .. n-1; the search must land on n whatever n is.
    used = 0
    for n in range(1, 41):
        await store.append(f"key-{used}", [NewEvent(type="t", data=b"{}", id=uuid.uuid4())])
        used += 1
        assert await run_keys.first_unused_generation(store, lambda g: f"key-{g}", n - 1) == n
        assert await run_keys.first_unused_generation(store, lambda g: f"key-{g}", 0) == n
