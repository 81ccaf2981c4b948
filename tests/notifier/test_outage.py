"""The issue's reliability test in real time, on both backends: ``runlog server start`` as a
process on the real clock, a Slack rule made with the CLI, and a receiver on 127.0.0.1 that
is down for at least 20 s (first refusing connections, then answering 500) while several
tagged runs fail; once it is back, every notification arrives, each exactly once.

The server runs with RUNLOG_NOTIFIER_RETRY_BACKOFF=1s and RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF=3s:
with the defaults (5 s, three times longer each time, up to an hour) the retry after a 20 s
outage may come about 45 s after it ended, and the test would mostly wait. Nothing here asserts
on speed: the receiver recovers only once 20 s have passed *and* every delivery has failed at
least once, and the deadlines are generous."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from ..api import isolate_runlog_env
from ..api.cli_runner import run_cli
from ..servers import server_env, start_runlog, stop_quietly, until
from .test_slack_alert import WEBHOOK, failed_run

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 20.0
REFUSING_SECONDS = 10.0
"""The first part of the outage: nothing listens (connections are refused); then 500s."""


class Flaky:
    """A Slack stand-in whose port is bound from the start, refusing connections until it is
    ``listening``, answering 500 until ``recovered``, then ``ok``; it keeps what it accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: a connection is refused
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.recovered = False
        self.failed = 0  # requests answered 500
        self.accepted: list[str] = []  # the texts of the requests answered ok

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self.recovered:
            self.failed += 1
            return web.Response(status=500, text="down")
        self.accepted.append(body["attachments"][0]["text"])
        return web.Response(text="ok")

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self.sock.listen(128)
        await web.SockSite(runner, self.sock).start()
        try:
            yield
        finally:
            await runner.cleanup()


async def test_every_notification_arrives_once_after_a_20_s_receiver_outage(tmp_path: Path, store_url: str,
                                                                              monkeypatch) -> None:
    isolate_runlog_env(monkeypatch, tmp_path)
    slack = Flaky()
    env = server_env(tmp_path, store_url, RUNLOG_NOTIFIER_BASE_URLS=f"slack={slack.url}",
                     RUNLOG_NOTIFIER_RETRY_BACKOFF="1s", RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF="3s")
    with slack.sock:  # closed however the test ends
        running = await asyncio.to_thread(start_runlog, env, tmp_path / "server.log")
        try:
            cli_env = {"RUNLOG_API_URL": running.url}
            for command in (
                ("channel", "create", "slack", "ops", "--url", WEBHOOK),
                ("notification", "create", "--state", "Failed", "--tag", "daily-etl", "--channel", "ops"),
            ):
                done = await asyncio.to_thread(run_cli, *command, env=cli_env)
                assert done.exit_code == 0, done.output

            async with httpx.AsyncClient(base_url=running.url, timeout=30) as api:
                flow = (await api.post("/flows/", json={"name": "etl"})).json()

                async def deliveries() -> list[dict]:
                    return (await api.get("/runlog/deliveries")).json()

                down_since = time.monotonic()
                names: list[str] = []
                runs: dict[str, str] = {}  # run id -> name
                for batch, pause in ((("refused-1", "refused-2"), 5.0), (("refused-3",), REFUSING_SECONDS - 5.0)):
                    for name in batch:
                        runs[await failed_run(api, flow["id"], name, ["daily-etl"])] = name
                        names.append(name)
                    await asyncio.sleep(pause)
                async with slack.listening():  # 10 s in: answering now, with 500s
                    for name in ("answered-500-1", "answered-500-2"):
                        runs[await failed_run(api, flow["id"], name, ["daily-etl"])] = name
                        names.append(name)

                    async def outage_over() -> bool:
                        listed = await deliveries()
                        return (time.monotonic() - down_since >= OUTAGE_SECONDS and len(listed) == len(names)
                                and all(d["attempts"] >= 1 and d["status"] == "retrying" for d in listed))

                    await until(outage_over, timeout=120, interval=0.5,
                                what="20 s passed and every delivery failed once")
                    slack.recovered = True

                    async def all_sent() -> bool:
                        return all(d["status"] == "sent" for d in await deliveries())

                    await until(all_sent, timeout=120, interval=0.5,
                                what="every notification delivered after the outage")
                    await asyncio.sleep(2.0)  # any duplicate send would have come by now (retries are <= 3 s apart)
                    listed = await deliveries()
                    first_answers = {
                        runs[d["flow_run_id"]]: (await api.get(f"/runlog/deliveries/{d['id']}")).json()["attempt_log"][0]
                        for d in listed
                    }
        finally:
            stop_quietly(running)

    arrived = Counter(name for text in slack.accepted for name in names if f"etl/{name} entered" in text)
    assert arrived == Counter({name: 1 for name in names}), slack.accepted
    assert len(slack.accepted) == len(names)
    assert slack.failed >= 1, "the receiver answered 500 at least once during the outage"
    assert len(listed) == len(names)
    assert all(d["status"] == "sent" and d["attempts"] >= 2 and d["last_status_code"] == 200 for d in listed), listed
    # Each was first tried while the receiver was down in the way its name says.
    for name, first in first_answers.items():
        assert first["outcome"] == "retry", first
        assert first["status_code"] == (500 if name.startswith("answered-500") else None), (name, first)
