"""Artifacts and variables with the stock Prefect 3.8 client and CLI against ``runlog server start``,
on both backends."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .test_prefect_client import ROOT, Runlog, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow


def run_artifact_flow(server: Runlog) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.compat.artifact_flows"],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the artifact flow failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def prefect_fails(server: Runlog, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], cwd=ROOT, env={**server.env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, f"prefect {' '.join(args)} should have failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_a_flow_creating_every_kind_of_artifact_and_using_variables_completes(runlog):  # noqa: F811
    outcome = run_artifact_flow(runlog)
    assert outcome["state"] == "COMPLETED", outcome
    result, run_id = outcome["result"], outcome["flow_run_id"]
    assert result["before"] == {"limit": 10, "tags": ["x"]} and result["refused_without_overwrite"] is True
    assert result["after"] == 42 and result["missing"] == "fallback" and result["doomed_gone"] is True
    assert result["latest_report"] == "# second"

    artifacts = runlog.post("/artifacts/filter", {"sort": "KEY_ASC"})
    by_key: dict[str, list[dict]] = {}
    for artifact in artifacts:
        by_key.setdefault(artifact["key"], []).append(artifact)
    assert sorted(by_key) == ["compat-image", "compat-link", "compat-progress", "compat-report", "compat-table"]
    assert {a["type"] for a in artifacts} >= {"markdown", "table", "progress", "image"}
    assert all(a["flow_run_id"] == run_id for a in artifacts)
    (table,) = by_key["compat-table"]
    assert table["task_run_id"] == result["task_run_id"] and table["type"] == "table"
    assert json.loads(table["data"]) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert by_key["compat-link"][0]["data"] == "[the data](https://example.com/data.csv)"
    assert by_key["compat-image"][0]["data"] == "https://example.com/chart.png"
    (progress,) = by_key["compat-progress"]
    assert progress["id"] == result["progress_id"]
    assert progress["data"] == 100.0 and progress["description"] == "done"  # updated in place
    assert len(by_key["compat-report"]) == 2

    latest = runlog.post("/artifacts/latest/filter", {"artifacts": {"key": {"any_": ["compat-report"]}}})
    assert [c["data"] for c in latest] == ["# second"]
    assert runlog.get("/artifacts/compat-report/latest")["data"] == "# second"
    assert runlog.get("/variables/name/compat_threshold")["value"] == 42
    run = runlog.get(f"/flow_runs/{run_id}")
    assert run["state_type"] == "COMPLETED"


def test_prefect_artifact_ls_inspect_and_delete(runlog):  # noqa: F811
    outcome = run_artifact_flow(runlog)
    listing = runlog.prefect("artifact", "ls")
    for key in ("compat-image", "compat-link", "compat-progress", "compat-report", "compat-table"):
        assert key in listing
    latest_report = runlog.get("/artifacts/compat-report/latest")
    collections = runlog.post("/artifacts/latest/filter", {"artifacts": {"key": {"any_": ["compat-report"]}}})
    assert collections[0]["latest_id"] in listing  # ls shows the latest artifact's id
    assert listing.count("compat-report") == 1
    every = runlog.prefect("artifact", "ls", "--all")
    assert every.count("compat-report") == 2
    inspected = json.loads(runlog.prefect("artifact", "inspect", "compat-report", "--output", "json"))
    assert [a["data"] for a in inspected] == ["# second", "# first"]
    assert all(a["flow_run_id"] == outcome["flow_run_id"] for a in inspected)
    assert latest_report["data"] == inspected[0]["data"]
    assert "Deleted 2 artifact(s) with key 'compat-report'." in runlog.prefect("artifact", "delete", "compat-report")
    assert "compat-report" not in runlog.prefect("artifact", "ls")
    assert "not found" in prefect_fails(runlog, "artifact", "inspect", "compat-report")


def test_prefect_variable_set_get_ls_inspect_and_unset(runlog):  # noqa: F811
    assert "Set variable 'region'." in runlog.prefect("variable", "set", "region", "eu-west", "--tag", "infra")
    assert "Set variable 'limits'." in runlog.prefect("variable", "set", "limits", '{"cpu": 2, "zones": ["a"]}')
    assert runlog.prefect("variable", "get", "limits").strip() == '{"cpu": 2, "zones": ["a"]}'
    assert runlog.prefect("variable", "get", "region").strip() == '"eu-west"'
    assert "already exists" in prefect_fails(runlog, "variable", "set", "region", "us-east")
    runlog.prefect("variable", "set", "region", "us-east", "--overwrite")
    assert runlog.prefect("variable", "get", "region").strip() == '"us-east"'
    listing = runlog.prefect("variable", "ls")
    assert "region" in listing and "limits" in listing and '"us-east"' in listing
    inspected = json.loads(runlog.prefect("variable", "inspect", "limits", "--output", "json"))
    assert inspected["name"] == "limits" and inspected["value"] == {"cpu": 2, "zones": ["a"]}
    assert "Unset variable 'region'." in runlog.prefect("variable", "unset", "region")
    assert "not found" in prefect_fails(runlog, "variable", "get", "region")
    assert "not found" in prefect_fails(runlog, "variable", "unset", "region")
    assert [v["name"] for v in runlog.post("/variables/filter", {})] == ["limits"]
