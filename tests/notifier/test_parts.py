"""Channels that send one request per recipient (Twilio numbers, Mattermost channels), through
the dispatcher against a real receiver on 127.0.0.1, on both backends: the recipients an attempt
reached are recorded in the attempt event, and a retry or a replay, by a dispatcher that
remembers nothing, sends only to the others: each recipient gets the message once."""

from __future__ import annotations

import uuid
from collections import Counter
from urllib.parse import parse_qs

from runlog.commands import deliveries as commands
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.http import part_id
from runlog.notifier.seams import Channel
from runlog.notifier.sending import ChannelSender
from runlog.projections import deliveries as model
from runlog.schema import events as catalogue

from .conftest import one_round, schedule
from .receiver import receiver

TWILIO = {"account_sid": "AC1", "auth_token": "tw-t0ken", "from_phone_number": "+15550000",
          "to_phone_numbers": ["+15550001", "+15550002", "+15550003"]}


async def a_round_by_a_new_dispatcher(store, clock, channels, base_urls) -> None:
    """One round of a dispatcher that knows only the log (as after a restart), then closed."""
    dispatcher = Dispatcher(store, ChannelSender(base_urls=base_urls), channels, clock=clock, draw=lambda: 1.0)
    try:
        await one_round(dispatcher, clock)
    finally:
        await dispatcher.aclose()


async def test_a_retry_after_the_second_number_failed_messages_each_number_once(store, clock, channels):
    async with receiver() as twilio:
        # The first number is reached, the second fails once; every later request is accepted.
        twilio.script((201, {}, b'{"sid": "SM1"}'), (500, {}, b"busy"))
        twilio.default = (201, {}, b'{"sid": "SM2"}')
        channel_id = uuid.uuid4()
        channels.known[channel_id] = Channel("twilio-sms", TWILIO)
        base_urls = {"twilio-sms": twilio.url}
        view = await schedule(store, clock, channel_id)

        await a_round_by_a_new_dispatcher(store, clock, channels, base_urls)
        after = await commands.read(store, view.id)
        assert after is not None and after.status == model.RETRYING
        reached = [part_id("twilio-sms", "to:+15550001")]
        assert after.parts_sent == reached and after.attempts[0].parts_sent == reached
        assert "+15550001" not in after.attempts[0].parts_sent[0], "the log keeps a digest, not the number"

        clock.advance(5)  # the first backoff (draw 1.0: its ceiling)
        await a_round_by_a_new_dispatcher(store, clock, channels, base_urls)

    sent_to = [parse_qs(seen.body.decode())["To"][0] for seen in twilio.seen]
    assert sent_to == ["+15550001", "+15550002", "+15550002", "+15550003"]
    accepted = [to for index, to in enumerate(sent_to) if index != 1]  # the second request got the 500
    assert Counter(accepted) == {"+15550001": 1, "+15550002": 1, "+15550003": 1}
    done = await commands.read(store, view.id)
    assert done is not None and done.status == model.SENT and len(done.parts_sent) == 3
    # The attempt events carry the parts: a projection rebuilt from the log has them too.
    # The attempt that succeeded is carried by the sending (DeliverySent.attempt).
    recorded = [_attempt_of(catalogue.decode(r.data)) async for r in store.read_stream(f"delivery-{view.id}")
                if r.type in ("delivery.attempted", "delivery.sent")]
    assert [len(a.parts_sent) for a in recorded] == [1, 3]


async def test_a_replayed_dead_letter_skips_the_mattermost_channels_already_reached(store, clock, channels):
    async with receiver() as mattermost:
        # The second channel is refused for good (400): a dead letter; replayed once fixed.
        mattermost.script((200, {}, b"ok"), (400, {}, b"channel not found"))
        channel_id = uuid.uuid4()
        channels.known[channel_id] = Channel("mattermost-webhook", {
            "hostname": "mattermost.example", "token": "mm-token", "channels": ["ops", "oncall", "audit"],
        })
        base_urls = {"mattermost-webhook": mattermost.url}
        view = await schedule(store, clock, channel_id)

        await a_round_by_a_new_dispatcher(store, clock, channels, base_urls)
        dead = await commands.read(store, view.id)
        assert dead is not None and dead.status == model.DEAD and len(dead.parts_sent) == 1

        await commands.replay(store, view.id, clock=clock)
        await a_round_by_a_new_dispatcher(store, clock, channels, base_urls)

    assert [seen.json()["channel"] for seen in mattermost.seen] == ["ops", "oncall", "oncall", "audit"]
    done = await commands.read(store, view.id)
    assert done is not None and done.status == model.SENT


def _attempt_of(event):
    return event.attempt if isinstance(event, catalogue.DeliverySent) else event
