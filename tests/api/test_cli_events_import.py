"""``runlog events import`` keeps the read models as a server appending live does.

A database with flow runs and task runs is copied into an empty one on the same backend: the
copy answers the API as the original does, ``runlog projections verify`` finds no difference,
and copying again adds nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from runlog.commands.clock import ManualClock

from . import isolate_runlog_env
from .cli_runner import run_cli
from .http_server import Server, serve

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RUNS = 3
LOGS_PER_RUN = 4  # two of the flow run, two of its task run


@pytest.fixture
def source(monkeypatch, tmp_path, store_url) -> dict[str, str]:
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


@pytest.fixture
def copy_url(backend, tmp_path, request) -> Iterator[str]:
    """A second empty database on the test's backend, for the copy."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/copy.db"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"runlog_test_{uuid.uuid4().hex[:16]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        base, _, query = admin_url.partition("?")
        yield base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def env_for(url: str, home) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"RUNLOG_HOME": str(home), "RUNLOG_DATABASE_URL": url}


async def ok(server: Server, method: str, path: str, body: object) -> object:
    status, answer = await server.request(method, path, json=body)
    assert status in (200, 201), (method, path, status, answer)
    return answer


async def seed(server: Server) -> None:
    """Completed flow runs, each with a completed task run and log lines of both."""
    flow = await ok(server, "POST", "/flows/", {"name": "etl-daily"})
    for i in range(RUNS):
        run = await ok(server, "POST", "/flow_runs/", {"flow_id": flow["id"], "name": f"run-{i}", "tags": ["nightly"]})
        await ok(server, "POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING"}})
        task = await ok(server, "POST", "/task_runs/", {
            "flow_run_id": run["id"], "task_key": f"extract-{i}", "dynamic_key": "0", "name": f"extract-{i}"})
        for state in ("RUNNING", "COMPLETED"):
            await ok(server, "POST", f"/task_runs/{task['id']}/set_state", {"state": {"type": state}})
        await ok(server, "POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "COMPLETED"}})
        stamp = T0.replace(minute=i).isoformat()
        await ok(server, "POST", "/logs/", [
            {"name": "prefect.flow_runs", "level": 20, "message": f"run {i} started", "timestamp": stamp,
             "flow_run_id": run["id"]},
            {"name": "prefect.task_runs", "level": 20, "message": f"task {i} says hi", "timestamp": stamp,
             "flow_run_id": run["id"], "task_run_id": task["id"]},
            {"name": "prefect.task_runs", "level": 40, "message": f"task {i} \u00e9\u00e8 done", "timestamp": stamp,
             "flow_run_id": run["id"], "task_run_id": task["id"]},
            {"name": "prefect.flow_runs", "level": 20, "message": f"run {i} finished", "timestamp": stamp,
             "flow_run_id": run["id"]},
        ])


async def views(server: Server) -> dict[str, object]:
    """What a client reads: every flow run, task run and log line (POST /logs/filter, all pages)."""
    logs: list = []
    while True:
        page = await ok(server, "POST", "/logs/filter", {"limit": 5, "offset": len(logs)})
        if not page:
            break
        logs += page
    return {
        "flow_runs": await ok(server, "POST", "/flow_runs/filter", {"sort": "NAME_ASC"}),
        "task_runs": await ok(server, "POST", "/task_runs/filter", {"sort": "NAME_ASC"}),
        "logs": logs,
    }


def cli(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return asyncio.to_thread(run_cli, *args, env=env)


async def test_import_into_an_empty_database_updates_the_views_as_appending_live_does(source, copy_url, tmp_path):
    async with serve(source, clock=ManualClock(T0)) as server:
        await seed(server)
        original = await views(server)
    exported = tmp_path / "export.jsonl"
    assert (await cli(source, "events", "export", str(exported))).exit_code == 0

    copy = env_for(copy_url, tmp_path / "copy-home")
    for _ in range(2):  # the second import adds nothing and changes nothing
        result = await cli(copy, "events", "import", str(exported))
        assert result.exit_code == 0, result.output
        async with serve(copy, clock=ManualClock(T0)) as server:
            copied = await views(server)
        assert copied["flow_runs"] == original["flow_runs"] and copied["task_runs"] == original["task_runs"]
        verified = await cli(copy, "projections", "verify")
        assert verified.exit_code == 0 and "DIFFERS" not in verified.output, verified.output
