"""The variables and artifacts tables are projections: a rebuild from the log equals them."""

from __future__ import annotations

import asyncio
import re
import uuid

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


async def write_variables_and_artifacts(url: str, home: str) -> dict[str, str]:
    """Variables created, renamed, retagged and deleted; artifacts of several keys created,
    updated and deleted, the latest of a key among them (its key passes to an older one)."""
    async with serve({"RUNLOG_HOME": home, "RUNLOG_DATABASE_URL": url}) as server:
        async def call(method: str, path: str, body=None, expect: int = 200):
            status, answer = await server.request(method, path, json=body)
            assert status == expect, (method, path, status, answer)
            return answer

        kept = await call("POST", "/variables/", {"name": "kept", "value": {"a": [1, 2]}, "tags": ["x", "y"]}, 201)
        await call("POST", "/variables/", {"name": "renamed", "value": 1}, 201)
        await call("POST", "/variables/", {"name": "doomed", "value": None, "tags": ["z"]}, 201)
        await call("PATCH", "/variables/name/renamed", {"name": "new-name", "tags": ["t"]}, expect=204)
        await call("PATCH", f"/variables/{kept['id']}", {"value": "changed"}, expect=204)
        await call("DELETE", "/variables/name/doomed", expect=204)
        run = str(uuid.uuid4())
        first = await call("POST", "/artifacts/", {"key": "report", "type": "markdown", "data": "# 1", "flow_run_id": run}, 201)
        second = await call("POST", "/artifacts/", {"key": "report", "type": "markdown", "data": "# 2"}, 201)
        progress = await call("POST", "/artifacts/", {"key": "progress", "type": "progress", "data": 0.0}, 201)
        await call("POST", "/artifacts/", {"type": "table", "data": "[]", "metadata_": {"m": "v"}}, 201)
        await call("PATCH", f"/artifacts/{progress['id']}", {"data": 100.0, "description": "done"}, expect=204)
        await call("PATCH", f"/artifacts/{first['id']}", {"description": "older"}, expect=204)
        await call("DELETE", f"/artifacts/{second['id']}", expect=204)
        return {"first": first["id"], "progress": progress["id"]}


def test_verify_finds_variables_and_artifacts_equal_to_their_rebuild(database, tmp_path):
    asyncio.run(write_variables_and_artifacts(database, str(tmp_path / "server")))
    result = run_cli("projections", "verify")
    assert result.exit_code == 0, result.output
    assert "Every projection table equals its rebuild from the log." in result.output
    for table, rows in (("variables", 2), ("variable_tags", 3), ("artifacts", 3), ("artifact_collections", 2)):
        assert re.search(rf"{table} +│ \w+ +│ +{rows} │ +{rows} │ equal", result.output), (table, result.output)


def test_verify_notices_a_latest_artifact_row_that_is_not_the_logs(database, tmp_path):
    ids = asyncio.run(write_variables_and_artifacts(database, str(tmp_path / "server")))

    async def tamper() -> None:
        async with open_store(database) as store, store.reading() as tx:
            await tx.execute("UPDATE artifact_collections SET latest_id = ? WHERE key = 'report'", ids["progress"])

    asyncio.run(tamper())
    result = run_cli("projections", "verify")
    assert result.exit_code == 1, result.output
    assert "artifact_collections: 1 row(s) only in the live table, 1 only in the rebuild" in result.output
