"""The stock ``prefect worker`` end to end against ``runlog server start``, on both backends: a
process pool, a deployment of local code (``flow.from_source`` on a directory) with parameters
and tags, runs made with ``run_deployment`` picked up and Completed with their parameters through
Prefect's states, a running run cancelled with ``prefect flow-run cancel`` (the worker hears the
Cancelling event on /events/out and kills the process), a run nobody picks up made Late, and the
stock CLI's listings. Short heartbeat, poll and service intervals keep each test to seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ..servers import ROOT
from .test_prefect_client import PREFECT_PYTHON, Runlog
from .test_work_pools import eventually, served

pytestmark = pytest.mark.slow

POOL = "compat-process"
DEPLOYMENT = "compat-worked/by-worker"


@pytest.fixture
def runlog(store_url, tmp_path):
    with served(store_url, tmp_path) as server:  # runs are Late after Prefect's 15 s, as a loaded box needs
        yield server


@pytest.fixture
def hurried(store_url, tmp_path):
    """A server that makes runs Late 2 s after their time, checking every second."""
    with served(store_url, tmp_path, RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS="1s",
                RUNLOG_SERVICES_LATE_RUNS_AFTER_SECONDS="2s") as server:
        yield server


def script(server: Runlog, *args: str) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.worker_scripts", *args],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"worker_scripts {args} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def deployed(server: Runlog) -> str:
    server.prefect("work-pool", "create", POOL, "--type", "process")
    return script(server, "deploy", POOL)["id"]


@contextmanager
def worker(server: Runlog, tmp_path) -> Iterator[subprocess.Popen[bytes]]:
    env = server.env | {
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "1", "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [PREFECT_PYTHON, "-m", "prefect", "worker", "start", "--pool", POOL, "--name", "compat-worker"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the 3.8 worker may not exit on SIGINT (prefect-wire.md 4)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def states_of(server: Runlog, run_id: str) -> list[tuple[str, str]]:
    return [(s["type"], s["name"]) for s in server.get(f"/flow_run_states/?flow_run_id={run_id}")]


def test_the_worker_runs_deployment_runs_to_completed_with_their_parameters(runlog, tmp_path) -> None:
    deployment_id = deployed(runlog)
    deployment = runlog.get(f"/deployments/{deployment_id}")
    assert deployment["tags"] == ["compat", "worker"] and deployment["parameters"] == {"x": 1}
    assert deployment["work_pool_name"] == POOL and deployment["work_queue_name"] == "default"
    with worker(runlog, tmp_path):
        first, second = script(runlog, "run", DEPLOYMENT, "3"), script(runlog, "run", DEPLOYMENT, "5")

        def completed():
            runs = [runlog.get(f"/flow_runs/{r['id']}") for r in (first, second)]
            return runs if all(r["state"]["type"] == "COMPLETED" for r in runs) else None

        runs = eventually(completed, "both runs Completed", timeout=120)
        assert [r["parameters"]["x"] for r in runs] == [3, 5]
        assert all(r["work_queue_name"] == "default" and r["work_pool_name"] == POOL for r in runs)
        assert states_of(runlog, first["id"]) == [
            ("SCHEDULED", "Scheduled"), ("PENDING", "Pending"), ("PENDING", "Submitting"), ("RUNNING", "Running"),
            ("COMPLETED", "Completed"),
        ]
        (online,) = runlog.post(f"/work_pools/{POOL}/workers/filter", {})
        assert online["status"] == "ONLINE" and runlog.get(f"/work_pools/{POOL}")["status"] == "READY"
        assert runlog.get(f"/deployments/{deployment_id}")["status"] == "READY"
        inspected = json.loads(runlog.prefect("deployment", "inspect", DEPLOYMENT, "--output", "json"))
        assert inspected["status"] == "READY"

        assert DEPLOYMENT in runlog.prefect("deployment", "ls")
        pools = runlog.prefect("work-pool", "ls")
        assert POOL in pools and "process" in pools
        assert "READY" in runlog.prefect("work-pool", "inspect", POOL)
        assert "default" in runlog.prefect("work-queue", "ls", "--pool", POOL)


def test_prefect_flow_run_cancel_ends_a_running_deployment_run_cancelled(runlog, tmp_path) -> None:
    deployed(runlog)
    with worker(runlog, tmp_path):
        run_id = script(runlog, "run", DEPLOYMENT, "7", "120")["id"]
        eventually(lambda: runlog.get(f"/flow_runs/{run_id}")["state"]["type"] == "RUNNING", "the run Running",
                   timeout=120)
        said = runlog.prefect("flow-run", "cancel", run_id)
        assert "scheduled for cancellation" in said, said
        eventually(lambda: runlog.get(f"/flow_runs/{run_id}")["state"]["type"] == "CANCELLED", "the run Cancelled",
                   timeout=60)
        assert [t for t, _ in states_of(runlog, run_id)][-2:] == ["CANCELLING", "CANCELLED"]
        # the worker, not the server's cleanup, ended it: it says it killed the run's process
        assert runlog.get(f"/flow_runs/{run_id}")["state"]["message"] == "Flow run was cancelled successfully."


def test_a_deployment_run_nobody_picks_up_becomes_late(hurried) -> None:
    deployed(hurried)
    run_id = script(hurried, "run", DEPLOYMENT, "1")["id"]
    late = eventually(lambda: (s := hurried.get(f"/flow_runs/{run_id}")["state"])["name"] == "Late" and s, "Late")
    assert late["type"] == "SCHEDULED"
    queue_id = hurried.get(f"/deployments/name/{DEPLOYMENT}")["work_queue_id"]
    assert hurried.get(f"/work_queues/{queue_id}/status")["late_runs_count"] == 1
