"""The automations tables are projections: a rebuild from the log equals them."""

from __future__ import annotations

import asyncio
import re

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from .test_automations import body, update
from ..servers import serve


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    monkeypatch.setenv("COLUMNS", "200")
    return store_url


async def write_automations(url: str, home: str) -> None:
    """Automations created, replaced (tags changed), disabled, muted and deleted."""
    async with serve({"RUNLOG_HOME": home, "RUNLOG_DATABASE_URL": url}) as server:
        async def call(method: str, path: str, payload=None, expect: int = 200):
            status, answer = await server.request(method, path, json=payload)
            assert status == expect, (method, path, status, answer)
            return answer

        kept = await call("POST", "/automations/", body("kept", tags=["a", "b"], owner_resource="prefect.x.1"), 201)
        await call("PUT", f"/automations/{kept['id']}", update("kept", tags=["b", "c", "d"]), 204)
        await call("PATCH", f"/automations/{kept['id']}", {"enabled": False}, 204)
        await call("PUT", f"/runlog/automations/{kept['id']}/mute", {"until": "2026-04-01T00:00:00Z"}, 204)
        doomed = await call("POST", "/automations/", body("doomed", tags=["z"], owner_resource="prefect.x.2"), 201)
        await call("POST", "/automations/", body("plain"), 201)
        await call("DELETE", f"/automations/{doomed['id']}", expect=204)


def test_verify_finds_automations_equal_to_their_rebuild(database, tmp_path):
    asyncio.run(write_automations(database, str(tmp_path / "server")))
    result = run_cli("projections", "verify")
    assert result.exit_code == 0, result.output
    assert "Every projection table equals its rebuild from the log." in result.output
    for table, rows in (("automations", 2), ("automation_tags", 3), ("automation_resources", 1)):
        assert re.search(rf"{table} +│ \w+ +│ +{rows} │ +{rows} │ equal", result.output), (table, result.output)
