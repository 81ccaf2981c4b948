"""An automation's flow-run action end to end with the stock Prefect 3.8 client against
``runlog server start``, on both backends: a ChangeFlowRunState automation saved with the SDK
moves a failing tagged run back to Scheduled, once, and the feed shows the action executed."""

from __future__ import annotations

import json
import subprocess

import pytest

from .test_notifications import eventually
from .test_prefect_client import PREFECT_PYTHON, ROOT, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow


def test_a_failing_tagged_run_is_sent_back_to_scheduled(runlog):  # noqa: F811
    done = subprocess.run([PREFECT_PYTHON, "-m", "tests.compat.action_client"], cwd=ROOT, env=runlog.env,
                          capture_output=True, text=True, timeout=180)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the action client failed:\n{done.stdout}\n{done.stderr}"
    automation_id = json.loads(lines[-1])["automation_id"]
    assert "retry daily-etl" in runlog.prefect("automation", "ls")

    tagged = runlog.run_flow("tagged_failing")
    assert tagged["state"] == "FAILED"

    def rescheduled() -> bool:
        return runlog.get(f"/flow_runs/{tagged['flow_run_id']}")["state"]["name"] == "AwaitingRetry"

    eventually(rescheduled)
    run = runlog.get(f"/flow_runs/{tagged['flow_run_id']}")
    assert (run["state"]["type"], run["state"]["message"]) == ("SCHEDULED", "retried")

    def executed() -> list:
        answer = runlog.post("/events/filter", {"filter": {"event": {"name": ["prefect.automation.action.executed"]}}})
        return answer["events"]

    eventually(executed)
    [event] = executed()
    assert event["resource"]["prefect.resource.id"] == f"prefect.automation.{automation_id}"
    assert event["payload"]["action_type"] == "change-flow-run-state"


def test_a_run_deployment_automation_makes_a_run_of_the_deployment(runlog):  # noqa: F811
    done = subprocess.run([PREFECT_PYTHON, "-m", "tests.compat.run_deployment_client"], cwd=ROOT, env=runlog.env,
                          capture_output=True, text=True, timeout=180)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the run-deployment client failed:\n{done.stdout}\n{done.stderr}"
    made = json.loads(lines[-1])
    automation = runlog.get(f"/automations/{made['automation_id']}")
    assert automation["actions"][0]["type"] == "run-deployment"
    assert automation["actions"][0]["deployment_id"] == made["deployment_id"]

    tagged = runlog.run_flow("tagged_failing")
    assert tagged["state"] == "FAILED"

    def runs_of_deployment() -> list:
        return runlog.post("/flow_runs/filter", {"deployments": {"id": {"any_": [made["deployment_id"]]}}})

    eventually(runs_of_deployment)
    [run] = runs_of_deployment()
    assert run["parameters"] == {"x": 1, "y": 7} and run["job_variables"] == {"env": {"MODE": "recovery"}}
    assert run["state_type"] == "SCHEDULED"
