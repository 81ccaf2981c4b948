"""`runlog server start` runs the late-runs service: a Scheduled run in the past becomes Late,
on both backends, through the real server process and its real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from ..servers import runlog_server, server_env, until

pytestmark = pytest.mark.slow


async def test_runlog_server_start_marks_a_scheduled_run_in_the_past_late(tmp_path, store_url) -> None:
    """`runlog server start` runs the late-runs service: a run scheduled a minute ago becomes
    Late (type SCHEDULED, name "Late", its scheduled time kept), with the loop set to 1 s."""
    env = server_env(tmp_path, store_url, RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS="1")
    with runlog_server(env, tmp_path / "server.log") as server:
        missed = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/flows/", json={"name": "late-flow"}) as answer:
                flow = await answer.json()
            body = {"flow_id": flow["id"], "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": missed}}}
            async with http.post(f"{server.url}/flow_runs/", json=body) as answer:
                assert answer.status == 201
                run = await answer.json()

            async def state() -> dict:
                async with http.get(f"{server.url}/flow_runs/{run['id']}") as answer:
                    return (await answer.json())["state"]

            async def late() -> bool:
                return (await state())["name"] == "Late"

            await until(late, timeout=60, interval=0.2, what="the run marked Late")
            final = await state()
        server.stop()
    assert final["type"] == "SCHEDULED"
    assert datetime.fromisoformat(final["state_details"]["scheduled_time"]) == datetime.fromisoformat(missed)
