"""``runlog events export / import / push`` carry run log lines, and import keeps the read models.

A database with flow runs, task runs and log lines is copied into an empty one on the same
backend: the copy answers the API as the original does (runs, task runs, every log line once),
``runlog projections verify`` finds no difference, and copying again adds nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from runlog.api.commands import events as events_command
from runlog.api.queries import logs as log_queries
from runlog.commands.clock import ManualClock

from ..conftest import new_pg_database
from . import isolate_runlog_env
from .cli_runner import run_cli
from ..terminal import run_on_terminal
from ..servers import Server, serve, serve_app

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
    with new_pg_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


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


async def test_export_then_import_into_an_empty_database_copies_runs_views_and_every_log_line_once(
    source, copy_url, tmp_path, monkeypatch
):
    # Batches and pages smaller than the data, so every boundary is crossed.
    monkeypatch.setattr(events_command, "LOG_BATCH", 5)
    monkeypatch.setattr(log_queries, "EXPORT_PAGE", 5)
    async with serve(source, clock=ManualClock(T0)) as server:
        await seed(server)
        original = await views(server)
    assert len(original["flow_runs"]) == RUNS and len(original["logs"]) == RUNS * LOGS_PER_RUN

    exported = tmp_path / "export.jsonl"
    result = await cli(source, "events", "export", str(exported))
    assert result.exit_code == 0, result.output
    assert f"and {RUNS * LOGS_PER_RUN} log line(s)" in result.output
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    kinds = [r.get("record", "event") for r in records]
    assert kinds == sorted(kinds, key=lambda k: k == "log")  # events first, then log lines
    assert kinds.count("log") == RUNS * LOGS_PER_RUN

    copy = env_for(copy_url, tmp_path / "copy-home")
    first = await cli(copy, "events", "import", str(exported))
    assert first.exit_code == 0, first.output
    events = len(records) - RUNS * LOGS_PER_RUN
    assert (f"Imported {events} event(s); 0 were already stored. "
            f"Imported {RUNS * LOGS_PER_RUN} log line(s); 0 were already stored.") in first.output

    async with serve(copy, clock=ManualClock(T0)) as server:
        assert await views(server) == original
    verified = await cli(copy, "projections", "verify")
    assert verified.exit_code == 0, verified.output
    assert "DIFFERS" not in verified.output

    second = await cli(copy, "events", "import", str(exported))
    assert (f"Imported 0 event(s); {events} were already stored. "
            f"Imported 0 log line(s); {RUNS * LOGS_PER_RUN} were already stored.") in second.output
    async with serve(copy, clock=ManualClock(T0)) as server:
        assert await views(server) == original
    assert (await cli(copy, "projections", "verify")).exit_code == 0


async def test_an_export_file_of_events_only_still_imports_with_its_views(source, copy_url, tmp_path):
    """Files written before log lines were exported hold events alone; they import as before."""
    async with serve(source, clock=ManualClock(T0)) as server:
        await seed(server)
        runs = await ok(server, "POST", "/flow_runs/filter", {"sort": "NAME_ASC"})
    exported = tmp_path / "export.jsonl"
    assert (await cli(source, "events", "export", str(exported))).exit_code == 0
    old_style = tmp_path / "old.jsonl"
    old_style.write_text("".join(line + "\n" for line in exported.read_text().splitlines()
                                 if json.loads(line).get("record") != "log"))

    copy = env_for(copy_url, tmp_path / "copy-home")
    result = await cli(copy, "events", "import", str(old_style))
    assert result.exit_code == 0, result.output
    assert "Imported 0 log line(s)" in result.output
    async with serve(copy, clock=ManualClock(T0)) as server:
        assert await ok(server, "POST", "/flow_runs/filter", {"sort": "NAME_ASC"}) == runs
        assert await ok(server, "POST", "/logs/filter", {}) == []
    assert (await cli(copy, "projections", "verify")).exit_code == 0


async def test_push_from_an_ephemeral_database_carries_log_lines_once(tmp_path, monkeypatch, store_url):
    """Runs recorded on the local SQLite database, pushed twice to a served runlog on either backend."""
    isolate_runlog_env(monkeypatch, tmp_path)
    local = env_for(f"sqlite:///{tmp_path}/local.db", tmp_path / "local-home")
    monkeypatch.setattr(events_command, "PUSH_CHUNK", 5)
    async with serve(local, clock=ManualClock(T0)) as offline:
        await seed(offline)
        original = await views(offline)
    hosted_env = env_for(store_url, tmp_path / "hosted-home")
    async with serve(hosted_env, clock=ManualClock(T0)) as hosted:
        first = await cli(local, "events", "push", "--to", hosted.base)
        assert first.exit_code == 0, first.output
        assert f"Pushed {RUNS * LOGS_PER_RUN} log line(s): {RUNS * LOGS_PER_RUN} new, 0 already there." in first.output
        assert await views(hosted) == original
        second = await cli(local, "events", "push", "--to", hosted.base)
        assert second.exit_code == 0, second.output
        assert f"Pushed {RUNS * LOGS_PER_RUN} log line(s): 0 new, {RUNS * LOGS_PER_RUN} already there." in second.output
        assert await views(hosted) == original
    assert (await cli(hosted_env, "projections", "verify")).exit_code == 0


async def test_push_to_a_server_without_the_log_endpoint_says_so(tmp_path, monkeypatch):
    """A server that takes pushed events but has no /runlog/logs/import (an older runlog): a clear error."""
    from aiohttp import web

    isolate_runlog_env(monkeypatch, tmp_path)
    local = env_for(f"sqlite:///{tmp_path}/local.db", tmp_path / "local-home")
    async with serve(local) as offline:
        await seed(offline)

    async def take_events(request: web.Request) -> web.Response:
        return web.json_response({"imported": len(await request.json()), "skipped": 0})

    older = web.Application()
    older.router.add_post("/api/runlog/events/import", take_events)
    async with serve_app(older) as origin:
        result = await cli(local, "events", "push", "--to", f"{origin}/api")
    assert result.exit_code == 1
    assert "has no /runlog/logs/import endpoint" in result.output and "Traceback" not in result.output


async def test_export_import_and_push_show_log_progress_on_a_terminal(source, copy_url, tmp_path):

    async with serve(source) as server:
        await seed(server)
    target = tmp_path / "out.jsonl"
    hosted_env = env_for(copy_url, tmp_path / "hosted-home")

    exported = await asyncio.to_thread(run_on_terminal, source, "events", "export", str(target))
    assert "Exporting log lines" in exported and f"{RUNS * LOGS_PER_RUN} log line(s)" in exported
    async with serve(hosted_env) as hosted:
        pushed = await asyncio.to_thread(run_on_terminal, source, "events", "push", "--to", hosted.base)
    assert "Pushing log lines" in pushed and f"{RUNS * LOGS_PER_RUN} new" in pushed
    imported = await asyncio.to_thread(run_on_terminal, hosted_env, "events", "import", str(target))
    assert "Importing" in imported and f"{RUNS * LOGS_PER_RUN} were already stored" in imported
