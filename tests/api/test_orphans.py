"""Runs that point at nothing, already stored: listings leave them out, ``runlog database check`` finds them.

They are appended with the store directly, bypassing the API (which refuses them now), as an
older runlog or an import could have stored them.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from runlog.schema import streams
from runlog.api.app import inline_projections
from runlog.commands.executor import append_event
from runlog.eventstore import open_store
from runlog.schema import events as catalogue

from .cli_runner import run_cli
from ..servers import serve
from .test_references import UNKNOWN, count, local, new_flow, new_flow_run  # noqa: F401 - local is a fixture


async def store_orphans(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    """A flow run of an unknown flow and a task run of an unknown flow run, appended with the
    store directly (as an older runlog or an import could have stored them), bypassing the API."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    run_id, task_id = uuid.uuid4(), uuid.uuid4()
    async with open_store(url, projections=inline_projections()) as store:
        created = catalogue.FlowRunCreated(flow_run_id=run_id, flow_id=uuid.UUID(UNKNOWN), name="orphan", created=now)
        await append_event(store, streams.flow_run(run_id), created)
        state = catalogue.State(id=uuid.uuid4(), type=catalogue.StateType.PENDING, name="Pending", timestamp=now)
        await append_event(
            store, streams.flow_run(run_id),
            catalogue.FlowRunStateChanged(flow_run_id=run_id, state=state, forced=True), event_id=state.id,
        )
        task = catalogue.TaskRunCreated(task_run_id=task_id, flow_run_id=uuid.UUID(UNKNOWN),
                                        task_run={"task_key": "t", "dynamic_key": "0", "name": "lost"}, created=now)
        await append_event(store, streams.task_run(task_id), task)
    return run_id, task_id


async def test_listings_leave_out_flow_runs_of_unknown_flows_already_stored(local):
    orphan_id, orphan_task_id = await store_orphans(local["RUNLOG_DATABASE_URL"])
    async with serve(local) as server:
        run = await new_flow_run(server, await new_flow(server))
        status, listed = await server.request("POST", "/flow_runs/filter", json={})
        assert status == 200 and [r["id"] for r in listed] == [run["id"]]
        assert await count(server, "/flow_runs/count") == 1
        status, page = await server.request("POST", "/flow_runs/paginate", json={})
        assert status == 200 and [r["id"] for r in page["results"]] == [run["id"]]
        # Still readable, and deletable, by id.
        assert (await server.request("GET", f"/flow_runs/{orphan_id}"))[1]["name"] == "orphan"
        # Task runs of an unknown flow run are listed as they are.
        status, tasks = await server.request("POST", "/task_runs/filter", json={})
        assert [t["id"] for t in tasks] == [str(orphan_task_id)]
    runs = await asyncio.to_thread(run_cli, "flow-run", "ls")
    assert runs.exit_code == 0 and "orphan" not in runs.stdout and run["name"] in runs.stdout


async def test_database_check_reports_dangling_references_with_counts_and_ids_and_exits_1(local):
    orphan_id, orphan_task_id = await store_orphans(local["RUNLOG_DATABASE_URL"])
    result = await asyncio.to_thread(run_cli, "database", "check")
    assert result.exit_code == 1, result.output
    assert "flow runs of unknown flows: 1" in result.output
    assert f"{orphan_id}  (flow_id {UNKNOWN})" in result.output
    assert "task runs of unknown flow runs: 1" in result.output
    assert f"{orphan_task_id}  (flow_run_id {UNKNOWN})" in result.output
    assert "subflow runs of unknown parent task runs: 0" in result.output
    assert "Found 2 dangling reference(s)." in result.output
    async with serve(local) as server:
        assert (await server.request("DELETE", f"/flow_runs/{orphan_id}"))[0] == 204
        assert (await server.request("DELETE", f"/task_runs/{orphan_task_id}"))[0] == 204
    result = await asyncio.to_thread(run_cli, "database", "check")
    assert result.exit_code == 0 and "No dangling references." in result.output, result.output


async def test_database_check_counts_every_orphan_but_lists_twenty_unless_all(local):
    for _ in range(21):
        await store_orphans(local["RUNLOG_DATABASE_URL"])
    result = await asyncio.to_thread(run_cli, "database", "check")
    assert result.exit_code == 1
    assert "flow runs of unknown flows: 21" in result.output and "... and 1 more (--all lists them)" in result.output
    everything = await asyncio.to_thread(run_cli, "database", "check", "--all")
    assert everything.output.count(f"(flow_id {UNKNOWN})") == 21


async def test_deletes_through_the_api_leave_no_dangling_reference(local):
    async with serve(local) as server:
        flow_id, child_flow_id = await new_flow(server), await new_flow(server, "child")
        runs = [await new_flow_run(server, flow_id) for _ in range(2)]
        for run in runs:
            _, task = await server.request("POST", "/task_runs/", json={
                "flow_run_id": run["id"], "task_key": "t", "dynamic_key": "0"})
            # Subflow runs of another flow, whose parent task runs all go below.
            subflow = await new_flow_run(server, child_flow_id, parent_task_run_id=task["id"])
            await server.request("POST", "/task_runs/", json={
                "flow_run_id": subflow["id"], "task_key": "t", "dynamic_key": "0"})
        assert (await server.request("DELETE", f"/task_runs/{task['id']}"))[0] == 204  # a subflow's parent
        assert (await server.request("DELETE", f"/flow_runs/{runs[0]['id']}"))[0] == 204
        assert (await server.request("DELETE", f"/flows/{flow_id}"))[0] == 204
        assert await count(server, "/flow_runs/count") == 2 and await count(server, "/task_runs/count") == 2
    result = await asyncio.to_thread(run_cli, "database", "check")
    assert result.exit_code == 0 and "No dangling references." in result.output, result.output


async def test_database_check_reports_a_subflow_run_whose_parent_task_run_never_existed(local):
    async with serve(local) as server:
        flow_id = uuid.UUID(await new_flow(server))
    run_id = uuid.uuid4()
    async with open_store(local["RUNLOG_DATABASE_URL"], projections=inline_projections()) as store:
        created = catalogue.FlowRunCreated(flow_run_id=run_id, flow_id=flow_id, name="stray-subflow",
                                           parent_task_run_id=uuid.UUID(UNKNOWN), created=datetime(2026, 1, 1, tzinfo=UTC))
        await append_event(store, streams.flow_run(run_id), created)
    result = await asyncio.to_thread(run_cli, "database", "check")
    assert result.exit_code == 1
    assert "subflow runs of unknown parent task runs: 1" in result.output
    assert f"{run_id}  (parent_task_run_id {UNKNOWN})" in result.output
