"""PATCH and DELETE of task runs and flows over the API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from runlog.commands.clock import ManualClock

from ..servers import serve
from .test_cli_runs import local, seed  # noqa: F401 - the fixture is used by name


async def test_task_runs_can_be_renamed_and_deleted_and_flows_retagged(local):
    async with serve(local) as server:
        ids = await seed(server)
        assert (await server.request("PATCH", f"/task_runs/{ids['task']}", json={"name": "renamed"}))[0] == 204
        assert (await server.request("GET", f"/task_runs/{ids['task']}"))[1]["name"] == "renamed"
        assert (await server.request("PATCH", f"/flows/{ids['flow']}", json={"tags": ["etl"]}))[0] == 204
        assert (await server.request("GET", f"/flows/{ids['flow']}"))[1]["tags"] == ["etl"]
        assert (await server.request("DELETE", f"/task_runs/{ids['task']}"))[0] == 204
        assert (await server.request("GET", f"/task_runs/{ids['task']}"))[0] == 404


async def test_a_created_flow_run_is_answered_as_later_reads_show_it(local):
    # The create answer is folded from the stored events, not read back: it must match a read,
    # also for a client timestamp in another time zone. The fields computed from "now"
    # (estimated_start_time_delta) are equal only because the server's clock stands still.
    clock = ManualClock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    async with serve(local, clock=clock) as server:
        ids = await seed(server)
        status, created = await server.request("POST", "/flow_runs/", json={
            "flow_id": ids["flow"], "name": "tz", "tags": ["a", "b"], "parameters": {"n": 1},
            "state": {"type": "SCHEDULED", "timestamp": "2026-11-21T12:00:00+02:00",
                      "state_details": {"scheduled_time": "2026-11-22T08:30:00+02:00"}},
        })
        assert status == 201
        assert (await server.request("GET", f"/flow_runs/{created['id']}"))[1] == created
        assert created["estimated_start_time_delta"] == 0.0  # scheduled for tomorrow: not late
        clock.set(datetime(2026, 11, 22, 7, 0, tzinfo=UTC))  # half an hour past 08:30+02:00
        late = (await server.request("GET", f"/flow_runs/{created['id']}"))[1]
        assert late["estimated_start_time_delta"] == 1800.0
        moved = await server.request("POST", f"/flow_runs/{created['id']}/set_state",
                                     json={"state": {"type": "PENDING"}})
        assert moved[1]["status"] == "ACCEPT"
        status, runs = await server.request("POST", "/flow_runs/filter", json={"flow_runs": {"id": {"any_": [created["id"]]}}})
        assert runs[0]["state"]["type"] == "PENDING" and runs[0]["tags"] == ["a", "b"]


async def test_concurrent_label_edits_of_one_run_all_survive(local):
    # Each PATCH is decided against the labels at the version it appends after; a lost race is
    # decided again against the winner's labels, so no edit overwrites another.
    async with serve(local) as server:
        ids = await seed(server)
        status, run = await server.request("POST", "/flow_runs/", json={"flow_id": ids["flow"]})
        assert status == 201
        edits = [server.request("PATCH", f"/flow_runs/{run['id']}/labels", json={f"k{n}": n}) for n in range(12)]
        assert [status for status, _ in await asyncio.gather(*edits)] == [204] * 12
        labels = (await server.request("GET", f"/flow_runs/{run['id']}"))[1]["labels"]
        assert {k: v for k, v in labels.items() if k.startswith("k")} == {f"k{n}": n for n in range(12)}
        assert labels["prefect.flow.id"] == ids["flow"]
