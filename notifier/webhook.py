"""A sender for plain JSON webhooks (kind ``json-webhook``): POST the message as JSON to a URL.

It follows the classification every channel shares (see seams.Attempt): 2xx sent; 408, 425,
429 and 5xx retried, with Retry-After (seconds or an HTTP date) honoured for 429 and 503; 404
and 410 gone; any other status permanent (a redirect too: none is followed); timeouts and
connection errors retried. The request carries ``webhook-id`` = the delivery id, the same on
every attempt, so a receiver can drop a duplicate. Errors name what failed, never the URL,
which for many services is itself the secret.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import aiohttp

from .seams import GONE, PERMANENT, RETRY, SENT, Attempt, Message

KIND = "json-webhook"
TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 64 * 1024
"""The most of an answer read; the rest is never downloaded."""
EXCERPT_CHARS = 512

RETRIED = frozenset({408, 425, 429})
HONOURS_RETRY_AFTER = frozenset({429, 503})


def classify(status: int) -> str:
    if 200 <= status < 300:
        return SENT
    if status in RETRIED or status >= 500:
        return RETRY
    if status in (404, 410):
        return GONE
    return PERMANENT


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (None if neither)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _excerpt(body: bytes) -> str | None:
    text = body.decode("utf-8", errors="replace").strip()
    return text[:EXCERPT_CHARS] or None


class JsonWebhookSender:
    """The sender of ``json-webhook`` channels (data: ``{"url": "http(s)://..."}``)."""

    def __init__(self, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(
        self, kind: str, data: dict[str, Any], message: Message, *,
        delivery_id: UUID, now: datetime, resolve: bool = False, alert_key: str | None = None,
        skip_parts: frozenset[str] = frozenset(),
    ) -> Attempt:
        if kind != KIND:
            return Attempt(PERMANENT, error=f"no sender for channel kind {kind!r}")
        url = data.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return Attempt(PERMANENT, error="the channel's url is not an http(s) URL")
        payload = {"subject": message.subject, "body": message.body, "delivery_id": str(delivery_id),
                   "resolve": resolve}
        if self._session is None:  # made on first use, inside the running loop
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, json=payload, headers={"webhook-id": str(delivery_id)}, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                body = await response.content.read(MAX_BODY_BYTES)
                status = response.status
                wait = retry_after(response.headers.get("Retry-After"), now) if status in HONOURS_RETRY_AFTER else None
        except TimeoutError:
            return Attempt(RETRY, error=f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            return Attempt(RETRY, error=f"connection failed ({type(exc).__name__})")
        except asyncio.CancelledError:
            raise
        outcome = classify(status)
        return Attempt(outcome, status_code=status, retry_after=wait if outcome == RETRY else None,
                       excerpt=_excerpt(body))


__all__ = ["KIND", "JsonWebhookSender", "classify", "retry_after"]
