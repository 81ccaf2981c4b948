"""The stock Prefect 3.8 client and CLI, run against ``runlog server start`` on both backends."""

from __future__ import annotations

import asyncio
import subprocess

import httpx
import pytest

from ..api.test_orphans import UNKNOWN, store_orphans
from ..servers import PREFECT_PYTHON, ROOT, run_flow, prefect_client_env, runlog_server, server_env

pytestmark = pytest.mark.slow


class Runlog:
    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url  # http://127.0.0.1:PORT/api
        self.env = env  # what a Prefect client process needs to reach this server
        self.http = httpx.Client(base_url=url, timeout=30)

    def get(self, path: str):
        response = self.http.get(path)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: object):
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def run_flow(self, scenario: str) -> dict:
        return run_flow(self.env, scenario)

    def prefect(self, *args: str) -> str:
        done = subprocess.run(
            [PREFECT_PYTHON, "-m", "prefect", *args], cwd=ROOT, env={**self.env, "COLUMNS": "200"},
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout


@pytest.fixture
def runlog(store_url, tmp_path):
    with runlog_server(server_env(tmp_path, store_url), tmp_path / "server.log") as running:
        client_env = prefect_client_env(running.url, tmp_path / "prefect")
        server = Runlog(running.url, client_env)
        try:
            yield server
        finally:
            server.http.close()
        assert running.stop() == 0, running.output()


def task_runs_of(runlog: Runlog, flow_run_id: str) -> list[dict]:
    return runlog.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC"})


def test_a_flow_with_a_retried_task_completes_with_histories_and_logs(runlog):
    outcome = runlog.run_flow("two_tasks")
    assert outcome["state"] == "COMPLETED" and outcome["result"] == 8
    run = runlog.get(f"/flow_runs/{outcome['flow_run_id']}")
    assert run["state_type"] == "COMPLETED" and run["run_count"] == 1
    tasks = {t["name"].split("-")[0]: t for t in task_runs_of(runlog, run["id"])}
    assert set(tasks) == {"ok_task", "flaky_task"}
    assert all(t["state_type"] == "COMPLETED" for t in tasks.values())
    flaky_history = [s["name"] for s in runlog.get(f"/task_run_states/?task_run_id={tasks['flaky_task']['id']}")]
    assert flaky_history[:2] == ["Pending", "Running"] and "AwaitingRetry" in flaky_history
    assert flaky_history[-1] == "Completed" and tasks["flaky_task"]["run_count"] == 2
    history = [s["type"] for s in runlog.get(f"/flow_run_states/?flow_run_id={run['id']}")]
    assert history == ["PENDING", "RUNNING", "COMPLETED"]
    messages = [log["message"] for log in runlog.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})]
    assert "flow starting with n=3" in messages and "flaky attempt 2" in messages


def test_a_failing_flow_with_one_retry_ends_failed_after_two_runs(runlog):
    outcome = runlog.run_flow("failing")
    assert outcome["state"] == "FAILED"
    run = runlog.get(f"/flow_runs/{outcome['flow_run_id']}")
    assert run["state_type"] == "FAILED" and run["run_count"] == 2
    names = [s["name"] for s in runlog.get(f"/flow_run_states/?flow_run_id={run['id']}")]
    assert "AwaitingRetry" in names and names[-1] == "Failed"


def test_a_subflow_points_at_its_parent_task_run(runlog):
    outcome = runlog.run_flow("parent")
    assert outcome["state"] == "COMPLETED" and outcome["result"] == 40
    children = runlog.post("/flow_runs/filter", {"flow_runs": {"parent_task_run_id": {"is_null_": False}}})
    assert len(children) == 1
    wrapper = runlog.get(f"/task_runs/{children[0]['parent_task_run_id']}")
    assert wrapper["flow_run_id"] == outcome["flow_run_id"]
    assert wrapper["state_type"] == "COMPLETED"


def test_tasks_sharing_a_tag_limit_of_one_run_one_at_a_time(runlog):
    runlog.post("/concurrency_limits/", {"tag": "compat-limited", "concurrency_limit": 1})
    outcome = runlog.run_flow("limited")
    assert outcome["state"] == "COMPLETED" and sorted(outcome["result"]) == [0, 1, 2]
    spans = sorted(
        (t["start_time"], t["end_time"]) for t in task_runs_of(runlog, outcome["flow_run_id"])
    )
    assert len(spans) == 3
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, f"tasks overlapped: {spans}"


def test_prefect_cli_lists_and_inspects_runs(runlog):
    outcome = runlog.run_flow("two_tasks")
    listing = runlog.prefect("flow-run", "ls")
    run = runlog.get(f"/flow_runs/{outcome['flow_run_id']}")
    assert run["name"] in listing and "COMPLETED" in listing
    inspected = runlog.prefect("flow-run", "inspect", outcome["flow_run_id"])
    assert outcome["flow_run_id"] in inspected and run["name"] in inspected


def test_prefect_flow_run_ls_works_with_orphans_stored_and_new_ones_are_refused(runlog, store_url):
    # A database written before runlog checked references may hold a flow run of an unknown
    # flow; `prefect flow-run ls` looks every listed run's flow up and failed with KeyError.
    outcome = runlog.run_flow("two_tasks")
    orphan_id, _task_id = asyncio.run(store_orphans(store_url))
    listing = runlog.prefect("flow-run", "ls")
    assert runlog.get(f"/flow_runs/{outcome['flow_run_id']}")["name"] in listing
    assert str(orphan_id) not in listing
    # New ones are refused as Prefect refuses them.
    refused = runlog.http.post("/flow_runs/", json={"flow_id": UNKNOWN})
    assert refused.status_code == 409 and UNKNOWN in refused.json()["detail"]
