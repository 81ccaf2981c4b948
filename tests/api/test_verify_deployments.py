"""The deployments and deployment_schedules tables are projections: a rebuild from the log equals them."""

from __future__ import annotations

import asyncio
import re

import pytest

from runlog.eventstore import open_store

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


async def write_deployments(url: str, home: str) -> dict[str, str]:
    """Deployments created, re-created (the upsert), patched, paused, their schedules added,
    updated and deleted, one deployment deleted with its schedules, and one polled."""
    async with serve({"RUNLOG_HOME": home, "RUNLOG_DATABASE_URL": url}) as server:
        async def call(method: str, path: str, body=None, expect: int = 200):
            status, answer = await server.request(method, path, json=body)
            assert status == expect, (method, path, status, answer)
            return answer

        flow = await call("POST", "/flows/", {"name": "etl"}, 201)
        kept = await call("POST", "/deployments/", {
            "name": "kept", "flow_id": flow["id"], "tags": ["a"],
            "schedules": [{"schedule": {"interval": 60}, "slug": "minutely"}],
        }, 201)
        await call("POST", "/deployments/", {
            "name": "kept", "flow_id": flow["id"], "description": "again",
            "schedules": [{"schedule": {"cron": "0 * * * *"}, "slug": "hourly"}, {"schedule": {"interval": 5}, "slug": "x"}],
        })
        await call("PATCH", f"/deployments/{kept['id']}", {"tags": ["b"], "parameters": {"p": 1}}, expect=204)
        await call("POST", f"/deployments/{kept['id']}/pause_deployment")
        (added,) = await call("POST", f"/deployments/{kept['id']}/schedules", [{"schedule": {"rrule": "FREQ=DAILY"}}], 201)
        await call("PATCH", f"/deployments/{kept['id']}/schedules/{added['id']}", {"active": False}, expect=204)
        schedules = await call("GET", f"/deployments/{kept['id']}/schedules")
        (x,) = [s for s in schedules if s["slug"] == "x"]
        await call("DELETE", f"/deployments/{kept['id']}/schedules/{x['id']}", expect=204)
        doomed = await call("POST", "/deployments/", {
            "name": "doomed", "flow_id": flow["id"], "schedules": [{"schedule": {"interval": 60}}],
        }, 201)
        await call("DELETE", f"/deployments/{doomed['id']}", expect=204)
        # A runner's poll: its last_polled (on its runner-polls stream) and its READY status.
        await call("POST", "/deployments/get_scheduled_flow_runs", {"deployment_ids": [kept["id"]]})
        assert (await call("GET", f"/deployments/{kept['id']}"))["status"] == "READY"
        return {"kept": kept["id"]}


def test_verify_finds_deployments_and_schedules_equal_to_their_rebuild(database, tmp_path):
    asyncio.run(write_deployments(database, str(tmp_path / "server")))
    result = run_cli("projections", "verify")
    assert result.exit_code == 0, result.output
    assert "Every projection table equals its rebuild from the log." in result.output
    for table, rows in (("deployments", 1), ("deployment_schedules", 2)):
        assert re.search(rf"{table} +│ \w+ +│ +{rows} │ +{rows} │ equal", result.output), (table, result.output)


def test_verify_notices_a_deployment_row_that_is_not_the_logs(database, tmp_path):
    ids = asyncio.run(write_deployments(database, str(tmp_path / "server")))

    async def tamper() -> None:
        async with open_store(database) as store, store.reading() as tx:
            await tx.execute("UPDATE deployments SET paused = 0 WHERE id = ?", ids["kept"])

    asyncio.run(tamper())
    result = run_cli("projections", "verify")
    assert result.exit_code == 1, result.output
    assert "deployments: 1 row(s) only in the live table, 1 only in the rebuild" in result.output
