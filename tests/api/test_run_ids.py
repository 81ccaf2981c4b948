"""Short run ids: GET /api/runlog/flow_runs/ids, and the CLI taking a unique prefix wherever it
takes a flow run id and showing readable ids at 80 columns, in ephemeral and in HTTP mode."""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import uuid
from dataclasses import dataclass

import pytest

from runlog.commands.flow_runs import RUN_NAMESPACE

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import Server, serve


def run_id(flow_id: str, key: str) -> str:
    """The id runlog gives a run created with this idempotency key (commands/flow_runs.py)."""
    return str(uuid.uuid5(RUN_NAMESPACE, f"{flow_id}\x1f{key}"))


@functools.cache
def twin_keys(flow_id: str) -> tuple[str, str]:
    """Two idempotency keys whose runs' ids share their first 8 hex digits (a birthday search,
    about a second; a flow's id derives from its name, so it runs once per test session)."""
    seen: dict[str, str] = {}
    for n in itertools.count():
        key = f"twin-{n}"
        head = run_id(flow_id, key)[:8]
        if head in seen:
            return seen[head], key
        seen[head] = key
    raise AssertionError("unreachable")


@dataclass
class Runs:
    twins: tuple[str, str]  # ids sharing their first 8 characters
    solo: str
    unused: str  # 4 hex digits that start no run id


async def seed(server: Server) -> Runs:
    _, flow = await server.request("POST", "/flows/", json={"name": "short-ids"})
    keys = twin_keys(flow["id"])
    twins = []
    for n, key in enumerate(keys):
        status, run = await server.request(
            "POST", "/flow_runs/", json={"flow_id": flow["id"], "name": f"twin-{n}", "idempotency_key": key})
        assert status == 201
        twins.append(run["id"])
    assert twins == [run_id(flow["id"], k) for k in keys] and twins[0][:8] == twins[1][:8]
    _, solo = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": "solo-run"})
    status, task = await server.request("POST", "/task_runs/", json={
        "flow_run_id": solo["id"], "task_key": "extract", "dynamic_key": "0", "name": "extract-0"})
    assert status == 201
    taken = {i[:4] for i in (*twins, solo["id"])}
    unused = next(p for p in (f"{n:04x}" for n in range(1 << 16)) if p not in taken)
    return Runs((twins[0], twins[1]), solo["id"], unused)


def common_length(a: str, b: str) -> int:
    return next(n for n, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


# -- the endpoint ----------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path, store_url):
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def test_the_ids_endpoint_finds_runs_by_the_start_of_their_id_in_id_order(env):
    async with serve(env) as server:
        runs = await seed(server)
        twins = sorted(runs.twins)
        status, found = await server.request("GET", f"/runlog/flow_runs/ids?prefix={twins[0][:8]}")
        assert status == 200
        assert [r["id"] for r in found] == twins and {r["name"] for r in found} == {"twin-0", "twin-1"}
        assert found[0]["state_name"] == "Pending"
        # Case and hyphens do not matter; a prefix running past the first hyphen still matches.
        longer = twins[0][:common_length(*twins) + 1]
        for prefix in (longer, longer.upper(), longer.replace("-", "")):
            status, found = await server.request("GET", "/runlog/flow_runs/ids", params={"prefix": prefix})
            assert status == 200 and [r["id"] for r in found] == [twins[0]], prefix
        status, found = await server.request("GET", f"/runlog/flow_runs/ids?prefix={twins[0][:8]}&limit=1")
        assert [r["id"] for r in found] == twins[:1]
        status, found = await server.request("GET", f"/runlog/flow_runs/ids?prefix={runs.solo}")
        assert [r["id"] for r in found] == [runs.solo]
        status, found = await server.request("GET", f"/runlog/flow_runs/ids?prefix={runs.unused}")
        assert status == 200 and found == []


@pytest.mark.parametrize(("query", "detail"), [
    ("", "query parameter 'prefix' is required"),
    ("?prefix=abc", "too short"),
    ("?prefix=xyz1", "not the start of a run id"),
    ("?prefix=abcd'--", "not the start of a run id"),
    ("?prefix=" + "a" * 33, "longer than a run id"),
    ("?prefix=abcd&limit=0", "'limit' must be between 1 and 100"),
    ("?prefix=abcd&limit=many", "'limit' is not a number"),
])
async def test_the_ids_endpoint_refuses_what_cannot_be_an_id_prefix_with_422(env, query, detail):
    async with serve(env) as server:
        status, body = await server.request("GET", "/runlog/flow_runs/ids" + query)
    assert status == 422 and detail in body["detail"]


# -- the CLI, in both modes ------------------------------------------------------------------


@pytest.fixture(params=["ephemeral", "http"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def cli(*args: str):
    return await asyncio.to_thread(run_cli, *args)


async def with_runs(local, mode, monkeypatch, tmp_path, check) -> None:
    """Seed runs, then run CHECK against the local database (ephemeral) or over HTTP."""
    async with serve(local) as server:
        runs = await seed(server)
        if mode == "http":
            monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere.db")
            monkeypatch.setenv("RUNLOG_API_URL", server.base)
            await check(runs)
    if mode == "ephemeral":
        await check(runs)


async def test_inspect_and_task_run_ls_accept_a_unique_prefix_of_a_run_id(local, mode, monkeypatch, tmp_path):
    async def check(runs: Runs) -> None:
        for prefix in (runs.solo[:8], runs.solo[:4], runs.solo[:13].upper()):
            inspected = await cli("flow-run", "inspect", prefix)
            assert inspected.exit_code == 0, inspected.output
            assert "solo-run" in inspected.stdout and runs.solo in inspected.stdout
        twin = runs.twins[1][:common_length(*runs.twins) + 1]
        inspected = await cli("flow-run", "inspect", twin)
        assert inspected.exit_code == 0 and "twin-1" in inspected.stdout, inspected.output
        tasks = await cli("task-run", "ls", "--flow-run", runs.solo[:8])
        assert tasks.exit_code == 0 and "extract-0" in tasks.stdout, tasks.output
        whole = await cli("flow-run", "inspect", runs.solo)
        assert whole.exit_code == 0 and "solo-run" in whole.stdout

    await with_runs(local, mode, monkeypatch, tmp_path, check)


async def test_an_ambiguous_prefix_lists_the_candidates_and_one_matching_nothing_says_so(
    local, mode, monkeypatch, tmp_path
):
    async def check(runs: Runs) -> None:
        ambiguous = await cli("flow-run", "inspect", runs.twins[0][:8])
        assert ambiguous.exit_code == 1
        assert f"Error: '{runs.twins[0][:8]}' is ambiguous: it starts the ids of 2 flow runs" in ambiguous.output
        assert "give more characters" in ambiguous.output
        for twin, name in zip(runs.twins, ("twin-0", "twin-1"), strict=True):
            assert f"{twin}  {name}" in ambiguous.output
        also = await cli("task-run", "ls", "--flow-run", runs.twins[1][:8])
        assert also.exit_code == 1 and "is ambiguous" in also.output
        nothing = await cli("flow-run", "inspect", runs.unused)
        assert nothing.exit_code == 1
        assert f"Error: no flow run has an id starting with '{runs.unused}'" in nothing.output
        short = await cli("flow-run", "inspect", "abc")
        assert short.exit_code == 1 and "give at least 4 characters" in short.output
        assert "Traceback" not in ambiguous.output + nothing.output + short.output

    await with_runs(local, mode, monkeypatch, tmp_path, check)


async def test_run_tables_fit_80_columns_with_short_ids_and_wide_or_json_show_whole_ones(
    local, mode, monkeypatch, tmp_path
):
    async def check(runs: Runs) -> None:
        table = await cli("flow-run", "ls")
        assert table.exit_code == 0, table.output
        lines = table.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        # One line per run: nothing wraps. The solo run shows 8 characters; the twins as many
        # as tell them apart; no whole id is shown.
        (solo_line,) = [line for line in lines if "solo-run" in line]
        assert f"│ {runs.solo[:8]} " in solo_line
        shown = common_length(*runs.twins) + 1
        for twin in runs.twins:
            assert sum(f"│ {twin[:shown]} " in line for line in lines) == 1
        assert not any(i in table.stdout for i in (*runs.twins, runs.solo))
        tasks = await cli("task-run", "ls", "--flow-run", runs.solo)
        assert max(len(line) for line in tasks.stdout.splitlines()) <= 80

        wide = await cli("flow-run", "ls", "--wide")
        assert all(i in wide.stdout for i in (*runs.twins, runs.solo)), wide.stdout
        as_json = await cli("flow-run", "ls", "-o", "json")
        assert as_json.exit_code == 0
        assert {r["id"] for r in json.loads(as_json.stdout)} == {*runs.twins, runs.solo}
        flows = await cli("flow", "ls", "--output", "json")
        assert [f["name"] for f in json.loads(flows.stdout)] == ["short-ids"]

    await with_runs(local, mode, monkeypatch, tmp_path, check)
