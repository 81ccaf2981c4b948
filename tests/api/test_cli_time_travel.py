"""``--at`` on ``runlog flow-run inspect``, ``work-pool inspect`` and ``concurrency-limit inspect``
(ephemeral mode, on the local database of each backend)."""

from __future__ import annotations

import asyncio

import pytest

from runlog.api import keys

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


def _field(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.startswith(name + " "):
            return line[len(name):].strip()
    raise AssertionError(f"no {name} in {output!r}")


async def test_flow_run_inspect_at_a_position_shows_the_run_then(local) -> None:
    async with serve(local) as server:
        _, flow = await server.request("POST", "/flows/", json={"name": "etl"})
        _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": "brisk-otter"})
        await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
        running = await server.app[keys.STORE].head()
        await server.request("POST", f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "COMPLETED"}})
    then = await asyncio.to_thread(run_cli, "flow-run", "inspect", run["id"][:8], "--at", str(running))
    assert then.exit_code == 0, then.output
    assert f"As at {running}:" in then.stdout
    assert _field(then.stdout, "state_type") == "RUNNING" and _field(then.stdout, "end_time") == "None"
    assert "COMPLETED" not in then.stdout  # nor in the state history shown
    now = await asyncio.to_thread(run_cli, "flow-run", "inspect", run["id"])
    assert _field(now.stdout, "state_type") == "COMPLETED"


async def test_a_bad_at_is_refused_plainly(local) -> None:
    async with serve(local) as server:
        _, flow = await server.request("POST", "/flows/", json={"name": "etl"})
        _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"]})
    bad = await asyncio.to_thread(run_cli, "flow-run", "inspect", run["id"], "--at", "last tuesday")
    assert bad.exit_code == 2 and "--at must be a log position" in bad.output
    early = await asyncio.to_thread(run_cli, "flow-run", "inspect", run["id"], "--at", "0")
    assert early.exit_code == 1 and "not found at log position 0" in early.output


async def test_work_pool_and_concurrency_limit_inspect_at_a_position(local) -> None:
    async with serve(local) as server:
        await server.request("POST", "/work_pools/", json={"name": "p", "type": "process"})
        await server.request("POST", "/v2/concurrency_limits/", json={"name": "db", "limit": 2})
        before = await server.app[keys.STORE].head()
        await server.request("POST", "/work_pools/p/workers/heartbeat", json={"name": "w1"})
        await server.request("PATCH", "/v2/concurrency_limits/db", json={"limit": 7})
    pool_then = await asyncio.to_thread(run_cli, "work-pool", "inspect", "p", "--at", str(before))
    assert pool_then.exit_code == 0, pool_then.output
    assert "No workers." in pool_then.stdout and "late runs" not in pool_then.stdout
    pool_now = await asyncio.to_thread(run_cli, "work-pool", "inspect", "p")
    assert "w1" in pool_now.stdout
    limit_then = await asyncio.to_thread(run_cli, "concurrency-limit", "inspect", "db", "--at", str(before))
    assert limit_then.exit_code == 0, limit_then.output
    assert _field(limit_then.stdout, "limit") == "2"
    limit_now = await asyncio.to_thread(run_cli, "concurrency-limit", "inspect", "db")
    assert _field(limit_now.stdout, "limit") == "7"
    listed = await asyncio.to_thread(run_cli, "concurrency-limit", "ls")
    assert "db" in listed.stdout
