"""GET /api/admin/projections, POST /api/admin/projections/rebuild and `runlog projections
ls/rebuild`, over a real socket and in ephemeral mode, on both backends."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from runlog.projections.runs_writer import RunsProjection
from runlog.projections.verify import verify

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from .test_cli_projections import record_some_runs, tamper


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url

KINDS = {"runs": "inline", "flows": "inline", "event_feed": "async"}


async def test_the_admin_route_lists_every_projection_with_its_checkpoint_and_lag(server):
    status, body = await server.request("POST", "/flows/", json={"name": "etl"})
    assert status == 201
    status, rows = await server.request("GET", "/admin/projections")
    assert status == 200
    found = {row["name"]: row for row in rows}
    head = found["runs"]["head"]
    assert head >= 1
    for name, kind in KINDS.items():
        assert found[name]["kind"] == kind
        assert found[name]["version"] >= 1 and found[name]["stored_version"] == found[name]["version"]
        assert found[name]["lag_events"] == head - found[name]["checkpoint"]
    assert found["runs"]["checkpoint"] == head and found["runs"]["lag_seconds"] == 0
    # Built by the appends themselves: no rebuild yet.
    assert all(found[name]["last_rebuild"] is None for name in KINDS)


async def test_a_rebuild_over_http_answers_progress_then_what_it_rebuilt(server, store_url):
    ids = await record_some_runs(store_url)
    before = datetime.now(UTC)
    await tamper(store_url, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'")
    async with server.session.post(server.base + "/admin/projections/rebuild", json={"names": ["runs"]}) as response:
        assert response.status == 200
        lines = [json.loads(line) async for line in response.content]
    assert all("done" in line for line in lines[:-1])
    (rebuilt,) = lines[-1]["rebuilt"]
    assert rebuilt["name"] == "runs" and rebuilt["version"] == RunsProjection.version
    assert (await verify(store_url)).equal

    # The listing then says when it was rebuilt, up to where and how many events it folded;
    # the projection not rebuilt still says never.
    status, rows = await server.request("GET", "/admin/projections")
    found = {row["name"]: row for row in rows}
    last = found["runs"]["last_rebuild"]
    assert last["position"] == rebuilt["position"] and last["events"] == rebuilt["events"] > 0
    assert before <= datetime.fromisoformat(last["finished_at"]) <= datetime.now(UTC)
    assert last["seconds"] >= 0 and found["flows"]["last_rebuild"] is None


async def test_a_rebuild_of_an_unknown_projection_or_with_a_bad_body_is_a_422(server):
    status, body = await server.request("POST", "/admin/projections/rebuild", json={"names": ["nope"]})
    assert status == 422 and "no projection named 'nope'" in body["detail"]
    status, body = await server.request("POST", "/admin/projections/rebuild", json={"names": "runs"})
    assert status == 422 and "detail" in body
    status, body = await server.request("POST", "/admin/projections/rebuild", json={"everything": True})
    assert status == 422 and "detail" in body


def test_the_cli_lists_and_rebuilds_projections_in_ephemeral_mode(database):
    ids = asyncio.run(record_some_runs(database))
    result = run_cli("projections", "ls")
    assert result.exit_code == 0, result.output
    assert "None rebuilt yet" in result.output
    for name, kind in KINDS.items():
        assert any(line.split("│")[1:3] and name in line and kind in line for line in result.output.splitlines()), name
    listed = json.loads(run_cli("projections", "ls", "-o", "json").stdout)
    assert {row["name"] for row in listed} >= set(KINDS)

    asyncio.run(tamper(database, f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'"))
    result = run_cli("projections", "rebuild", "runs")
    assert result.exit_code == 0, result.output
    assert f"Rebuilt runs (version {RunsProjection.version}) up to position" in result.output
    assert run_cli("projections", "verify").exit_code == 0
    listed = {row["name"]: row for row in json.loads(run_cli("projections", "ls", "-o", "json").stdout)}
    assert listed["runs"]["last_rebuild"]["events"] > 0 and listed["flows"]["last_rebuild"] is None
    listing = run_cli("projections", "ls").output
    assert f"runs: last rebuilt {listed['runs']['last_rebuild']['finished_at'][:10]}" in listing, listing
    assert "The others: never rebuilt" in listing

    result = run_cli("projections", "rebuild", "nope")
    assert result.exit_code == 1 and "no projection named 'nope'" in result.output

