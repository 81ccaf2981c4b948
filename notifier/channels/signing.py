"""Standard Webhooks signatures (https://www.standardwebhooks.com, v1): ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
``{id}.{timestamp}.{body}``, keyed by the base64 after a ``whsec_`` prefix.

A channel may hold several secrets separated by spaces while it rotates them; each gives one
signature and the receiver accepts any that verifies, as the spec describes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from datetime import datetime

from .base import ChannelConfigError

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: whsec_ and the base64 of 32 random bytes (the spec asks 24-64)."""
    return PREFIX + base64.b64encode(_random.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ChannelConfigError("the channel's signing secret is not whsec_ followed by base64") from None
    if not key:
        raise ChannelConfigError("the channel's signing secret is empty")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def headers(secrets: str | None, msg_id: str, now: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for one request. ``webhook-id`` (the idempotency key that
    stays the same across retries) and ``webhook-timestamp`` are sent even when the channel has
    no secret, so receivers can deduplicate; the signature only when it has one."""
    timestamp = int(now.timestamp())
    out = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secrets and secrets.split():
        out["webhook-signature"] = " ".join(signature(s, msg_id, timestamp, body) for s in secrets.split())
    return out
