"""The dispatcher against real receivers on 127.0.0.1, on both backends, with a manual clock:
retries step past their backoffs by moving the clock, never by sleeping."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

from prometheus_client import REGISTRY

from runlog.commands import deliveries as commands
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.webhook import KIND, JsonWebhookSender
from runlog.projections import deliveries as model

from ..servers import until
from .conftest import one_round, schedule
from .receivers import receiver, status


async def read(store, view):
    return await commands.read(store, view.id)


async def test_receiver_down_then_back_every_delivery_arrives(store, clock, channels, dispatcher):
    down = True
    async with receiver(lambda _r: status(500, "upstream down") if down else None) as hook:
        channel = channels.add(hook.url)
        scheduled = [await schedule(store, clock, channel) for _ in range(5)]
        assert await one_round(dispatcher, clock) == 5
        clock.advance(4)
        assert await one_round(dispatcher, clock) == 0, "nothing is due before its backoff ends"
        clock.advance(1)
        assert await one_round(dispatcher, clock) == 5
        down = False
        clock.advance(14)
        assert await one_round(dispatcher, clock) == 0
        clock.advance(1)
        assert await one_round(dispatcher, clock) == 5
        assert await one_round(dispatcher, clock) == 0

    for view in scheduled:
        after = await read(store, view)
        assert after.status == model.SENT
        assert [a.status_code for a in after.attempts] == [500, 500, 200]
        assert after.attempts[0].excerpt == "upstream down"
    assert sorted(hook.delivery_ids) == sorted(str(v.id) for v in scheduled for _ in range(3))


async def test_each_attempt_is_counted_by_channel_kind_and_outcome(store, clock, channels, dispatcher):
    def attempts(outcome: str) -> float:
        return REGISTRY.get_sample_value(
            "runlog_notifier_delivery_attempts_total", {"channel_kind": KIND, "outcome": outcome},
        ) or 0.0

    before = {outcome: attempts(outcome) for outcome in ("retry", "sent")}
    answers = iter([status(500, "upstream down")] * 2)  # the first round's two sends fail
    async with receiver(lambda _r: next(answers, None)) as hook:
        channel = channels.add(hook.url)
        for _ in range(2):
            await schedule(store, clock, channel)
        assert await one_round(dispatcher, clock) == 2
        clock.advance(5)
        assert await one_round(dispatcher, clock) == 2
    assert attempts("retry") - before["retry"] == 2
    assert attempts("sent") - before["sent"] == 2


async def test_retry_after_seconds_is_honoured(store, clock, channels, dispatcher):
    answers = iter([status(429, "slow down", **{"Retry-After": "7"})])
    async with receiver(lambda _r: next(answers, None)) as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        await one_round(dispatcher, clock)
        after = await read(store, view)
        assert after.status == model.RETRYING
        assert after.next_attempt_at == clock() + timedelta(seconds=7)
        clock.advance(6)
        assert await one_round(dispatcher, clock) == 0
        clock.advance(1)
        await one_round(dispatcher, clock)
    assert (await read(store, view)).status == model.SENT
    assert len(hook.requests) == 2


async def test_retry_after_http_date_is_honoured_for_503(store, clock, channels, dispatcher):
    when = format_datetime(clock() + timedelta(seconds=30), usegmt=True)
    answers = iter([status(503, **{"Retry-After": when})])
    async with receiver(lambda _r: next(answers, None)) as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        await one_round(dispatcher, clock)
    assert (await read(store, view)).next_attempt_at == clock() + timedelta(seconds=30)


async def test_permanent_refusal_is_dead_with_its_reason(store, clock, channels, dispatcher):
    async with receiver(lambda _r: status(400, "invalid_payload")) as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        await one_round(dispatcher, clock)
        clock.advance(3600)
        assert await one_round(dispatcher, clock) == 0, "a dead letter is not retried"
    after = await read(store, view)
    assert after.status == model.DEAD
    assert after.dead_reason == "HTTP 400: invalid_payload"
    assert len(hook.requests) == 1


async def test_gone_endpoint_marks_the_channel_failing_until_a_send_succeeds(store, clock, channels, dispatcher):
    gone = True
    async with receiver(lambda _r: status(410) if gone else None) as hook:
        channel = channels.add(hook.url)
        first = await schedule(store, clock, channel)
        await one_round(dispatcher, clock)
        assert (await read(store, first)).status == model.DEAD
        async with store.reading() as tx:
            health = await model.channel_health(tx, channel)
            failing = await model.failing_channels(tx)
        assert health is not None and health[0] == model.FAILING and "HTTP 410" in health[1]
        assert failing == {channel: health[1]}
        gone = False
        await schedule(store, clock, channel)
        await one_round(dispatcher, clock)
    async with store.reading() as tx:
        assert await model.channel_health(tx, channel) == (model.HEALTHY, None)
        assert await model.failing_channels(tx) == {}


async def test_retries_end_in_a_dead_letter_at_the_maximum_age(store, clock, channels, dispatcher):
    async with receiver(lambda _r: status(502)) as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        after = view
        while after.status != model.DEAD:
            if after.next_attempt_at is not None:
                clock.set(after.next_attempt_at)
            await one_round(dispatcher, clock)
            after = await read(store, view)
    assert after.dead_reason is not None and after.dead_reason.startswith("not delivered within 24 h")
    assert after.attempts[-1].finished - view.created <= timedelta(hours=24)
    assert len(hook.requests) == len(after.attempts) > 10
    gaps = [b.started - a.started for a, b in zip(after.attempts, after.attempts[1:])]
    assert gaps[:3] == [timedelta(seconds=5), timedelta(seconds=15), timedelta(seconds=45)]
    assert max(gaps) == timedelta(hours=1)


async def test_a_delivery_found_past_its_maximum_age_is_dead_without_a_send(store, clock, channels, dispatcher):
    async with receiver() as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        clock.advance(hours=25)
        await one_round(dispatcher, clock)
    after = await read(store, view)
    assert (after.status, after.dead_reason) == (model.DEAD, "not delivered within 24 h (never attempted)")
    assert hook.requests == []


async def test_a_replayed_dead_letter_is_sent(store, clock, channels, dispatcher):
    refuse = True
    async with receiver(lambda _r: status(403, "forbidden") if refuse else None) as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        await one_round(dispatcher, clock)
        assert (await read(store, view)).status == model.DEAD
        refuse = False
        clock.advance(hours=30)  # past the maximum age: a replay counts it from now
        replayed = await commands.replay(store, view.id, clock=clock)
        assert replayed.status == model.PENDING
        await one_round(dispatcher, clock)
    after = await read(store, view)
    assert after.status == model.SENT
    assert [a.status_code for a in after.attempts] == [403, 200]


async def test_scheduling_one_event_twice_sends_once(store, clock, channels, dispatcher):
    import uuid

    rule, event = uuid.uuid4(), uuid.uuid4()
    async with receiver() as hook:
        channel = channels.add(hook.url)
        first = await schedule(store, clock, channel, rule_id=rule, event_id=event)
        again = await schedule(store, clock, channel, rule_id=rule, event_id=event)
        assert again.id == first.id == commands.delivery_id_for(event, rule, 0)
        await one_round(dispatcher, clock)
        await schedule(store, clock, channel, rule_id=rule, event_id=event)  # redelivered after the send
        await one_round(dispatcher, clock)
    assert hook.delivery_ids == [str(first.id)]
    assert await store.stream_version(f"delivery-{first.id}") == 2  # scheduled, sent (carrying its attempt)


async def test_a_stalling_channel_does_not_delay_another(store, clock, channels, dispatcher):
    async with receiver() as slow, receiver() as fast:
        slow.stall = asyncio.Event()
        slow_channel, fast_channel = channels.add(slow.url), channels.add(fast.url)
        stuck = [await schedule(store, clock, slow_channel) for _ in range(6)]
        quick = await schedule(store, clock, fast_channel)
        assert await dispatcher.step(clock()) == 7
        await until(lambda: fast.requests, what="the fast channel's request", timeout=10)
        await until(lambda: _status_is(store, quick, model.SENT), what="the fast delivery recorded", timeout=10)
        assert len(slow.requests) == 4, "the slow channel has its concurrency's worth of sends under way"
        assert [(await read(store, v)).status for v in stuck] == [model.PENDING] * 6
        slow.stall.set()
        await dispatcher.idle()
    assert [(await read(store, v)).status for v in stuck] == [model.SENT] * 6


async def _status_is(store, view, wanted) -> bool:
    return (await commands.read(store, view.id)).status == wanted


async def test_a_deleted_channel_dead_letters_its_deliveries(store, clock, channels, dispatcher):
    channel = channels.add("http://127.0.0.1:9/hook")
    view = await schedule(store, clock, channel)
    del channels.known[channel]
    await one_round(dispatcher, clock)
    assert (await read(store, view)).dead_reason == "the channel no longer exists"


async def test_a_stop_leaves_an_unfinished_send_pending_and_a_new_dispatcher_sends_it(store, clock, channels):
    async with receiver() as hook:
        hook.stall = asyncio.Event()
        view = await schedule(store, clock, channels.add(hook.url))
        first = Dispatcher(store, JsonWebhookSender(timeout=5), channels, clock=clock)
        await first.step(clock())
        await until(lambda: hook.requests, what="the stalled request")
        await first.aclose(timeout=0.1)
        after = await read(store, view)
        assert after.status == model.PENDING and after.attempts == []
        stalled, hook.stall = hook.stall, None
        stalled.set()  # ends the abandoned handler; the next request is answered at once
        second = Dispatcher(store, JsonWebhookSender(timeout=5), channels, clock=clock)
        try:
            await one_round(second, clock)
        finally:
            await second.aclose()
    assert (await read(store, view)).status == model.SENT
    assert hook.delivery_ids == [str(view.id), str(view.id)]


async def test_a_connection_refused_is_retried(store, clock, channels, dispatcher):
    from ..servers import unused_port

    view = await schedule(store, clock, channels.add(f"http://127.0.0.1:{unused_port()}/hook/T0KEN-s3cret"))
    await one_round(dispatcher, clock)
    after = await read(store, view)
    assert after.status == model.RETRYING
    assert after.attempts[0].status_code is None and "connection failed" in (after.attempts[0].error or "")
    assert "s3cret" not in repr(after), "the channel's URL (often its secret) is never recorded"


class _Gated:
    """The store, with appends held until ``open_appends`` is set, and a hook run after each read."""

    def __init__(self, store) -> None:
        self._store = store
        self.open_appends = asyncio.Event()
        self.open_appends.set()
        self.after_read = None

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def append(self, *args, **kwargs):
        await self.open_appends.wait()
        return await self._store.append(*args, **kwargs)

    def reading(self):
        import contextlib

        @contextlib.asynccontextmanager
        async def read():
            async with self._store.reading() as tx:
                yield tx
            if self.after_read is not None:
                await self.after_read()

        return read()


async def test_a_delivery_recorded_during_a_due_read_is_not_taken_again(store, clock, channels):
    async with receiver() as hook:
        view = await schedule(store, clock, channels.add(hook.url))
        gated = _Gated(store)
        dispatcher = Dispatcher(gated, JsonWebhookSender(timeout=5), channels, clock=clock)
        try:
            gated.open_appends.clear()  # the attempt's record waits
            assert await dispatcher.step(clock()) == 1
            await until(lambda: hook.requests, what="the send")

            async def record_now() -> None:  # the due read saw the delivery unrecorded; now it is recorded
                gated.after_read = None
                gated.open_appends.set()
                await dispatcher.idle()

            gated.after_read = record_now
            assert await dispatcher.step(clock()) == 0
            await dispatcher.idle()
        finally:
            await dispatcher.aclose()
    assert hook.delivery_ids == [str(view.id)]
    assert (await read(store, view)).status == model.SENT
