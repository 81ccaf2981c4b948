"""The history endpoints and the UI's summaries answer as Prefect 3.8.8's own server does: both
servers get the same runs from the stock client (history_loader.py, each step on both at once),
then each endpoint is asked the same question on both and the answers compared: bucket
boundaries, states and counts exactly, time sums within a few seconds (Prefect stamps states
with its own clock, so the two servers' times differ by the milliseconds between paired calls,
and runs still running or late are measured against each server's "now").

Prefect's server is `prefect server start` from this virtual environment (prefect is a test
dependency), on SQLite in its own PREFECT_HOME; runlog runs on each backend in turn. Both have
their late-runs services off, so a past-due Scheduled run is not marked Late by one of them only.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import database_for
from ..servers import PREFECT_PYTHON, ROOT, runlog_server, server_env, unused_port
from .history_loader import BASE

pytestmark = pytest.mark.slow

SLACK = 5.0  # seconds a time sum may differ per run (paired calls, two clocks, Prefect's whole seconds)

PREFECT_SERVICES_OFF = {
    f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false"
    for name in ("LATE_RUNS", "SCHEDULER", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "FOREMAN", "REPOSSESSOR")
}


def _client_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))}


def _start_prefect(workdir: Path, extra: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on a port nothing used a moment ago (it cannot pick one and say
    which), with the settings in ``extra``; its URL once /health answers."""
    port = unused_port()
    env = _client_env() | PREFECT_SERVICES_OFF | {
        "PREFECT_HOME": str(workdir / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING", **(extra or {}),
    }
    with (workdir / "prefect-server.log").open("ab") as log:
        proc = subprocess.Popen(
            [PREFECT_PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            output = (workdir / "prefect-server.log").read_text(errors="replace")
            pytest.fail(f"Prefect's server did not start (exit {proc.poll()}):\n{output[-3000:]}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Pair:
    """The two servers, loaded with the same runs; ``ask`` puts one question to both."""

    def __init__(self, prefect: str, runlog: str, ids: dict[str, Any]) -> None:
        urls = {"prefect": prefect, "runlog": runlog}
        self.http = {name: httpx.Client(base_url=url, timeout=60) for name, url in urls.items()}
        self.ids = ids  # server -> {"flows"|"runs"|"tasks": {name: id}}
        self.names = {
            server: {i: n for kind in known.values() for n, i in kind.items()} for server, known in ids.items()
        }

    def ask(self, path: str, body: Any, *, expect: int = 200) -> dict[str, Any]:
        """Each server's answer, with its ids replaced by the names they were loaded under."""
        answers = {}
        for server, http in self.http.items():
            response = http.post(path, json=body(server) if callable(body) else body)
            assert response.status_code == expect, (server, path, response.status_code, response.text)
            answers[server] = self._named(server, response.json())
        return answers

    def _named(self, server: str, value: Any) -> Any:
        names = self.names[server]
        if isinstance(value, dict):
            return {names.get(k, k): self._named(server, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._named(server, v) for v in value]
        return names.get(value, value) if isinstance(value, str) else value

    def close(self) -> None:
        for http in self.http.values():
            http.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def pair(request, tmp_path_factory) -> Iterator[Pair]:
    workdir = tmp_path_factory.mktemp(f"runlog-{request.param}")
    with database_for(request, workdir) as url:
        env = server_env(workdir, url, RUNLOG_SERVICES_LATE_RUNS_ENABLED="false")
        with runlog_server(env, workdir / "server.log") as running:
            proc, prefect_url = _start_prefect(tmp_path_factory.mktemp(f"prefect-{request.param}"))
            try:
                done = subprocess.run(
                    [PREFECT_PYTHON, "-m", "tests.compat.history_loader", prefect_url, running.url],
                    cwd=ROOT, env=_client_env() | {"PREFECT_HOME": str(workdir / "client")},
                    capture_output=True, text=True, timeout=600,
                )
                lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
                assert done.returncode == 0 and lines, f"loading failed:\n{done.stdout}\n{done.stderr}"
                prefect_ids, runlog_ids = json.loads(lines[-1])["servers"]
                both = Pair(prefect_url, running.url, {"prefect": prefect_ids, "runlog": runlog_ids})
                try:
                    yield both
                finally:
                    both.close()
            finally:
                _stop(proc)


def at(hours: float) -> str:
    return (BASE + timedelta(hours=hours)).isoformat()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _buckets(answer: list[dict[str, Any]]) -> list[tuple[datetime, datetime, dict[tuple[str, str], dict[str, Any]]]]:
    return [
        (moment(b["interval_start"]), moment(b["interval_end"]),
         {(s["state_type"], s["state_name"]): s for s in b["states"]})
        for b in answer
    ]


def assert_same_history(answers: dict[str, Any]) -> None:
    prefect, runlog = _buckets(answers["prefect"]), _buckets(answers["runlog"])
    assert [(s, e, sorted(st)) for s, e, st in runlog] == [(s, e, sorted(st)) for s, e, st in prefect]
    for (_, _, theirs), (_, _, ours) in zip(prefect, runlog, strict=True):
        for key, state in theirs.items():
            mine = ours[key]
            assert mine["count_runs"] == state["count_runs"], key
            for total in ("sum_estimated_run_time", "sum_estimated_lateness"):
                assert mine[total] == pytest.approx(state[total], abs=SLACK * state["count_runs"]), (key, total)


def history(start: float, end: float, interval: float, **filters: Any) -> dict[str, Any]:
    return {"history_start": at(start), "history_end": at(end), "history_interval_seconds": interval, **filters}


@pytest.mark.parametrize("body", [
    history(0, 72, 3600),  # hourly over the three days
    history(0, 72, 86400),  # daily
    history(-1, 60.2, 5400.5),  # an odd interval, the last bucket running past the end
    history(0, 1000, 3600),  # capped at 500 buckets
    history(0, 72, 7200, flow_runs={"tags": {"all_": ["x"]}}),
    history(0, 72, 7200, flows={"name": {"any_": ["report"]}}),
    history(0, 72, 7200, flow_runs={"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}),
    history(0, 72, 7200, deployments={"name": {"any_": ["nothing"]}}),
], ids=["hourly", "daily", "odd-interval", "capped", "by-tag", "by-flow", "by-state", "by-deployment"])
def test_flow_run_history_equals_prefects(pair, body):
    answers = pair.ask("/flow_runs/history", body)
    assert_same_history(answers)
    counted = sum(s["count_runs"] for b in answers["runlog"] for s in b["states"])
    assert counted == 0 if "deployments" in body else counted > 0


def test_task_run_history_equals_prefects(pair):
    # Task runs are placed where they were created: around now, in one bucket either side.
    now = datetime.now(UTC)
    start = (now - timedelta(hours=2)).isoformat()
    for interval in (4 * 3600, 3600):
        body = {"history_start": start, "history_end": (now + timedelta(hours=2)).isoformat(),
                "history_interval_seconds": interval}
        answers = pair.ask("/task_runs/history", body)
        assert_same_history(answers)
        assert sum(s["count_runs"] for b in answers["runlog"] for s in b["states"]) == 19
    assert_same_history(pair.ask("/task_runs/history", {
        "history_start": start, "history_end": (now + timedelta(hours=2)).isoformat(),
        "history_interval_seconds": 4 * 3600, "task_runs": {"name": {"any_": ["run-00-ok", "run-04-bad"]}},
    }))


@pytest.mark.parametrize("body", [
    {"history_start": at(0), "history_end": at(1), "history_interval_seconds": 0.5},
    {"history_start": at(0), "history_end": at(1), "history_interval": 60},
])
def test_history_refusals_equal_prefects(pair, body):
    answers = pair.ask("/flow_runs/history", body, expect=422)
    if "history_interval_seconds" in body:
        assert answers["runlog"] == answers["prefect"]


@pytest.mark.parametrize("body", [
    None, {"flow_runs": {"tags": {"all_": ["x"]}}}, {"flows": {"name": {"any_": ["none"]}}},
])
def test_lateness_equals_prefects(pair, body):
    answers = pair.ask("/flow_runs/lateness", body)
    if answers["prefect"] is None:
        assert answers["runlog"] is None
    else:
        assert answers["runlog"] == pytest.approx(answers["prefect"], abs=SLACK)


def test_the_ui_scatter_equals_prefects(pair):
    answers = pair.ask("/ui/flow_runs/history", {"sort": "EXPECTED_START_TIME_DESC", "limit": 1000})
    assert [p["id"] for p in answers["runlog"]] == [p["id"] for p in answers["prefect"]]
    for theirs, ours in zip(answers["prefect"], answers["runlog"], strict=True):
        assert ours["state_type"] == theirs["state_type"], theirs["id"]
        assert abs((moment(ours["timestamp"]) - moment(theirs["timestamp"])).total_seconds()) < SLACK
        assert ours["duration"] == pytest.approx(theirs["duration"], abs=SLACK)
        assert ours["lateness"] == pytest.approx(theirs["lateness"], abs=SLACK)


def test_ui_task_run_counts_equal_prefects(pair):
    for body in (None, {"task_runs": {"state": {"type": {"any_": ["RUNNING", "FAILED"]}}}},
                 {"flow_runs": {"tags": {"all_": ["x"]}}}):
        answers = pair.ask("/ui/task_runs/count", body)
        assert answers["runlog"] == answers["prefect"]
    now = datetime.now(UTC)
    dashboard = {"task_runs": {"start_time": {"after_": (now - timedelta(hours=1)).isoformat()}}}
    answers = pair.ask("/ui/task_runs/dashboard/counts", dashboard)
    assert answers["runlog"] == answers["prefect"]
    assert sum(b["completed"] + b["failed"] for b in answers["runlog"]) > 0


def test_ui_per_flow_and_per_run_summaries_equal_prefects(pair):
    unknown = "00000000-0000-0000-0000-000000000001"
    flows = lambda server: {"flow_ids": [*pair.ids[server]["flows"].values(), unknown]}  # noqa: E731
    for path in ("/ui/flows/count-deployments", "/ui/flows/next-runs"):
        answers = pair.ask(path, flows)
        assert answers["runlog"] == answers["prefect"], path
    runs = lambda server: {"flow_run_ids": list(pair.ids[server]["runs"].values())}  # noqa: E731
    answers = pair.ask("/ui/flow_runs/count-task-runs", runs)
    assert answers["runlog"] == answers["prefect"]
    assert answers["runlog"]["run-00"] == 3  # its wrapper task is the subflow's
