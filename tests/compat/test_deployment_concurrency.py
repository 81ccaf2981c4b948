"""A deployment concurrency limit of 1 with the stock runner (``flow.serve(global_limit=1)``)
against ``runlog server start``, on both backends: the limit reads back as Prefect's, two runs
never overlap, and the second waits in AwaitingConcurrencySlot and runs after the first."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime

import pytest

from ..servers import interrupt_group, runlog_server, server_env, wait_for_deployment
from .test_prefect_client import PREFECT_PYTHON, ROOT, Runlog

pytestmark = pytest.mark.slow


@pytest.fixture
def quick_slots(store_url, tmp_path):
    """A server whose AwaitingConcurrencySlot wait is 2 s instead of 30 s."""
    env = server_env(tmp_path, store_url, RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS="2")
    with runlog_server(env, tmp_path / "server.log") as running:
        client_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))} | {
            "PREFECT_API_URL": running.url, "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }
        server = Runlog(running.url, client_env)
        try:
            yield server
        finally:
            server.http.close()
        assert running.stop() == 0, running.output()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_two_runs_of_a_deployment_limited_to_one_never_overlap(quick_slots, tmp_path):
    runlog = quick_slots
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below, after the process
    serving = subprocess.Popen(
        [PREFECT_PYTHON, "-m", "tests.compat.limited_scripts", "serve"], cwd=ROOT, env=runlog.env,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        found = wait_for_deployment(runlog, "limited", serving, tmp_path / "serve.log")
        (deployment,) = found
        assert deployment["global_concurrency_limit"]["limit"] == 1
        assert deployment["concurrency_options"] is None and deployment["concurrency_limit"] is None

        run_ids = [runlog.post(f"/deployments/{deployment['id']}/create_flow_run", {})["id"] for _ in range(2)]
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            runs = [runlog.get(f"/flow_runs/{run_id}") for run_id in run_ids]
            if all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs):
                break
            time.sleep(0.5)
        log.flush()
        assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], (
            [r["state"] for r in runs], (tmp_path / "serve.log").read_text()
        )
        first, second = sorted(runs, key=lambda r: _at(r["start_time"]))
        assert _at(second["start_time"]) >= _at(first["end_time"]), (first, second)
        waited = [
            [s["name"] for s in runlog.get(f"/flow_run_states/?flow_run_id={r['id']}")] for r in runs
        ]
        assert any("AwaitingConcurrencySlot" in names for names in waited), waited
        limit = runlog.get(f"/v2/concurrency_limits/deployment:{deployment['id']}")
        assert limit["active_slots"] == 0
    finally:
        interrupt_group(serving)
        log.close()
