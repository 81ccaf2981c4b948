"""Deployments with the stock Prefect 3.8 client, CLI and runner against ``runlog server start``,
on both backends: apply (the upsert), ``prefect deployment ls/inspect``, ``run_deployment``,
the parameter schema enforced, schedules CRUD, and ``flow.serve()`` running a run it is given."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from ..servers import interrupt_group, wait_for_deployment
from .test_prefect_client import PREFECT_PYTHON, ROOT, Runlog, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow


def scenario(server: Runlog, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.deployment_scripts", *args],
        cwd=ROOT, env={**server.env, **(env or {})}, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"scenario {args} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def test_apply_upserts_and_the_cli_lists_and_inspects_it(runlog):  # noqa: F811
    applied = scenario(runlog, "apply")
    assert applied["first"] == applied["second"] == applied["id"]
    assert applied["description"] == "second" and applied["parameters"] == {"x": 1} and applied["tags"] == ["compat"]
    (interval,) = applied["schedules"]
    assert interval["interval"] == 3600.0
    assert applied["enforce"] is True and applied["schema_required"] == ["x"]

    listed = runlog.prefect("deployment", "ls")
    assert "compat-served/applied" in listed and applied["id"] in listed
    inspected = runlog.prefect("deployment", "inspect", "compat-served/applied")
    assert applied["id"] in inspected and "'description': 'second'" in inspected


def test_run_deployment_creates_a_scheduled_run_with_merged_parameters(runlog):  # noqa: F811
    scenario(runlog, "apply")
    created = scenario(runlog, "run", "compat-served/applied")
    assert created["parameters"] == {"x": 21} and created["state"] == "SCHEDULED"
    assert created["tags"] == ["adhoc", "compat"]
    run = runlog.get(f"/flow_runs/{created['id']}")
    assert run["deployment_id"] == created["deployment_id"] and run["deployment_version"] == "1"

    said = runlog.prefect("deployment", "run", "compat-served/applied", "-p", "x=3")
    assert "Created flow run" in said, said
    runs = runlog.post("/flow_runs/filter", {"deployments": {"id": {"any_": [created["deployment_id"]]}}})
    # The scheduler adds the hourly schedule's runs beside them (auto_scheduled, x=1).
    assert sorted(r["parameters"]["x"] for r in runs if not r["auto_scheduled"]) == [3, 21]


def test_an_interval_schedule_gets_its_scheduled_runs_from_the_servers_scheduler(runlog):  # noqa: F811
    seen = scenario(runlog, "scheduled")
    # As Prefect 3.8.8's server: 61 runs cover the hour of a 60 s interval, one per time.
    assert (seen["count"], seen["times"]) == (61, 61), seen
    assert seen["auto_scheduled"] == [True] and seen["states"] == ["SCHEDULED Scheduled"]
    assert seen["parameters"] == [{"x": 5}] and seen["tags"] == [["auto-scheduled", "compat"]]
    # Prefect's scheduler names the schedule as each run's creator
    assert seen["created_by"] == [["SCHEDULE", "IntervalSchedule"]] and seen["without_creator"] == 0
    listed = runlog.prefect("deployment", "ls")
    assert "compat-served/every-minute" in listed and seen["id"] in listed


def test_an_enforced_schema_refuses_a_bad_parameter(runlog):  # noqa: F811
    scenario(runlog, "apply")
    outcome = scenario(runlog, "refused", "compat-served/applied")
    # Prefect 3.8.8's server answers 409 "Error creating flow run: Validation failed ...".
    assert outcome["refused"] is True and outcome["status"] == 409, outcome
    assert "Validation failed for field 'x'" in outcome["error"]


def test_client_create_deployment_and_schedules_crud(runlog):  # noqa: F811
    made = scenario(runlog, "client_create")
    assert made["name"] == "made" and made["work_pool_name"] == "some-pool" and made["work_queue_name"] == "some-queue"
    assert made["job_variables"] == {"env": {"A": "1"}} and made["interval"] == 300.0
    # the queue named did not exist: it was created in the pool, as Prefect's server does
    assert runlog.get("/work_pools/some-pool/queues/some-queue")["id"] == made["work_queue_id"]
    crud = scenario(runlog, "schedules", "compat-client-made/made")
    (updated,) = [s for s in crud["after_update"] if s["id"] == crud["created"]]
    assert updated["active"] is False and updated["cron"] == "0 6 * * *"
    assert crud["created"] not in crud["remaining"] and len(crud["remaining"]) == 1
    assert crud["paused"] is True and crud["resumed"] is False and crud["gone"] is True


def test_flow_serve_runs_a_run_created_by_run_deployment(runlog, tmp_path):  # noqa: F811
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below, after the process
    serving = subprocess.Popen(
        [PREFECT_PYTHON, "-m", "tests.compat.deployment_scripts", "serve"], cwd=ROOT,
        env={**runlog.env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_deployment(runlog, "served", serving, tmp_path / "serve.log")

        created = scenario(runlog, "run", "compat-served/served")
        assert created["parameters"] == {"x": 21}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = runlog.get(f"/flow_runs/{created['id']}")
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(0.5)
        log.flush()
        assert run["state_type"] == "COMPLETED", (run["state"], (tmp_path / "serve.log").read_text())
        assert run["parameters"] == {"x": 21} and run["start_time"] is not None
        # The run's log lines reach the API in batches, possibly just after its final state.
        deadline, said = time.monotonic() + 30, False
        while not said and time.monotonic() < deadline:
            logs = runlog.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [created["id"]]}}})
            said = any("served got x=21 greeting=hello" in line["message"] for line in logs)
            time.sleep(0.5)
        assert said, (tmp_path / "serve.log").read_text()
        # The runner polls its deployment every second: READY, as `prefect deployment inspect` shows.
        inspected = json.loads(runlog.prefect("deployment", "inspect", "compat-served/served", "--output", "json"))
        assert inspected["status"] == "READY" and inspected["last_polled"] is not None
    finally:
        interrupt_group(serving)
        log.close()


def test_parameter_templates_and_the_default_agent_pool_through_the_client(runlog):  # noqa: F811
    """``client.create_deployment`` with a queue and no pool lands in default-agent-pool; the
    deployment's and the run's ``__prefect_kind`` templates are resolved on
    ``create_flow_run_from_deployment``, and a bad one is refused with Prefect's 400."""
    seen = scenario(runlog, "templated")
    assert seen["work_pool_name"] == "default-agent-pool" and seen["work_queue_name"] == "legacy"
    assert seen["run_queue_id"] == seen["work_queue_id"] and seen["run_pool"] == "default-agent-pool"
    assert seen["parameters"] == {"n": [1, 2], "label": "run-42"} and seen["created_by"] is None
    assert seen["bad"]["status"] == 400
    assert seen["bad"]["detail"].startswith("Error hydrating flow run parameters: Invalid JSON: ")
