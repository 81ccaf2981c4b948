"""Background services in a served runlog: with --workers on PostgreSQL, one process leads each
singleton service, and when that process is killed another takes over."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import psutil
import pytest

from ..servers import runlog_server, server_env, until
from .test_server_process import worker_processes

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def pids(output: str, event: str, service: str) -> list[int]:
    """The pids that logged EVENT for SERVICE, in order (the log is JSON lines)."""
    pids = []
    for line in output.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == event and entry.get("service") == service:
            pids.append(entry["pid"])
    return pids


async def test_one_worker_runs_lease_expiry_and_another_takes_over_when_it_is_killed(tmp_path, pg_url) -> None:
    env = server_env(tmp_path, pg_url, RUNLOG_LOGGING_LEVEL="INFO")
    with runlog_server(env, tmp_path / "server.log", "--workers", "2") as server:
        workers = worker_processes(psutil.Process(server.proc.pid))
        assert len(workers) == 2
        # Both workers campaign: one takes the lead, the other follows.
        await until(lambda: bool(pids(server.output(), "service_leading", "lease_expiry")
                                 and pids(server.output(), "service_following", "lease_expiry")),
                    timeout=90, interval=0.1, what="one leader and one follower")
        (leader,) = pids(server.output(), "service_leading", "lease_expiry")
        (follower,) = pids(server.output(), "service_following", "lease_expiry")
        assert {leader, follower} == {w.pid for w in workers}
        psutil.Process(leader).kill()  # SIGKILL: no resign, its session just dies
        await until(lambda: len(pids(server.output(), "service_leading", "lease_expiry")) >= 2,
                    timeout=90, interval=0.1, what="the follower leading")
        assert pids(server.output(), "service_leading", "lease_expiry") == [leader, follower]
        server.stop()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_runlog_server_start_marks_a_scheduled_run_in_the_past_late(tmp_path, store_url, backend) -> None:
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
