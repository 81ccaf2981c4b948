"""Automations with the stock Prefect 3.8 client and CLI against ``runlog server start``, on both
backends: ``Automation(...).create()``, read by name, update, and ``prefect automation
ls/inspect/pause/resume/delete``."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from runlog.notifier import rules

from .test_prefect_client import PREFECT_PYTHON, ROOT, Runlog, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow


def create_with_the_sdk(server: Runlog) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.automation_client"],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the automation client failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def test_the_sdk_creates_reads_by_name_and_updates_an_automation(runlog):  # noqa: F811
    seen = create_with_the_sdk(runlog)
    assert seen["name_read_id"] == seen["id"]
    assert seen["expect"] == ["prefect.flow-run.Failed"] and seen["within"] == 0.0 and seen["enabled"] is True
    assert seen["description"] == "updated by the client"
    assert seen["actions"] == ["send-notification", "do-nothing"]
    stored = runlog.get(f"/automations/{seen['id']}")
    assert stored["trigger"]["match_related"] == {"prefect.resource.role": "tag",
                                                  "prefect.resource.id": "prefect.tag.daily-etl"}
    assert stored["actions"][0]["body"] == "{{ flow_run.name }} entered {{ flow_run.state.name }}"


def test_prefect_automation_ls_inspect_pause_resume_delete(runlog):  # noqa: F811
    seen = create_with_the_sdk(runlog)
    assert "compat-etl-failures" in runlog.prefect("automation", "ls")
    [inspected] = json.loads(runlog.prefect("automation", "inspect", "compat-etl-failures", "--output", "json"))
    assert inspected["id"] == seen["id"] and inspected["trigger"]["expect"] == ["prefect.flow-run.Failed"]
    runlog.prefect("automation", "pause", "compat-etl-failures")
    assert runlog.get(f"/automations/{seen['id']}")["enabled"] is False
    runlog.prefect("automation", "resume", "compat-etl-failures")
    assert runlog.get(f"/automations/{seen['id']}")["enabled"] is True
    runlog.prefect("automation", "delete", "compat-etl-failures")
    assert runlog.post("/automations/count", {}) == 0


def test_a_runlog_rule_is_an_automation_the_prefect_cli_reads(runlog):  # noqa: F811
    rule = rules.Rule(name="compat-rule", channel_id=uuid.uuid4(), states=["Failed", "Crashed"], tags=["daily-etl"],
                      flows=["etl"], hold_for=60)
    created = runlog.post("/automations/", rules.definition_of(rule))
    assert "compat-rule" in runlog.prefect("automation", "ls")
    # Prefect prints the body's newlines as they are, which only a lenient parser takes.
    [inspected] = json.loads(runlog.prefect("automation", "inspect", "compat-rule", "--output", "json"), strict=False)
    assert inspected["id"] == created["id"]
    assert inspected["trigger"]["posture"] == "Proactive" and inspected["trigger"]["within"] == 60.0
    assert rules.rule_of(runlog.get(f"/automations/{created['id']}")) == rule


def test_the_resolve_option_survives_the_sdk_reading_and_updating_the_rule(runlog):  # noqa: F811
    rule = rules.Rule(name="compat-resolving", channel_id=uuid.uuid4(), states=["Failed"], resolve_on_completed=True)
    created = runlog.post("/automations/", rules.definition_of(rule))
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.automation_update_client", "compat-resolving"],
        cwd=ROOT, env=runlog.env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the automation client failed:\n{done.stdout}\n{done.stderr}"
    assert json.loads(lines[-1])["tags"] == [rules.RESOLVE_TAG]
    runlog.prefect("automation", "pause", "compat-resolving")
    runlog.prefect("automation", "resume", "compat-resolving")
    stored = runlog.get(f"/automations/{created['id']}")
    assert stored["description"] == "edited with the Prefect SDK"
    read_back = rules.rule_of(stored)
    assert read_back is not None and read_back.resolve_on_completed
