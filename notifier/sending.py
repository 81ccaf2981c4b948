"""The dispatcher's two seams as the server fills them: channels are notification block
documents (loaded with their secrets opened), sent through the channel package (http.py).

``BlockChannels`` is the ChannelLoader: a delivery names its channel by block document id, and
the channel is checked when the delivery is sent, so an edited channel (a rotated webhook URL)
applies to deliveries still pending. Every block change is appended to the one ``blocks``
stream, so the check is that stream's version: a channel opened at the version the log still
has is sent with as it was opened (one short read per send instead of the document, its type
and the opening of its secrets). ``ChannelSender`` is the Sender: it keeps the one
notifier HTTP session of the process and the base-URL overrides of the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from runlog.commands.encryption import Keyring
from runlog.eventstore import EventStore
from runlog.projections import blocks
from runlog.projections.block_secrets import unseal
from runlog.schema import streams

from . import http
from .channels import KINDS, call_webhook
from .channels import Message as ChannelMessage
from .seams import Attempt, Channel, Message


CACHED_CHANNELS = 1_000
"""Channels kept opened at once; past that the cache starts afresh (a server has a few)."""


class BlockChannels:
    def __init__(self, store: EventStore, keyring: Keyring) -> None:
        self._store = store
        self._keyring = keyring
        self._opened: dict[UUID, tuple[int, Channel]] = {}  # channel id -> (blocks version, channel)

    async def document(self, channel_id: UUID) -> blocks.BlockDocument | None:
        """The channel's block document with its secrets opened, or None."""
        cipher = await self._keyring.cipher(self._store)
        async with self._store.reading() as tx:
            return await blocks.document(tx, channel_id, cipher, include_secrets=True)

    async def __call__(self, channel_id: UUID) -> Channel | None:
        """The channel as a send needs it: its kind and its values with secrets opened, as the
        log has it now. Checked before every send: in a burst of alerts this read is each
        channel worker's wait between two sends, so it is the ``blocks`` stream's version
        alone while no block changed since the channel was opened."""
        # The version is read before the document: a change committed in between makes the
        # next send read it again, never keeps an older document under a newer version.
        version = await self._store.stream_version(streams.BLOCKS)
        opened = self._opened.get(channel_id)
        if opened is not None and opened[0] == version:
            return opened[1]
        channel = await self._open(channel_id)
        if channel is not None:
            if len(self._opened) >= CACHED_CHANNELS:
                self._opened.clear()
            self._opened[channel_id] = (version, channel)
        return channel

    async def _open(self, channel_id: UUID) -> Channel | None:
        """The channel read from its block document (the document, its type's slug; nested
        documents resolved), its secrets opened."""
        cipher = await self._keyring.cipher(self._store)
        async with self._store.reading() as tx:
            stored = await blocks.stored_document(tx, channel_id)
            if stored is None:
                return None
            if stored.references:  # nested documents: resolved as the API resolves them
                data = (await blocks.hydrate(tx, stored, cipher, include_secrets=True)).data
            else:
                data = unseal(cipher, stored.data)
            block_type = await blocks.block_type(tx, stored.block_type_id)
        return Channel(block_type.slug if block_type is not None else "", dict(data))


class ChannelSender:
    def __init__(self, *, base_urls: Mapping[str, str] | None = None, timeout: float = http.DEFAULT_TIMEOUT) -> None:
        self._base_urls = dict(base_urls or {})
        self._timeout = timeout
        self._session: http.Session | None = None

    async def __call__(
        self, kind: str, data: dict[str, Any], message: Message, *,
        delivery_id: UUID, now: datetime, resolve: bool = False, alert_key: str | None = None,
        skip_parts: frozenset[str] = frozenset(),
    ) -> Attempt:
        channel = call_webhook.KIND if kind == call_webhook.SLUG else KINDS.get(kind)
        if channel is None:
            return Attempt("permanent", error=f"block type {kind!r} is not a notification channel")
        if resolve and not channel.resolvable:  # the channel was edited into another kind since
            return Attempt("permanent", error=f"{channel.slug} channels cannot resolve an alert")
        if self._session is None:  # made on first use, inside the running loop
            self._session = http.Session(timeout=self._timeout)
        sent = await http.send(
            self._session, channel, data, ChannelMessage(body=message.body, subject=message.subject),
            delivery_id=delivery_id, now=now, resolve=resolve, alert_key=alert_key, base_urls=self._base_urls,
            skip_parts=skip_parts, timeout=self._timeout,
        )
        return Attempt(
            sent.outcome.value, status_code=sent.status, retry_after=sent.retry_after,
            excerpt=sent.excerpt or None, error=sent.error, parts_sent=sent.parts_sent,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["BlockChannels", "ChannelSender"]
