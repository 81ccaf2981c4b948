"""Background services in a served runlog: with --workers on PostgreSQL, one process leads each
singleton service, and when that process is killed another takes over."""

from __future__ import annotations

import json

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

