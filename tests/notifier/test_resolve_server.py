"""A resolve across server restarts, on both backends: ``runlog server start`` as a process
(PagerDuty pointed at a stand-in on 127.0.0.1), the channel and the rule made with the CLI over
HTTP. A tagged run fails and PagerDuty is paged; the server is killed (SIGKILL); the run then
completes on a server whose notifier is off; a third server, the notifier on again, resolves the
alert under its dedup_key, once: what it resolves it found in the log, no process remembered it."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from ..api import isolate_runlog_env
from ..api.cli_runner import run_cli
from ..servers import server_env, start_runlog, stop_quietly, until
from .receiver import receiver

pytestmark = pytest.mark.slow

ACCEPTED = (202, {"Content-Type": "application/json"}, b'{"status": "success", "message": "Event processed"}')


async def set_state(api: httpx.AsyncClient, run_id: str, state: dict, *, force: bool = False) -> None:
    answer = await api.post(f"/flow_runs/{run_id}/set_state", json={"state": state, "force": force})
    assert answer.status_code in (200, 201) and answer.json()["status"] == "ACCEPT", answer.text


async def test_a_run_completing_while_the_notifier_is_down_is_resolved_after_the_restart(
    tmp_path: Path, store_url: str, monkeypatch,
):
    isolate_runlog_env(monkeypatch, tmp_path)
    async with receiver() as pagerduty:
        pagerduty.default = ACCEPTED
        env = server_env(tmp_path, store_url, RUNLOG_NOTIFIER_BASE_URLS=f"pagerduty={pagerduty.url}")

        first = await asyncio.to_thread(start_runlog, env, tmp_path / "first.log")
        try:
            cli_env = {"RUNLOG_API_URL": first.url}
            for command in (
                ("channel", "create", "pagerduty", "oncall", "--integration-key", "R0UTING", "--api-key", "KEY"),
                ("notification", "create", "--state", "Failed", "--tag", "daily-etl", "--channel", "oncall",
                 "--resolve-on-completed"),
            ):
                done = await asyncio.to_thread(run_cli, *command, env=cli_env)
                assert done.exit_code == 0, done.output
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as api:
                flow = (await api.post("/flows/", json={"name": "etl"})).json()
                made = await api.post("/flow_runs/", json={"flow_id": flow["id"], "name": "flaky", "tags": ["daily-etl"]})
                run_id = made.json()["id"]
                await set_state(api, run_id, {"type": "RUNNING"})
                await set_state(api, run_id, {"type": "FAILED", "name": "Failed", "message": "boom"})
                await until(lambda: len(pagerduty.seen) == 1, what="the alert")

                async def recorded() -> bool:
                    found = (await api.get("/runlog/deliveries")).json()
                    return [d["status"] for d in found] == ["sent"]

                # Killed only once the send is recorded: killed between the two, the alert
                # would be sent again after the restart (the one documented duplicate).
                await until(recorded, what="the alert recorded as sent")
        finally:
            stop_quietly(first, signum=signal.SIGKILL)

        quiet = await asyncio.to_thread(start_runlog, env | {"RUNLOG_NOTIFIER_ENABLED": "false"}, tmp_path / "quiet.log")
        try:
            async with httpx.AsyncClient(base_url=quiet.url, timeout=30) as api:
                await set_state(api, run_id, {"type": "RUNNING"}, force=True)
                await set_state(api, run_id, {"type": "COMPLETED"})
        finally:
            stop_quietly(quiet)
        assert len(pagerduty.seen) == 1, "no notifier ran while the run completed"

        last = await asyncio.to_thread(start_runlog, env, tmp_path / "last.log")
        try:
            await until(lambda: len(pagerduty.seen) == 2, what="the resolve")
            async with httpx.AsyncClient(base_url=last.url, timeout=30) as api:
                async def all_sent() -> bool:
                    found = (await api.get("/runlog/deliveries")).json()
                    return len(found) == 2 and all(d["status"] == "sent" for d in found)

                await until(all_sent, what="both deliveries recorded as sent")
            await asyncio.sleep(1.0)  # a second resolve, were one to come, would have come by now
        finally:
            stop_quietly(last)

    assert [seen.json()["event_action"] for seen in pagerduty.seen] == ["trigger", "resolve"]
    trigger, resolve = (seen.json() for seen in pagerduty.seen)
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "R0UTING"
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]
    assert len(pagerduty.seen) == 2
