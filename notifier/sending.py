"""The dispatcher's two seams as the server fills them: channels are notification block
documents (loaded with their secrets opened), sent through the channel package (http.py).

``BlockChannels`` is the ChannelLoader: a delivery names its channel by block document id, and
the document is read when the delivery is sent, so an edited channel (a rotated webhook URL)
applies to deliveries still pending. ``ChannelSender`` is the Sender: it keeps the one
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

from . import http
from .channels import KINDS, call_webhook
from .channels import Message as ChannelMessage
from .seams import Attempt, Channel, Message


class BlockChannels:
    def __init__(self, store: EventStore, keyring: Keyring) -> None:
        self._store = store
        self._keyring = keyring

    async def document(self, channel_id: UUID) -> blocks.BlockDocument | None:
        """The channel's block document with its secrets opened, or None."""
        cipher = await self._keyring.cipher(self._store)
        async with self._store.reading() as tx:
            return await blocks.document(tx, channel_id, cipher, include_secrets=True)

    async def __call__(self, channel_id: UUID) -> Channel | None:
        """The channel as a send needs it: its kind and its values with secrets opened. Read
        before every send, so two short reads (the document, its type's slug) rather than the
        API's whole document (schema, its type, capabilities): in a burst of alerts these
        reads are each channel worker's wait between two sends."""
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
