"""The notifier across processes: a server killed with SIGKILL while a delivery is pending sends
it after its restart; two notifier processes on one PostgreSQL never send a delivery twice."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from runlog.commands import deliveries as commands
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections

from ..servers import ROOT, server_env, start_runlog, stop_quietly, until
from .receivers import receiver

PROCESS = [sys.executable, "-m", "tests.notifier.notifier_process"]

pytestmark = pytest.mark.slow


async def schedule(url: str, channel_id: uuid.UUID, count: int = 1) -> list[uuid.UUID]:
    async with open_store(url, projections=inline_projections()) as store:
        return [
            (await commands.schedule(store, rule_id=uuid.uuid4(), channel_id=channel_id, event_id=uuid.uuid4(),
                                     subject="Flow run failed", body=f"run {n} failed"))[0].id
            for n in range(count)
        ]


async def statuses(url: str, ids: list[uuid.UUID]) -> list[str]:
    async with open_store(url, projections=inline_projections()) as store:
        return [(await commands.read(store, i)).status for i in ids]


async def test_a_pending_delivery_is_sent_after_the_server_is_killed(tmp_path: Path, store_url: str):
    async with receiver() as hook:
        hook.stall = asyncio.Event()  # the first request is never answered: the send is under way
        channel = uuid.uuid4()
        (delivery,) = await schedule(store_url, channel)
        env = server_env(tmp_path, store_url, RUNLOG_TEST_CHANNELS=json.dumps({str(channel): hook.url}))
        log = tmp_path / "server.log"
        running = await asyncio.to_thread(start_runlog, env, log, command=PROCESS)
        try:
            await until(lambda: hook.requests, what="the server's first send")
            running.proc.send_signal(signal.SIGKILL)
            assert await asyncio.to_thread(running.wait) == -signal.SIGKILL
        finally:
            stop_quietly(running)
        assert await statuses(store_url, [delivery]) == ["pending"]

        stalled, hook.stall = hook.stall, None
        stalled.set()
        restarted = await asyncio.to_thread(start_runlog, env, log, command=PROCESS)
        try:
            await until(lambda: _status_over_http(restarted.url, delivery, "sent"), what="the delivery sent")
        finally:
            await asyncio.to_thread(restarted.stop)
    assert hook.delivery_ids == [str(delivery), str(delivery)]


async def _status_over_http(api: str, delivery: uuid.UUID, wanted: str) -> bool:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{api}/runlog/deliveries/{delivery}")
    return answer.json()["status"] == wanted


def _notifier(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([*PROCESS, "notifier", "start"], cwd=ROOT, env=env, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)


@pytest.mark.postgres
async def test_two_notifier_processes_never_send_one_delivery_twice(tmp_path: Path, pg_url: str):
    async with receiver() as hook:
        channel = uuid.uuid4()
        env = server_env(tmp_path, pg_url, RUNLOG_LOGGING_LEVEL="INFO",
                         RUNLOG_TEST_CHANNELS=json.dumps({str(channel): hook.url}))
        await schedule(pg_url, channel, 0)  # the schema, before two processes race to migrate it
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        first = _notifier(env, logs[0])
        procs = [first]
        try:
            await until(lambda: "service_leading" in logs[0].read_text(), what="the first notifier leading")
            procs.append(_notifier(env, logs[1]))
            await until(lambda: "service_following" in logs[1].read_text(), what="the second notifier following")
            ids = []
            for _ in range(10):
                ids += await schedule(pg_url, channel, 3)
            await until(lambda: len(hook.requests) >= 15, what="half the deliveries sent")
            first.send_signal(signal.SIGTERM)  # the leader stops; the other takes over at its next round
            assert await asyncio.to_thread(first.wait, 60) == 0, logs[0].read_text()
            for _ in range(5):
                ids += await schedule(pg_url, channel, 3)
            await until(lambda: _all_sent(pg_url, ids), what="every delivery sent", timeout=120)
            assert "service_leading" in logs[1].read_text()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
    assert sorted(hook.delivery_ids) == sorted(str(i) for i in ids), "each delivery was sent exactly once"


async def _all_sent(url: str, ids: list[uuid.UUID]) -> bool:
    return set(await statuses(url, ids)) == {"sent"}
