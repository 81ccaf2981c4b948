"""``runlog deployment ls/inspect/run``, ``runlog work-pool ls/inspect`` and ``runlog worker ls``,
in ephemeral mode and over HTTP, on both backends: what the tables show (status, heartbeats,
late runs) and the one-line errors for unknown names."""

from __future__ import annotations

import asyncio

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve


async def seed(server) -> dict[str, str]:
    """A process pool with a worker heartbeating (every hour, so it stays ONLINE for the test),
    a queue "fast", a deployment in it with a Late run, and a second deployment outside pools."""
    status, pool = await server.request("POST", "/work_pools/", json={"name": "crunch", "type": "process"})
    assert status == 201, pool
    status, _ = await server.request("POST", "/work_pools/crunch/workers/heartbeat", json={
        "name": "worker-one", "heartbeat_interval_seconds": 3600,
    })
    assert status == 204
    _, flow = await server.request("POST", "/flows/", json={"name": "etl"})
    status, deployment = await server.request("POST", "/deployments/", json={
        "name": "nightly", "flow_id": flow["id"], "work_pool_name": "crunch", "work_queue_name": "fast",
        "parameters": {"x": 1}, "tags": ["prod"],
    })
    assert status == 201, deployment
    await server.request("POST", "/deployments/", json={"name": "adhoc", "flow_id": flow["id"]})
    status, late = await server.request("POST", f"/deployments/{deployment['id']}/create_flow_run", json={
        "state": {"type": "SCHEDULED", "name": "Late"},
    })
    assert status == 201 and late["state_name"] == "Late", late
    return {"deployment": deployment["id"], "pool": pool["id"]}


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    monkeypatch.setenv("COLUMNS", "160")
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


def cli(*args: str):
    return asyncio.to_thread(run_cli, *args)


def row_of(output: str, name: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if name in line]
    return [cell.strip() for cell in line.split("│") if cell.strip()]


async def check_tables(ids: dict[str, str]) -> None:
    listed = await cli("deployment", "ls")
    assert listed.exit_code == 0, listed.output
    nightly = row_of(listed.stdout, "etl/nightly")
    assert nightly[2:7] == ["crunch/fast", "NOT_READY", "none", "1", "never"], nightly
    assert row_of(listed.stdout, "etl/adhoc")[2:4] == ["NOT_READY", "none"]

    inspected = await cli("deployment", "inspect", "etl/nightly")
    assert inspected.exit_code == 0, inspected.output
    assert ids["deployment"] in inspected.stdout and "late runs" in inspected.stdout
    assert [line.split() for line in inspected.stdout.splitlines() if line.startswith("late runs")] == [["late", "runs", "1"]]
    by_id = await cli("deployment", "inspect", ids["deployment"])
    assert "crunch" in by_id.stdout

    pools = await cli("work-pool", "ls")
    assert pools.exit_code == 0, pools.output
    assert row_of(pools.stdout, "crunch")[1:] == ["crunch", "process", "READY", "1 of 1", "1", "none"]

    pool = await cli("work-pool", "inspect", "crunch")
    assert pool.exit_code == 0, pool.output
    assert ids["pool"] in pool.stdout and row_of(pool.stdout, "fast")[:3] == ["fast", "2", "NOT_READY"]
    assert row_of(pool.stdout, "worker-one")[:2] == ["worker-one", "ONLINE"]

    workers = await cli("worker", "ls", "--pool", "crunch")
    assert workers.exit_code == 0, workers.output
    cells = row_of(workers.stdout, "worker-one")
    assert cells[:2] == ["worker-one", "ONLINE"] and cells[3] == "3600 s"


async def test_ephemeral_mode_shows_deployments_pools_and_workers(local):
    async with serve(local) as server:
        ids = await seed(server)
    await check_tables(ids)


async def test_with_an_api_url_the_commands_ask_that_server(local, monkeypatch, tmp_path):
    async with serve(local) as server:
        ids = await seed(server)
        monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        await check_tables(ids)
        ran = await cli("deployment", "run", "etl/nightly", "-p", "x=5", "-p", "who=team", "--tag", "adhoc")
        assert ran.exit_code == 0, ran.output
        assert "Ephemeral mode" not in ran.output
        assert ": Scheduled in crunch / fast." in ran.stdout
        _, runs = await server.request("POST", "/flow_runs/filter", json={
            "deployments": {"id": {"any_": [ids["deployment"]]}}, "flow_runs": {"state": {"name": {"any_": ["Scheduled"]}}},
        })
        (run,) = runs
        assert run["parameters"] == {"x": 5, "who": "team"} and "adhoc" in run["tags"] and run["id"] in ran.stdout


async def test_unknown_names_are_one_line_errors(local):
    async with serve(local) as server:
        await seed(server)
    for args, said in [
        (("deployment", "inspect", "etl/nope"), "Error: no deployment 'etl/nope'"),
        (("deployment", "run", "nope"), "Error: give a deployment as FLOW_NAME/DEPLOYMENT_NAME or its id, not 'nope'"),
        (("deployment", "run", "00000000-0000-0000-0000-000000000001"),
         "Error: no deployment '00000000-0000-0000-0000-000000000001'"),
        (("work-pool", "inspect", "nope"), "Error: no work pool named 'nope'"),
        (("worker", "ls", "--pool", "nope"), "Error: no work pool named 'nope'"),
    ]:
        outcome = await cli(*args)
        assert outcome.exit_code == 1 and outcome.stderr.strip().splitlines()[-1] == said, (args, outcome.output)
        assert "Traceback" not in outcome.output
