"""Wiring the notifier's dispatcher into a process: inside ``runlog server start``, or alone.

The dispatcher is given its two seams (notifier/seams.py): the sender and the channel loader.
``default_parts`` is where the server's come from: the channel package's sender and channels
read from block documents (notifier/sending.py). Tests give their own.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog

from runlog.commands.clock import Clock, system_clock
from runlog.commands.deliveries import RetryPolicy
from runlog.commands.encryption import Keyring
from runlog.commands.runner import Service, ServiceRunner
from runlog.eventstore import EventStore, SchemaBehind, mask_url, open_store
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.matcher import Matcher
from runlog.notifier.sending import BlockChannels, ChannelSender
from runlog.notifier.templates import Renderer
from runlog.notifier.seams import ChannelLoader, Sender
from runlog.projections.collector import freezing_survivors
from runlog.projections.registry import inline_projections

from .settings import Settings

log = structlog.get_logger("runlog.notifier")


@dataclass(frozen=True)
class NotifierParts:
    sender: Sender
    loader: Callable[[EventStore], ChannelLoader]
    """The channel loader reading from a store."""


def default_parts(settings: Settings, keyring: Keyring | None = None) -> NotifierParts:
    """The sender and channel loader the server sends with: channels are notification block
    documents, opened with the server's key (the app's keyring, so the key is read once), and
    sent by the channel package."""
    keyring = keyring if keyring is not None else Keyring(settings.server_encryption_key)
    return NotifierParts(
        sender=ChannelSender(base_urls=dict(settings.notifier_base_urls or ())),
        loader=lambda store: BlockChannels(store, keyring),
    )


def make_dispatcher(settings: Settings, store: EventStore, parts: NotifierParts, *, clock: Clock = system_clock) -> Dispatcher:
    policy = RetryPolicy(
        max_age=timedelta(seconds=settings.notifier_max_age), base=settings.notifier_retry_backoff,
        max_backoff=settings.notifier_retry_max_backoff,
    )
    return Dispatcher(store, parts.sender, parts.loader(store), clock=clock, policy=policy)


def notifier_services(
    settings: Settings, store: EventStore, parts: NotifierParts, *, clock: Clock = system_clock
) -> tuple[Dispatcher, list[Service]]:
    """The notifier's two loops: the matcher (log -> deliveries) and the dispatcher (deliveries
    -> receivers); the matcher wakes the dispatcher when it scheduled something."""
    dispatcher = make_dispatcher(settings, store, parts, clock=clock)
    matcher = Matcher(store, renderer=Renderer(settings.ui_base_url), clock=clock, on_scheduled=dispatcher.wake)
    return dispatcher, [matcher.service(), dispatcher.service()]


async def run_notifier(settings: Settings, parts: NotifierParts, *, clock: Clock = system_clock) -> None:
    """``runlog notifier start``: the notifier (matcher and dispatcher) alone on the configured
    database, until SIGINT or SIGTERM; then sends under way may finish and the rest stay pending."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    store = open_store(settings.database_url, migrate=settings.migrate_on_start, projections=inline_projections())
    try:
        await store.open()
    except SchemaBehind as exc:
        raise exc.because("RUNLOG_DATABASE_MIGRATE_ON_START is false") from None
    async with store:
        dispatcher, services = notifier_services(settings, store, parts, clock=clock)
        try:
            async with ServiceRunner(store, services, clock=clock):
                with freezing_survivors(loop):  # as the server does (api/server.py)
                    log.info("notifier_started", database=mask_url(settings.database_url))
                    await stop.wait()
        finally:
            await dispatcher.aclose()
    log.info("notifier_stopped")


__all__ = ["NotifierParts", "default_parts", "make_dispatcher", "notifier_services", "run_notifier"]
