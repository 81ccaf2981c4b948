"""pause_flow_run(wait_for_input=...) and resume_flow_run(run_input=...) with the stock Prefect
3.8 client against ``runlog server start``, on both backends.

suspend_flow_run needs a deployment (the client refuses to suspend a run without one): it is
driven in a run of a deployment served by ``flow.serve()`` in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ..servers import interrupt_group
from .test_prefect_client import ROOT, Runlog, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow

RESUME = """
import sys, uuid
from prefect.flow_runs import resume_flow_run
resume_flow_run(uuid.UUID(sys.argv[1]), run_input={"approver": "ada", "amount": 42})
"""

RESUME_BAD = """
import sys, uuid
from prefect.flow_runs import resume_flow_run
try:
    resume_flow_run(uuid.UUID(sys.argv[1]), run_input={"approver": "ada", "amount": "lots"})
except RuntimeError as exc:
    print("refused:", exc)
"""


def paused_runs(server: Runlog) -> list[dict]:
    return server.post("/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}})


def test_a_flow_paused_for_input_resumes_with_the_input_the_client_sends(runlog):  # noqa: F811
    flow = subprocess.Popen(
        [sys.executable, "-m", "tests.compat.input_flows"], cwd=ROOT, env=runlog.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not paused_runs(runlog):
            assert flow.poll() is None, f"the flow ended before pausing:\n{flow.communicate()}"
            assert time.monotonic() < deadline, "the flow never paused"
            time.sleep(0.2)
        (run,) = paused_runs(runlog)
        keyset = run["state"]["state_details"]["run_input_keyset"]
        assert set(keyset) == {"description", "response", "schema"}
        # The flow stores its input's schema just after pausing.
        while True:
            schema = runlog.post(f"/flow_runs/{run['id']}/input/filter", {"prefix": keyset["schema"], "limit": 1})
            if schema:
                break
            assert time.monotonic() < deadline, "the flow never stored its input schema"
            time.sleep(0.2)
        assert json.loads(schema[0]["value"])["required"] == ["approver", "amount"]

        bad = subprocess.run([sys.executable, "-c", RESUME_BAD, run["id"]], cwd=ROOT, env=runlog.env,
                             capture_output=True, text=True, timeout=120)
        assert "refused: Cannot resume this run: Reason: Validation failed for field 'amount'" in bad.stdout, bad
        assert runlog.get(f"/flow_runs/{run['id']}")["state_type"] == "PAUSED"

        good = subprocess.run([sys.executable, "-c", RESUME, run["id"]], cwd=ROOT, env=runlog.env,
                              capture_output=True, text=True, timeout=120)
        assert good.returncode == 0, good
        out, err = flow.communicate(timeout=120)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert flow.returncode == 0 and lines, f"the flow failed:\n{out}\n{err}"
    outcome = json.loads(lines[-1])
    assert outcome == {"flow_run_id": run["id"], "state": "COMPLETED", "result": {"approver": "ada", "amount": 42}}
    stored = runlog.post(f"/flow_runs/{run['id']}/input/filter", {"prefix": keyset["response"], "limit": 1})
    assert json.loads(stored[0]["value"]) == {"approver": "ada", "amount": 42}


def test_a_deployment_run_suspended_for_input_ends_suspended_and_resumes_with_it(runlog, tmp_path):  # noqa: F811
    """suspend_flow_run in a run of a deployment served by flow.serve(): the run ends PAUSED
    "Suspended" with its process gone, is resumed with input (Scheduled "Resuming"), and the
    runner runs it again to completion with that input."""
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below, after the process
    serving = subprocess.Popen(
        [sys.executable, "-m", "tests.compat.suspend_flows", "serve"], cwd=ROOT,
        env={**runlog.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def wait_for(check, what: str, seconds: float = 120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.5)
        log.flush()
        pytest.fail(f"{what} never happened:\n" + (tmp_path / "serve.log").read_text())

    try:
        (deployment,) = wait_for(
            lambda: runlog.post("/deployments/filter", {"deployments": {"name": {"any_": ["suspends"]}}}),
            "flow.serve() creating its deployment",
        )
        run_id = runlog.post(f"/deployments/{deployment['id']}/create_flow_run", {})["id"]
        wait_for(lambda: runlog.get(f"/flow_runs/{run_id}")["state"]["name"] == "Suspended", "the run suspending")
        run = runlog.get(f"/flow_runs/{run_id}")
        assert run["state_type"] == "PAUSED" and run["state"]["state_details"]["pause_reschedule"] is True
        keyset = run["state"]["state_details"]["run_input_keyset"]
        wait_for(lambda: runlog.post(f"/flow_runs/{run_id}/input/filter", {"prefix": keyset["schema"], "limit": 1}),
                 "the input schema being stored")

        good = subprocess.run([sys.executable, "-c", RESUME, run_id], cwd=ROOT, env=runlog.env,
                              capture_output=True, text=True, timeout=120)
        assert good.returncode == 0, good
        names = [s["name"] for s in runlog.get(f"/flow_run_states/?flow_run_id={run_id}")]
        assert "Resuming" in names, names
        wait_for(lambda: runlog.get(f"/flow_runs/{run_id}")["state_type"] in ("COMPLETED", "FAILED", "CRASHED"),
                 "the resumed run ending", seconds=150)
        run = runlog.get(f"/flow_runs/{run_id}")
        assert run["state_type"] == "COMPLETED", (run["state"], (tmp_path / "serve.log").read_text())
        stored = runlog.post(f"/flow_runs/{run_id}/input/filter", {"prefix": keyset["response"], "limit": 1})
        assert json.loads(stored[0]["value"]) == {"approver": "ada", "amount": 42}
        said = wait_for(
            lambda: any("approved by ada for 42" in line["message"] for line in
                        runlog.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}})),
            "the resumed run's log line", seconds=30,
        )
        assert said
    finally:
        interrupt_group(serving)
        log.close()
