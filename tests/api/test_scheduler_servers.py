"""The scheduler in served runlogs: two `runlog server start` processes on one PostgreSQL run
each singleton service on exactly one of them, the scheduler creates each run once, and when the
leader is killed (SIGKILL) the other takes over within seconds."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ..servers import runlog_server, server_env, until
from .test_server_services import pids

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SINGLETONS = ("scheduler", "late_runs", "lease_expiry", "pause_expirations", "cancellation_cleanup", "work_pool_status")


def fast_services(tmp_path, pg_url: str, name: str) -> dict[str, str]:
    return server_env(
        tmp_path / name, pg_url, RUNLOG_LOGGING_LEVEL="INFO",
        RUNLOG_SERVICES_SCHEDULER_RECENT_LOOP_SECONDS="1", RUNLOG_SERVICES_SCHEDULER_LOOP_SECONDS="3",
        RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS="1",
    )


def deploy(client: httpx.Client, name: str, interval: float = 60) -> str:
    flow = client.post("/flows/", json={"name": "served-schedules"}).json()
    anchor = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = client.post("/deployments/", json={
        "name": name, "flow_id": flow["id"],
        "schedules": [{"schedule": {"interval": interval, "anchor_date": anchor}, "active": True}],
    })
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def runs_of(client: httpx.Client, deployment_id: str) -> list[dict]:
    response = client.post("/flow_runs/filter", json={
        "flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 200,
    })
    assert response.status_code == 200, response.text
    return response.json()


def leaders(output: str, service: str) -> list[int]:
    return pids(output, "service_leading", service)


async def test_two_servers_schedule_each_run_once_and_the_follower_takes_over_from_a_killed_leader(
    tmp_path, pg_url,
) -> None:
    with runlog_server(fast_services(tmp_path, pg_url, "a"), tmp_path / "a.log") as a, \
            runlog_server(fast_services(tmp_path, pg_url, "b"), tmp_path / "b.log") as b, \
            httpx.Client(base_url=a.url, timeout=30) as via_a, httpx.Client(base_url=b.url, timeout=30) as via_b:
        servers = {a.proc.pid: a, b.proc.pid: b}

        def all_output() -> str:
            return a.output() + b.output()

        # Each singleton service leads in exactly one process; the other follows.
        await until(lambda: all(leaders(all_output(), s) and pids(all_output(), "service_following", s)
                                for s in SINGLETONS), timeout=60, interval=0.2, what="a leader and a follower each")
        for service in SINGLETONS:
            assert len(leaders(all_output(), service)) == 1, service

        # Deployments created through either server get their runs once: 61 over the hour.
        first, second = deploy(via_a, "through-a"), deploy(via_b, "through-b")
        for deployment_id in (first, second):
            await until(lambda d=deployment_id: len(runs_of(via_a, d)) >= 61, timeout=30, interval=0.2,
                        what="the deployment's runs")
        await asyncio.sleep(4)  # both processes go round again (a full pass every 3 s): still one run each
        for deployment_id in (first, second):
            runs = runs_of(via_b, deployment_id)
            per_time = Counter(r["next_scheduled_start_time"] for r in runs)
            assert len(runs) == 61 and set(per_time.values()) == {1}
            assert all(r["auto_scheduled"] and r["state_name"] == "Scheduled" for r in runs)

        # Kill the scheduler's leader: the other process takes over within seconds.
        (leader,) = leaders(all_output(), "scheduler")
        survivor = next(s for pid, s in servers.items() if pid != leader)
        servers[leader].proc.send_signal(signal.SIGKILL)
        servers[leader].proc.wait(timeout=30)
        with httpx.Client(base_url=survivor.url, timeout=30) as client:
            await until(lambda: survivor.proc.pid in leaders(survivor.output(), "scheduler"),
                        timeout=30, interval=0.2, what="the survivor leading the scheduler")
            third = deploy(client, "after-the-kill")
            await until(lambda: len(runs_of(client, third)) == 61, timeout=15, interval=0.2,
                        what="runs of a deployment created after the kill")
            # The late-runs service keeps marking: a run 20 s overdue becomes Late.
            flow = client.post("/flows/", json={"name": "served-schedules"}).json()
            overdue = (datetime.now(UTC) - timedelta(seconds=20)).isoformat()
            run = client.post("/flow_runs/", json={"flow_id": flow["id"], "state": {
                "type": "SCHEDULED", "state_details": {"scheduled_time": overdue}}}).json()

            def late() -> bool:
                return client.get(f"/flow_runs/{run['id']}").json()["state_name"] == "Late"

            await until(late, timeout=15, interval=0.2, what="the overdue run Late")
            for deployment_id in (first, second, third):
                per_time = Counter(r["next_scheduled_start_time"] for r in runs_of(client, deployment_id))
                assert set(per_time.values()) == {1}
