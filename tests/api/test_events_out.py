"""The /events/out websocket over a real socket: Prefect's handshake, a filtered backfill, then live events."""

from __future__ import annotations

import json

import aiohttp
import pytest

from runlog.commands.clock import ManualClock

from ..servers import serve
from .test_events_feed import START, failing_run, feed_holds


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


async def receive_event(ws) -> dict:
    message = await ws.receive(timeout=60)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    body = json.loads(message.data)
    assert body["type"] == "event"
    return body["event"]


async def open_out(server, flt: dict | None, **extra):  # type: ignore[no-untyped-def]
    ws = await server.session.ws_connect(server.base + "/events/out", protocols=("prefect",))
    await ws.send_json({"type": "auth", "token": None})
    assert (await ws.receive_json(timeout=60)) == {"type": "auth_success"}
    await ws.send_json({"type": "filter", "filter": flt, **extra})
    return ws


async def test_backfill_then_live_events_both_filtered(env):
    clock = ManualClock(START)
    async with serve(env, clock=clock) as server:
        first, _ = await failing_run(server, clock)
        await feed_holds(server, 3)
        flt = {"event": {"prefix": ["prefect.flow-run."]}, "related": {"id": ["prefect.tag.daily-etl"]}}
        ws = await open_out(server, flt)
        try:
            backfill = [await receive_event(ws) for _ in range(3)]
            assert [e["event"] for e in backfill] == [
                "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Failed"]  # oldest first
            assert {e["resource"]["prefect.resource.id"] for e in backfill} == {f"prefect.flow-run.{first}"}
            second, _ = await failing_run(server, clock, flow="second")
            await failing_run(server, clock, flow="untagged", run_tags=())
            last, _ = await failing_run(server, clock, flow="last")
            live = [await receive_event(ws) for _ in range(4)]
            # The untagged run's events come between these in the log, and were left out.
            assert [e["resource"]["prefect.resource.id"] for e in live] == [f"prefect.flow-run.{second}"] * 3 + [
                f"prefect.flow-run.{last}"]
            assert live[2]["event"] == "prefect.flow-run.Failed" and live[2]["payload"]["intended"]["to"] == "FAILED"
        finally:
            await ws.close()


async def test_no_backfill_when_not_asked_and_a_bad_second_message_closes(env):
    clock = ManualClock(START)
    async with serve(env, clock=clock) as server:
        await failing_run(server, clock)
        await feed_holds(server, 3)
        ws = await open_out(server, {}, backfill=False)
        try:
            later, _ = await failing_run(server, clock, flow="later")
            event = await receive_event(ws)
            assert event["event"] == "prefect.flow-run.Pending"
            assert event["resource"]["prefect.resource.id"] == f"prefect.flow-run.{later}"
        finally:
            await ws.close()
        ws = await server.session.ws_connect(server.base + "/events/out", protocols=("prefect",))
        await ws.send_json({"type": "auth", "token": None})
        await ws.receive_json(timeout=60)
        await ws.send_json({"type": "subscribe"})
        message = await ws.receive(timeout=60)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1002
        assert message.extra == "Expected 'filter' message"
        await ws.close()
