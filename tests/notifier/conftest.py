"""Fixtures of the notifier's tests: a scripted receiver on 127.0.0.1, the notifier's session,
and a dispatcher on a fresh store with a manual clock and channels."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import pytest

from runlog.commands import deliveries as commands
from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.http import Session, open_session
from runlog.notifier.seams import Channel
from runlog.notifier.webhook import KIND, JsonWebhookSender
from runlog.projections.registry import inline_projections

from .receiver import Receiver, receiver

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def rcv() -> AsyncIterator[Receiver]:
    async with receiver() as r:
        yield r


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    async with open_session() as s:
        yield s


class Channels:
    """A channel loader over a dict: channel id -> Channel (None once deleted)."""

    def __init__(self) -> None:
        self.known: dict[UUID, Channel] = {}

    def add(self, url: str, kind: str = KIND) -> UUID:
        channel_id = uuid.uuid4()
        self.known[channel_id] = Channel(kind, {"url": url})
        return channel_id

    async def __call__(self, channel_id: UUID) -> Channel | None:
        return self.known.get(channel_id)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator:
    """A fresh store on each backend, with the server's read models kept inline."""
    async with open_store(store_url, projections=inline_projections()) as opened:
        yield opened


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def channels() -> Channels:
    return Channels()


@pytest.fixture
async def dispatcher(store, clock, channels) -> AsyncIterator[Dispatcher]:
    # draw=1.0: every backoff is its ceiling (5 s, 15 s, 45 s, ...), so tests know when retries fall due.
    sent = Dispatcher(store, JsonWebhookSender(timeout=5), channels, clock=clock, draw=lambda: 1.0)
    try:
        yield sent
    finally:
        await sent.aclose()


async def schedule(store, clock, channel_id: UUID, *, rule_id: UUID | None = None, event_id: UUID | None = None,
                   body: str = "run failed"):
    view, _created = await commands.schedule(
        store, rule_id=rule_id or uuid.uuid4(), rule_name="daily-etl failures", channel_id=channel_id,
        event_id=event_id or uuid.uuid4(), subject="Flow run failed", body=body, clock=clock,
    )
    return view


async def one_round(dispatcher: Dispatcher, clock: ManualClock) -> int:
    """A dispatcher round at the clock's time, and every send it started, recorded."""
    queued = await dispatcher.step(clock())
    await dispatcher.idle()
    return queued
