"""Prefect's task result cache and retry jitter over a real socket, on both backends.

A task run that completes with a cache key files its state in the task run state cache; a
later task run proposing RUNNING with that key is answered, as Prefect answers, with REJECT and
a copy of the cached Completed state named "Cached", unless it asks to refresh the cache or the
entry has expired.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlog.commands.orchestration.jitter import jitter_bounds
from runlog.commands.clock import ManualClock

from ..servers import Server, serve

RESULT = {"type": "reference", "storage_key": "/results/3f2a", "serializer": {"type": "pickle"}}


T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def server(tmp_path, store_url: str, clock: ManualClock) -> AsyncIterator[Server]:
    env = {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}
    async with serve(env, clock=clock) as running:
        yield running


@pytest.fixture
async def flow_run(server: Server) -> dict[str, Any]:
    """A running flow run for the task runs to belong to (tasks only run in a running flow)."""
    status, flow = await server.request("POST", "/flows/", json={"name": f"cached-{uuid.uuid4().hex[:8]}"})
    assert status == 201, flow
    body = {"flow_id": flow["id"], "state": {"type": "RUNNING"}}
    status, run = await server.request("POST", "/flow_runs/", json=body)
    assert status == 201, run
    return run


async def new_task_run(server: Server, flow_run: dict[str, Any], **fields: Any) -> str:
    body = {"task_key": "expensive", "dynamic_key": uuid.uuid4().hex, "flow_run_id": flow_run["id"], **fields}
    status, task = await server.request("POST", "/task_runs/", json=body)
    assert status == 201, task
    assert isinstance(task, dict)
    return task["id"]


async def set_state(server: Server, run_id: str, state: dict[str, Any], force: bool = False) -> tuple[int, dict]:
    body = {"state": state, "force": force}
    status, answer = await server.request("POST", f"/task_runs/{run_id}/set_state", json=body)
    assert isinstance(answer, dict), (status, answer)
    return status, answer


def running(key: str, **details: Any) -> dict[str, Any]:
    return {"type": "RUNNING", "state_details": {"cache_key": key, **details}}


async def complete_with_key(server: Server, flow_run: dict[str, Any], key: str,
                            expiration: datetime | None = None) -> dict[str, Any]:
    """A task run that runs and completes with ``key``: its Completed state is cached."""
    run_id = await new_task_run(server, flow_run)
    status, answer = await set_state(server, run_id, running(key))
    assert (status, answer["status"]) == (201, "ACCEPT"), answer
    details: dict[str, Any] = {"cache_key": key}
    if expiration is not None:
        details["cache_expiration"] = expiration.isoformat()
    completed = {"type": "COMPLETED", "message": "All states completed.", "data": RESULT, "state_details": details}
    status, answer = await set_state(server, run_id, completed)
    assert (status, answer["status"]) == (201, "ACCEPT"), answer
    return answer["state"]


async def test_a_second_task_run_with_the_same_key_gets_the_cached_completed_state(server, flow_run, clock) -> None:
    key = f"inputs-{uuid.uuid4().hex}"
    cached = await complete_with_key(server, flow_run, key, expiration=T0 + timedelta(hours=1))

    clock.advance(60)
    second = await new_task_run(server, flow_run)
    status, answer = await set_state(server, second, running(key))

    assert status == 201  # a state was written: the copy
    assert answer["status"] == "REJECT"
    assert answer["details"] == {"type": "reject_details", "reason": "Retrieved state from cache"}
    copy = answer["state"]
    assert (copy["type"], copy["name"], copy["data"], copy["message"]) == (
        "COMPLETED", "Cached", RESULT, "All states completed.")
    assert copy["id"] != cached["id"] and copy["timestamp"] > cached["timestamp"]
    assert copy["state_details"]["task_run_id"] == second
    assert copy["state_details"]["flow_run_id"] == flow_run["id"]
    assert copy["state_details"]["cache_key"] == key
    assert copy["state_details"]["cache_expiration"] == cached["state_details"]["cache_expiration"]

    status, task = await server.request("GET", f"/task_runs/{second}")
    assert status == 200 and isinstance(task, dict)
    assert (task["state_type"], task["state_name"], task["state_id"], task["run_count"]) == (
        "COMPLETED", "Cached", copy["id"], 0)
    status, history = await server.request("GET", f"/task_run_states/?task_run_id={second}")
    assert status == 200 and isinstance(history, list)
    assert [s["name"] for s in history] == ["Pending", "Cached"]


async def test_refresh_cache_runs_the_task_and_its_result_is_the_one_cached_next(server, flow_run) -> None:
    key = f"inputs-{uuid.uuid4().hex}"
    await complete_with_key(server, flow_run, key)

    refreshing = await new_task_run(server, flow_run)
    status, answer = await set_state(server, refreshing, running(key, refresh_cache=True))
    assert (status, answer["status"], answer["state"]["name"]) == (201, "ACCEPT", "Running")
    fresh = {"type": "COMPLETED", "data": {**RESULT, "storage_key": "/results/fresh"},
             "state_details": {"cache_key": key, "refresh_cache": True}}
    status, answer = await set_state(server, refreshing, fresh)
    assert answer["status"] == "ACCEPT"

    third = await new_task_run(server, flow_run)
    status, answer = await set_state(server, third, running(key))
    assert (answer["status"], answer["state"]["name"]) == ("REJECT", "Cached")
    assert answer["state"]["data"]["storage_key"] == "/results/fresh"  # the newest entry wins


async def test_an_expired_entry_is_not_used(server, flow_run, clock) -> None:
    key = f"inputs-{uuid.uuid4().hex}"
    expiration = T0 + timedelta(hours=1)
    await complete_with_key(server, flow_run, key, expiration=expiration)

    clock.set(expiration - timedelta(microseconds=1))
    before = await new_task_run(server, flow_run)
    _status, answer = await set_state(server, before, running(key))
    assert (answer["status"], answer["state"]["name"]) == ("REJECT", "Cached")

    clock.set(expiration)  # an entry is valid strictly before its expiration
    after = await new_task_run(server, flow_run)
    status, answer = await set_state(server, after, running(key))
    assert (status, answer["status"], answer["state"]["type"], answer["state"]["name"]) == (
        201, "ACCEPT", "RUNNING", "Running")


async def test_states_that_bypass_the_rules_or_lack_a_key_are_not_cached(server, flow_run) -> None:
    key = f"inputs-{uuid.uuid4().hex}"
    forced = await new_task_run(server, flow_run)
    status, answer = await set_state(server, forced, {"type": "COMPLETED", "data": RESULT,
                                                      "state_details": {"cache_key": key}}, force=True)
    assert answer["status"] == "ACCEPT"
    over_long = await new_task_run(server, flow_run)
    await set_state(server, over_long, running("x" * 2001))
    over_long_completed = {"type": "COMPLETED", "state_details": {"cache_key": "x" * 2001}}
    status, answer = await set_state(server, over_long, over_long_completed)
    assert (answer["status"], answer["state"]["type"]) == ("REJECT", "COMPLETED")
    assert answer["details"]["reason"] == "Cache key exceeded maximum allowed length of 2000 characters."

    for probe_key in (key, "x" * 2001):
        probe = await new_task_run(server, flow_run)
        _status, answer = await set_state(server, probe, running(probe_key))
        assert (answer["status"], answer["state"]["name"]) == ("ACCEPT", "Running")


async def test_a_forced_running_proposal_is_not_answered_from_the_cache(server, flow_run) -> None:
    key = f"inputs-{uuid.uuid4().hex}"
    await complete_with_key(server, flow_run, key)
    forced = await new_task_run(server, flow_run)
    _status, answer = await set_state(server, forced, running(key), force=True)
    assert (answer["status"], answer["state"]["type"]) == ("ACCEPT", "RUNNING")


async def test_a_retry_with_jitter_is_scheduled_within_the_clamped_bounds(server, flow_run) -> None:
    policy = {"retries": 1, "retry_delay": 100, "retry_jitter_factor": 0.5}
    run_id = await new_task_run(server, flow_run, empirical_policy=policy)
    await set_state(server, run_id, {"type": "RUNNING"})
    status, answer = await set_state(server, run_id, {"type": "FAILED", "message": "boom"})
    assert (status, answer["status"], answer["state"]["name"]) == (201, "REJECT", "AwaitingRetry")
    written = answer["state"]
    delay = (datetime.fromisoformat(written["state_details"]["scheduled_time"])
             - datetime.fromisoformat(written["timestamp"])).total_seconds()
    lower, upper = jitter_bounds(100, 0.5)
    assert lower - 0.001 <= delay <= upper + 0.001
