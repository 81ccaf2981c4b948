"""The README's "Slack alert in three commands", exactly as written, on both backends:
``runlog server start`` as a process (its Slack requests pointed at a stand-in on 127.0.0.1 by
RUNLOG_NOTIFIER_BASE_URLS), ``runlog channel create slack ops --url ...`` and ``runlog
notification create --state Failed --state Crashed --tag daily-etl --channel ops`` against it;
a failing run tagged daily-etl then reaches Slack exactly once, naming the run, and an untagged
failing run does not."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from ..api import isolate_runlog_env
from ..api.cli_runner import run_cli
from ..servers import server_env, start_runlog, stop_quietly, until
from .receiver import receiver

pytestmark = pytest.mark.slow

WEBHOOK = "https://hooks.slack.com/services/T000/B000/XXXX"


async def failed_run(api: httpx.AsyncClient, flow_id: str, name: str, tags: list[str]) -> str:
    made = await api.post("/flow_runs/", json={"flow_id": flow_id, "name": name, "tags": tags})
    assert made.status_code == 201, made.text
    run_id = made.json()["id"]
    for state in ({"type": "RUNNING"}, {"type": "FAILED", "name": "Failed", "message": "boom"}):
        answer = await api.post(f"/flow_runs/{run_id}/set_state", json={"state": state})
        assert answer.status_code in (200, 201) and answer.json()["status"] == "ACCEPT", answer.text
    return run_id


async def test_a_slack_alert_in_three_commands(tmp_path: Path, store_url: str, monkeypatch):
    isolate_runlog_env(monkeypatch, tmp_path)
    async with receiver() as slack:
        env = server_env(tmp_path, store_url, RUNLOG_NOTIFIER_BASE_URLS=f"slack={slack.url}")
        running = await asyncio.to_thread(start_runlog, env, tmp_path / "server.log")  # 1. runlog server start
        try:
            cli_env = {"RUNLOG_API_URL": running.url}
            for command in (
                ("channel", "create", "slack", "ops", "--url", WEBHOOK),  # 2.
                ("notification", "create", "--state", "Failed", "--state", "Crashed", "--tag", "daily-etl",
                 "--channel", "ops"),  # 3.
            ):
                done = await asyncio.to_thread(run_cli, *command, env=cli_env)
                assert done.exit_code == 0, done.output

            async with httpx.AsyncClient(base_url=running.url, timeout=30) as api:
                flow = (await api.post("/flows/", json={"name": "etl"})).json()
                # The untagged failure goes first: one channel sends in log order, so had it
                # matched, its request would come before the tagged run's.
                await failed_run(api, flow["id"], "quiet-otter", [])
                tagged = await failed_run(api, flow["id"], "brave-fox", ["daily-etl"])

                async def sent() -> bool:
                    deliveries = (await api.get("/runlog/deliveries")).json()
                    return bool(deliveries) and all(d["status"] == "sent" for d in deliveries)

                await until(sent, what="the alert delivered")
                [delivery] = (await api.get("/runlog/deliveries")).json()
            health = await asyncio.to_thread(run_cli, "channel", "ls", "-o", "json", env=cli_env)
        finally:
            stop_quietly(running)

    [request] = slack.seen
    assert request.method == "POST" and request.path == "/services/T000/B000/XXXX"
    assert request.headers["Content-Type"].startswith("application/json")
    [attachment] = request.json()["attachments"]
    assert attachment["title"] == "Prefect flow run notification"
    assert attachment["text"].startswith("Flow run etl/brave-fox entered state `Failed` at ")
    assert tagged in attachment["text"] and "boom" in attachment["text"]
    # Started with --port 0 and no RUNLOG_UI_URL: the run's link names the port it listened on.
    assert f"http://127.0.0.1:{running.port}/runs/flow-run/{tagged}" in attachment["text"]
    assert delivery["flow_run_id"] == tagged and delivery["last_status_code"] == 200
    assert '"status": "ok"' in health.stdout  # the channel's health after the delivery was sent
