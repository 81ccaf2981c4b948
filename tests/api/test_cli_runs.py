"""``runlog flow ls``, ``flow-run ls/inspect``, ``task-run ls`` and ``events push``, in both modes."""

from __future__ import annotations

import asyncio

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve


async def seed(server) -> dict[str, str]:
    """A flow with one completed run that has one task run, created through the API."""
    _, flow = await server.request("POST", "/flows/", json={"name": "etl-daily"})
    _, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": "brisk-otter", "tags": ["nightly"]})
    for state in ("RUNNING", "COMPLETED"):
        status, _ = await server.request("POST", f"/flow_runs/{run['id']}/set_state",
                                         json={"state": {"type": state}})
        assert status == 201
    status, task = await server.request("POST", "/task_runs/", json={
        "flow_run_id": run["id"], "task_key": "extract-1", "dynamic_key": "0", "name": "extract-0"})
    assert status == 201
    return {"flow": flow["id"], "run": run["id"], "task": task["id"]}


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def test_ephemeral_mode_reads_the_local_database_and_says_so(local):
    async with serve(local) as server:
        ids = await seed(server)
    flows = await asyncio.to_thread(run_cli, "flow", "ls")
    assert flows.exit_code == 0, flows.output
    assert "Ephemeral mode" in flows.stderr and "etl-daily" in flows.stdout
    runs = await asyncio.to_thread(run_cli, "flow-run", "ls")
    assert "brisk-otter" in runs.stdout and "Completed" in runs.stdout and "etl-daily" in runs.stdout
    completed_only = await asyncio.to_thread(run_cli, "flow-run", "ls", "--state", "failed")
    assert "No flow runs." in completed_only.stdout
    inspected = await asyncio.to_thread(run_cli, "flow-run", "inspect", ids["run"])
    assert inspected.exit_code == 0
    assert "brisk-otter" in inspected.stdout and "PENDING" in inspected.stdout and "COMPLETED" in inspected.stdout
    tasks = await asyncio.to_thread(run_cli, "task-run", "ls", "--flow-run", ids["run"])
    assert "extract-0" in tasks.stdout


async def test_ephemeral_mode_prints_the_answer_and_no_log_lines_unless_debugging(local, monkeypatch):
    async with serve(local) as server:
        await seed(server)
    runs = await asyncio.to_thread(run_cli, "flow-run", "ls")
    assert runs.exit_code == 0 and "brisk-otter" in runs.stdout
    (line,) = runs.stderr.splitlines()  # the one line that says which mode is in use; no request logs
    assert line.startswith("Ephemeral mode:")
    monkeypatch.setenv("RUNLOG_LOGGING_LEVEL", "DEBUG")
    debugging = await asyncio.to_thread(run_cli, "flow-run", "ls")
    assert debugging.exit_code == 0 and "brisk-otter" in debugging.stdout
    assert '"event": "opening_database"' in debugging.stderr and '"event": "request"' in debugging.stderr


async def test_with_an_api_url_the_commands_ask_that_server(local, monkeypatch, tmp_path):
    async with serve(local) as server:
        ids = await seed(server)
        # Point the CLI's own database elsewhere: only the server has the runs.
        monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        runs = await asyncio.to_thread(run_cli, "flow-run", "ls")
        assert runs.exit_code == 0 and "brisk-otter" in runs.stdout
        assert "Ephemeral mode" not in runs.output
        inspected = await asyncio.to_thread(run_cli, "flow-run", "inspect", ids["run"])
        assert "brisk-otter" in inspected.stdout


async def test_an_unknown_run_and_an_unreachable_server_are_clear_errors(local, monkeypatch):
    missing = await asyncio.to_thread(run_cli, "flow-run", "inspect", "00000000-0000-0000-0000-000000000001")
    assert missing.exit_code == 1 and "Error: Flow run 00000000-0000-0000-0000-000000000001 not found" in missing.output
    monkeypatch.setenv("RUNLOG_API_URL", "http://127.0.0.1:9/api")
    down = await asyncio.to_thread(run_cli, "flow", "ls")
    assert down.exit_code == 1 and "Error: cannot reach the runlog server at http://127.0.0.1:9/api" in down.output
    assert "Traceback" not in down.output


async def test_events_push_replays_local_runs_into_a_hosted_server_once(local, tmp_path, monkeypatch):
    async with serve(local) as offline:
        ids = await seed(offline)
    hosted_env = {"RUNLOG_HOME": str(tmp_path / "hosted"), "RUNLOG_DATABASE_URL": f"sqlite:///{tmp_path}/hosted.db"}
    async with serve(hosted_env) as hosted:
        first = await asyncio.to_thread(run_cli, "events", "push", "--to", hosted.base)
        assert first.exit_code == 0, first.output
        assert " new, 0 already there." in first.output
        status, run = await hosted.request("GET", f"/flow_runs/{ids['run']}")
        assert status == 200 and run["state_type"] == "COMPLETED" and run["name"] == "brisk-otter"
        status, task = await hosted.request("GET", f"/task_runs/{ids['task']}")
        assert status == 200
        second = await asyncio.to_thread(run_cli, "events", "push", "--to", hosted.base)
        assert ": 0 new," in second.output
        status, count = await hosted.request("POST", "/flow_runs/count", json={})
        assert count == 1


async def test_push_needs_an_http_url(local):
    result = await asyncio.to_thread(run_cli, "events", "push", "--to", "hosted:4200")
    assert result.exit_code == 1 and "--to must be an http(s) URL" in result.output

