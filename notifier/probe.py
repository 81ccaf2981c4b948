"""A channel's test send (``runlog channel test``): one message through the real sender, now,
with the block's secrets opened, and the receiver's answer handed back.

A test send is not a delivery: nothing is appended to the log, no retry follows, and the
channel's health (which folds deliveries only) is left as it is. The answer is returned to the
caller, redacted as every attempt is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from runlog.commands.encryption import Keyring
from runlog.commands.errors import NotFound, Unprocessable
from runlog.eventstore import EventStore

from . import http
from .channels import KINDS, Message
from .sending import BlockChannels

SUBJECT = "runlog channel test"
BODY = "This is a test message from runlog: the channel {name} can reach you."


async def send_test(
    store: EventStore, keyring: Keyring, channel_id: UUID, *, now: datetime, message: str | None = None,
    base_urls: Mapping[str, str] | None = None, timeout: float = http.DEFAULT_TIMEOUT,
) -> tuple[str, http.Attempt]:
    """(the channel's kind slug, what sending MESSAGE (or a default one) to it came to).
    NotFound when there is no such block document, Unprocessable when it is no channel."""
    document = await BlockChannels(store, keyring).document(channel_id)
    if document is None:
        raise NotFound(f"no channel (block document) {channel_id}")
    kind = document.block_type.slug if document.block_type is not None else ""
    if kind not in KINDS:
        raise Unprocessable(f"block document {document.name!r} is not a notification channel ({kind or 'no type'})")
    text = BODY.format(name=repr(document.name)) if message is None else message
    async with http.open_session(timeout=timeout) as session:
        attempt = await http.send(
            # A fresh id: receivers that drop repeated webhook-ids (or PagerDuty dedup keys) must
            # not take a second test for a duplicate of the first.
            session, kind, document.data, Message(body=text, subject=SUBJECT), delivery_id=uuid.uuid4(),
            now=now, base_urls=base_urls, timeout=timeout,
        )
    return kind, attempt


__all__ = ["BODY", "SUBJECT", "send_test"]
