"""Work pools, queues and a worker with the stock Prefect 3.8 CLI against ``runlog server start``,
on both backends: the CLI's pool and queue commands, and ``prefect worker start`` heartbeating
(ONLINE, pool READY) until it stops (OFFLINE, pool NOT_READY), with a one-second heartbeat and
the status service run every second so that the test takes seconds, not minutes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ..servers import ROOT, runlog_server, server_env
from .test_prefect_client import PREFECT_PYTHON, Runlog

pytestmark = pytest.mark.slow


@contextmanager
def served(store_url: str, tmp_path, **settings: str) -> Iterator[Runlog]:
    """A runlog server process (the foreman every second) and a stock client's environment for it."""
    env = server_env(tmp_path, store_url, RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS="1s", **settings)
    with runlog_server(env, tmp_path / "server.log") as running:
        client_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))
        } | {
            "PREFECT_API_URL": running.url, "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        server = Runlog(running.url, client_env)
        try:
            yield server
        finally:
            server.http.close()
        assert running.stop() == 0, running.output()


@pytest.fixture
def runlog(store_url, tmp_path):
    with served(store_url, tmp_path) as server:
        yield server


def client_events(server: Runlog, prefix: str) -> list[dict]:
    """The events named ``prefix``..., oldest first, as the stock client reads them (read_events)."""
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.worker_scripts", "events", prefix],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])["events"]


def eventually(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_work_pool_and_queue_commands(runlog) -> None:
    created = runlog.prefect("work-pool", "create", "compat-pool", "--type", "process")
    assert "compat-pool" in created
    pool = runlog.get("/work_pools/compat-pool")
    assert pool["type"] == "process" and pool["status"] == "NOT_READY"
    assert "job_configuration" in pool["base_job_template"] and "variables" in pool["base_job_template"]
    assert "compat-pool" in runlog.prefect("work-pool", "ls")
    inspected = runlog.prefect("work-pool", "inspect", "compat-pool")
    assert pool["id"] in inspected and "NOT_READY" in inspected

    assert "Paused work pool 'compat-pool'" in runlog.prefect("work-pool", "pause", "compat-pool")
    assert runlog.get("/work_pools/compat-pool")["status"] == "PAUSED"
    assert "Resumed work pool 'compat-pool'" in runlog.prefect("work-pool", "resume", "compat-pool")
    assert runlog.get("/work_pools/compat-pool")["status"] == "NOT_READY"

    runlog.prefect("work-queue", "create", "fast", "--pool", "compat-pool", "--limit", "3")
    listing = runlog.prefect("work-queue", "ls", "--pool", "compat-pool")
    assert "fast" in listing and "default" in listing
    queues = runlog.post("/work_pools/compat-pool/queues/filter", {})
    assert {q["name"]: (q["priority"], q["concurrency_limit"]) for q in queues} == {"default": (1, None), "fast": (2, 3)}
    inspected = json.loads(runlog.prefect("work-queue", "inspect", "fast", "--pool", "compat-pool", "--output", "json"))
    assert inspected["name"] == "fast" and inspected["concurrency_limit"] == 3

    # Prefect's server events for what the CLI did, read through the client's read_events.
    runlog.prefect("work-pool", "update", "compat-pool", "--concurrency-limit", "4")
    runlog.prefect("work-queue", "set-concurrency-limit", "fast", "5", "--pool", "compat-pool")

    def pool_and_queue_events():
        seen = client_events(runlog, "prefect.work-")
        return seen if len(seen) >= 9 else None

    seen = eventually(pool_and_queue_events, "the pool's and queues' events in the feed")
    # The CLI creates "fast" and then sets its limit: two events, as Prefect's server shows them.
    # Events of one moment (a new pool, its status and its default queue) have no order in
    # Prefect's API, which sorts by time alone: compared as a set within each moment.
    moments: list[tuple[str, list[str]]] = []
    for e in seen:
        if moments and moments[-1][0] == e["occurred"]:
            moments[-1][1].append(e["event"])
        else:
            moments.append((e["occurred"], [e["event"]]))
    assert [sorted(names) for _, names in moments] == [
        ["prefect.work-pool.created", "prefect.work-pool.not-ready", "prefect.work-queue.created"],
        ["prefect.work-pool.paused"], ["prefect.work-pool.not-ready"], ["prefect.work-queue.created"],
        ["prefect.work-queue.updated"], ["prefect.work-pool.updated"], ["prefect.work-queue.updated"],
    ]
    assert [e["event"] for e in seen[7:]] == ["prefect.work-pool.updated", "prefect.work-queue.updated"]
    assert seen[7]["payload"] == {
        "updated_fields": ["concurrency_limit"], "updates": {"concurrency_limit": {"from": None, "to": 4}},
    }
    assert seen[8]["resource"]["prefect.resource.name"] == "fast"
    assert seen[8]["payload"]["updates"] == {"concurrency_limit": {"from": 3, "to": 5}}
    assert seen[8]["related"][0]["prefect.resource.id"] == f"prefect.work-pool.{pool['id']}"


def test_a_worker_is_online_while_it_runs_and_offline_after_it_stops(runlog) -> None:
    runlog.prefect("work-pool", "create", "worker-pool", "--type", "process")
    env = runlog.env | {"PREFECT_WORKER_HEARTBEAT_SECONDS": "1", "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker = subprocess.Popen(
        [PREFECT_PYTHON, "-m", "prefect", "worker", "start", "--pool", "worker-pool", "--type", "process",
         "--name", "compat-worker"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        def online():
            workers = runlog.post("/work_pools/worker-pool/workers/filter", {})
            pool = runlog.get("/work_pools/worker-pool")
            return workers if workers and workers[0]["status"] == "ONLINE" and pool["status"] == "READY" else None

        (seen,) = eventually(online, "the worker ONLINE and its pool READY")
        assert seen["name"] == "compat-worker" and seen["heartbeat_interval_seconds"] == 1
        first = seen["last_heartbeat_time"]
        eventually(lambda: runlog.post("/work_pools/worker-pool/workers/filter", {})[0]["last_heartbeat_time"] != first,
                   "a later heartbeat")
        queue = runlog.post("/work_pools/worker-pool/queues/filter", {})[0]
        eventually(lambda: runlog.get(f"/work_queues/{queue['id']}")["status"] == "READY", "the polled queue READY")
        assert runlog.get(f"/work_queues/{queue['id']}/status")["healthy"] is True
    finally:
        os.killpg(worker.pid, signal.SIGINT)
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:  # the 3.8 worker may not exit on SIGINT (prefect-wire.md 4)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        assert worker.stdout is not None
        output = worker.stdout.read().decode(errors="replace")
        worker.stdout.close()

    def offline():
        workers = runlog.post("/work_pools/worker-pool/workers/filter", {})
        return workers[0]["status"] == "OFFLINE" and runlog.get("/work_pools/worker-pool")["status"] == "NOT_READY"

    eventually(offline, "the worker OFFLINE and its pool NOT_READY")
    assert runlog.post("/work_pools/worker-pool/workers/filter", {"workers": {"status": {"any_": ["OFFLINE"]}}})

    def pool_events():  # the event feed follows the log a moment behind
        return [e["event"] for e in runlog.post("/events/filter", {
            "filter": {"event": {"name": ["prefect.work-pool.ready", "prefect.work-pool.not-ready"]}, "order": "ASC"},
        })["events"]]

    eventually(lambda: len(pool_events()) >= 3, "the pool's status events in the feed")
    # The new pool's status (as Prefect's POST /work_pools/ emits it), then the worker's doing.
    assert pool_events() == ["prefect.work-pool.not-ready", "prefect.work-pool.ready", "prefect.work-pool.not-ready"], output
