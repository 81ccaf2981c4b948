"""``runlog events ls --stream S --diff``: each event with what it changed in the stream's view."""

from __future__ import annotations

import asyncio

import pytest

from runlog.projections.view_diff import MISSING, diff

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


def test_diff_names_each_changed_field_with_its_old_and_new_value() -> None:
    before = {"state": {"type": "PENDING", "name": "Pending"}, "run_count": 0, "tags": ["a"]}
    after = {"state": {"type": "RUNNING", "name": "Running"}, "run_count": 1, "tags": ["a"], "start_time": "t"}
    assert diff(before, after) == [
        ("run_count", 0, 1), ("start_time", MISSING, "t"),
        ("state.name", "Pending", "Running"), ("state.type", "PENDING", "RUNNING"),
    ]
    assert diff(after, None)[0][2] is MISSING


async def test_a_flow_runs_stream_shows_what_each_state_changed(local) -> None:
    async with serve(local) as server:
        _, flow = await server.request("POST", "/flows/", json={"name": "etl"})
        _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": "brisk-otter"})
        for state in ("RUNNING", "COMPLETED"):
            await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": state}})
    shown = await asyncio.to_thread(run_cli, "events", "ls", "--stream", f"flow-run-{run['id']}", "--diff")
    assert shown.exit_code == 0, shown.output
    blocks = shown.stdout.split("\n#")
    assert len(blocks) == 4  # created, and three states (the create's PENDING is its own event)
    assert "flow_run.created" in blocks[0] and "+ name: brisk-otter" in blocks[0]
    running = next(b for b in blocks if "~ state.type: PENDING -> RUNNING" in b)
    assert "~ run_count: 0 -> 1" in running and "~ start_time: null -> " in running
    completed = next(b for b in blocks if "~ state.type: RUNNING -> COMPLETED" in b)
    assert "~ end_time: null -> " in completed and "run_count" not in completed
    # --after shows fewer events, each still diffed against the view folded from the start.
    later = await asyncio.to_thread(
        run_cli, "events", "ls", "--stream", f"flow-run-{run['id']}", "--diff", "--after", blocks[-2].split()[0])
    assert "~ state.type: RUNNING -> COMPLETED" in later.stdout and "flow_run.created" not in later.stdout


async def test_diff_needs_a_stream(local) -> None:
    async with serve(local):
        pass
    refused = await asyncio.to_thread(run_cli, "events", "ls", "--diff")
    assert refused.exit_code == 2 and "--diff needs --stream" in refused.output


async def test_pools_limits_and_streams_without_a_view_diff_too(local) -> None:
    async with serve(local) as server:
        await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
        await server.request("PATCH", "/work_pools/p", json={"description": "nightly"})
        _, limit = await server.request("POST", "/v2/concurrency_limits/", json={"name": "db", "limit": 2})
        await server.request("PATCH", "/v2/concurrency_limits/db", json={"limit": 3})
        await server.request("POST", "/variables/", json={"name": "answer", "value": 42})
    pools = await asyncio.to_thread(run_cli, "events", "ls", "--stream", "work-pools", "--diff")
    assert pools.exit_code == 0, pools.output
    assert "description: null -> nightly" in pools.stdout
    limits = await asyncio.to_thread(run_cli, "events", "ls", "--stream", f"concurrency-limit-{limit['id']}", "--diff")
    assert "~ limit: 2 -> 3" in limits.stdout
    variables = await asyncio.to_thread(run_cli, "events", "ls", "--stream", "variables", "--diff")
    assert variables.exit_code == 0 and "+ name: answer" in variables.stdout
