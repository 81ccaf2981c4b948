"""CSRF tokens as Prefect's API issues them (GET /csrf-token?client=...), kept nowhere.

Prefect stores one token per client in a table. Here a token is its own proof: its expiry and
an HMAC-SHA256 of (client, expiry) under a signing key that lives in the server_configuration
table (made once per database, as the encryption key is), so every server process on one
database accepts the tokens any of them issued, and no row is written per browser. A token
names its expiry, which is checked against the injected clock; it is valid for its client only.

Unlike Prefect's, issuing a new token does not revoke the client's previous one: each stays
valid until it expires (RUNLOG_SERVER_API_CSRF_TOKEN_EXPIRATION, an hour by default).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from runlog.eventstore import EventStore

from .encryption import stored_secret

KEY_NAME = "CSRF_SIGNING_KEY"
MAX_CLIENT_LENGTH = 256
"""A client id is whatever the caller chose (Prefect's clients send a UUID); longer is refused."""


@dataclass(frozen=True, slots=True)
class CsrfToken:
    token: str
    client: str
    expiration: datetime


def _mac(key: bytes, client: str, expires: int) -> str:
    digest = hmac.new(key, f"{client}\x00{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(key: bytes, client: str, now: datetime, lifetime: float) -> CsrfToken:
    """A token for CLIENT, valid for LIFETIME seconds from NOW (whole seconds, rounded up)."""
    expires = int((now + timedelta(seconds=lifetime)).timestamp() + 0.999999)
    return CsrfToken(f"{expires}.{_mac(key, client, expires)}", client,
                     datetime.fromtimestamp(expires, tz=timezone.utc))


def valid(key: bytes, client: str, token: str, now: datetime) -> bool:
    """Whether TOKEN was issued for CLIENT under KEY and has not expired at NOW."""
    expires_text, dot, mac = token.partition(".")
    if not dot or not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    # The MAC is compared in constant time; the expiry it covers is checked after, so a forged
    # token learns nothing from which check failed.
    if not hmac.compare_digest(mac.encode(), _mac(key, client, expires).encode()):
        return False
    return now.timestamp() < expires


class CsrfKeys:
    """The signing key of one process: read (or made) on first use and kept."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "CsrfKeys(********)"

    async def key(self, store: EventStore) -> bytes:
        if self._key is None:
            async with self._lock:
                if self._key is None:
                    text = await stored_secret(store, KEY_NAME, lambda: secrets.token_urlsafe(32))
                    self._key = text.encode()
        return self._key


__all__ = ["CsrfKeys", "CsrfToken", "MAX_CLIENT_LENGTH", "issue", "valid"]
