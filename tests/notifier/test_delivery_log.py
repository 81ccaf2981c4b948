"""The delivery log over HTTP (/api/runlog/deliveries) and the CLI, on both backends, and the
dispatcher inside the server: woken by a replay, off with RUNLOG_NOTIFIER_ENABLED=false."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from runlog.api import keys
from runlog.api.notifier import NotifierParts
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.webhook import JsonWebhookSender
from runlog.projections import deliveries as model

from ..api import isolate_runlog_env
from ..api.cli_runner import run_cli
from ..servers import serve, until
from .conftest import Channels, one_round, schedule
from .receivers import receiver, status


@pytest.fixture
def env(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    # The tests drive a dispatcher of their own over channels that are no block documents: the
    # server's own notifier would race it and dead-letter them ("the channel no longer exists").
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url,
            "RUNLOG_NOTIFIER_ENABLED": "false"}


async def seeded(server, clock, hooks) -> dict[str, object]:
    """Three deliveries, driven by a dispatcher of the test's own: one sent, one dead, one retrying."""
    store = server.app[keys.STORE]
    channels = Channels()
    ok, refusing, failing = (channels.add(h.url) for h in hooks)
    rule = uuid.uuid4()
    sent = await schedule(store, clock, ok, rule_id=rule, body="run brisk-otter failed")
    clock.advance(1)
    dead = await schedule(store, clock, refusing)
    clock.advance(1)
    retrying = await schedule(store, clock, failing)
    dispatcher = Dispatcher(store, JsonWebhookSender(timeout=5), channels, clock=clock, draw=lambda: 1.0)
    try:
        await one_round(dispatcher, clock)
    finally:
        await dispatcher.aclose()
    return {"sent": sent, "dead": dead, "retrying": retrying, "rule": rule, "channel": ok}


async def test_the_delivery_log_lists_filters_and_shows_attempts(env, clock):
    async with (receiver() as ok, receiver(lambda _r: status(422, "bad payload")) as refusing,
                receiver(lambda _r: status(500)) as failing, serve(env, clock=clock) as server):
        made = await seeded(server, clock, (ok, refusing, failing))
        code, listed = await server.request("GET", "/runlog/deliveries")
        assert code == 200
        assert [d["id"] for d in listed] == [str(made[k].id) for k in ("retrying", "dead", "sent")]  # newest first
        assert [d["status"] for d in listed] == ["retrying", "dead", "sent"]
        assert [d["last_status_code"] for d in listed] == [500, 422, 200]

        _, dead = await server.request("GET", "/runlog/deliveries?status=dead")
        assert [d["id"] for d in dead] == [str(made["dead"].id)]
        assert dead[0]["dead_reason"] == "HTTP 422: bad payload"
        _, by_rule = await server.request("GET", f"/runlog/deliveries?rule={made['rule']}")
        _, by_name = await server.request("GET", "/runlog/deliveries?rule=daily-etl%20failures&limit=1&offset=2")
        _, by_channel = await server.request("GET", f"/runlog/deliveries?channel={made['channel']}")
        assert [d["id"] for d in by_rule] == [d["id"] for d in by_channel] == [str(made["sent"].id)]
        assert [d["id"] for d in by_name] == [str(made["sent"].id)]

        code, one = await server.request("GET", f"/runlog/deliveries/{made['sent'].id}")
        assert code == 200
        assert one["body"] == "run brisk-otter failed" and one["status"] == "sent"
        (attempt,) = one["attempt_log"]
        assert attempt["status_code"] == 200 and attempt["outcome"] == "sent" and attempt["excerpt"] == "ok"
        assert attempt["duration_ms"] == 0  # the manual clock stood still during the send

        for path in ("/runlog/deliveries?status=lost", "/runlog/deliveries?limit=0", "/runlog/deliveries?channel=x",
                     "/runlog/deliveries/not-an-id"):
            assert (await server.request("GET", path))[0] == 422, path
        assert (await server.request("GET", f"/runlog/deliveries/{uuid.uuid4()}"))[0] == 404


async def test_retry_replays_dead_letters_and_refuses_what_was_sent(env, clock):
    async with (receiver() as ok, receiver(lambda _r: status(422)) as refusing, receiver(lambda _r: status(500)) as failing,
                serve(env, clock=clock) as server):
        made = await seeded(server, clock, (ok, refusing, failing))
        code, again = await server.request("POST", f"/runlog/deliveries/{made['dead'].id}/retry")
        assert code == 200 and again["status"] == "pending" and again["dead_reason"] is None
        code, body = await server.request("POST", f"/runlog/deliveries/{made['sent'].id}/retry")
        assert code == 409 and "was sent" in body["detail"]
        assert (await server.request("POST", f"/runlog/deliveries/{uuid.uuid4()}/retry"))[0] == 404
        code, retrying = await server.request("POST", f"/runlog/deliveries/{made['retrying'].id}/retry")
        assert code == 200 and retrying["next_attempt_at"] == clock().isoformat().replace("+00:00", "Z")


async def test_the_cli_lists_and_retries_deliveries(env, clock):
    async with receiver() as ok, receiver(lambda _r: status(400)) as refusing, receiver(lambda _r: status(500)) as failing:
        async with serve(env, clock=clock) as server:
            made = await seeded(server, clock, (ok, refusing, failing))
        listed = await asyncio.to_thread(run_cli, "notification", "deliveries", "--wide")
        assert listed.exit_code == 0, listed.output
        assert "Ephemeral mode" in listed.stderr
        for key in ("sent", "dead", "retrying"):
            assert str(made[key].id) in listed.stdout
        dead = await asyncio.to_thread(run_cli, "notification", "deliveries", "--status", "dead", "--wide")
        assert str(made["dead"].id) in dead.stdout and str(made["sent"].id) not in dead.stdout
        named = await asyncio.to_thread(run_cli, "notification", "deliveries", "--rule", str(made["rule"]), "-o", "json")
        assert [d["id"] for d in __import__("json").loads(named.stdout)] == [str(made["sent"].id)]
        shown = await asyncio.to_thread(run_cli, "notification", "deliveries", "show", str(made["dead"].id))
        assert shown.exit_code == 0 and "HTTP 400" in shown.stdout and "permanent" in shown.stdout

        retried = await asyncio.to_thread(run_cli, "notification", "deliveries", "retry", "--dead")
        assert retried.exit_code == 0 and "Retrying 1 dead letter." in retried.stdout
        again = await asyncio.to_thread(run_cli, "notification", "deliveries", "retry", str(made["sent"].id))
        assert again.exit_code == 1 and "was sent" in again.stderr
        neither = await asyncio.to_thread(run_cli, "notification", "deliveries", "retry")
        assert neither.exit_code == 1 and "give a delivery id or --dead" in neither.stderr
        async with serve(env, clock=clock) as server:
            view = await server.request("GET", f"/runlog/deliveries/{made['dead'].id}")
        assert view[1]["status"] == "pending"


async def test_the_server_sends_at_once_when_woken_and_not_when_disabled(env, clock):
    channels = Channels()
    parts = NotifierParts(sender=JsonWebhookSender(timeout=5), loader=lambda _store: channels)
    sending_ok = False
    async with receiver(lambda _r: None if sending_ok else status(400)) as hook:
        channel = channels.add(hook.url)
        async with serve(env | {"RUNLOG_NOTIFIER_ENABLED": "false"}, clock=clock, notifier=parts) as server:
            assert server.app[keys.DISPATCHER] is None
        async with serve(env | {"RUNLOG_NOTIFIER_ENABLED": "true"}, clock=clock, notifier=parts) as server:
            dispatcher = server.app[keys.DISPATCHER]
            assert dispatcher is not None and dispatcher.policy.max_age.total_seconds() == 24 * 3600
            view = await schedule(server.app[keys.STORE], clock, channel)
            dispatcher.wake()
            await until(lambda: _status(server, view.id, "dead"), what="the refused delivery dead-lettered")
            sending_ok = True
            code, _ = await server.request("POST", f"/runlog/deliveries/{view.id}/retry")  # wakes the dispatcher
            assert code == 200
            await until(lambda: _status(server, view.id, "sent"), what="the replayed delivery sent")
    assert hook.delivery_ids == [str(view.id)] * 2


async def _status(server, delivery_id, wanted: str) -> bool:
    _, found = await server.request("GET", f"/runlog/deliveries/{delivery_id}")
    return found["status"] == wanted


def test_ephemeral_commands_never_send(env):
    from runlog.api.app import create_app
    from runlog.api.settings import load_settings

    app = create_app(load_settings(env=env), standing=False,
                     notifier=NotifierParts(sender=JsonWebhookSender(), loader=lambda _store: Channels()))
    assert app[keys.NOTIFIER] is None
    assert model.STATUSES == ("pending", "retrying", "sent", "dead")
