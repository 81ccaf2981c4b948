"""Outbound HTTP for every channel, in one place: the notifier's one client session, the
timeout, no redirects, a cap on what is read, http(s) only, and redaction where errors and
excerpts are made.

The interface the dispatcher calls::

    async with open_session() as session:               # one per process (a Session)
        attempt = await send(
            session, kind, data, Message(body, subject),
            delivery_id=delivery.id,    # webhook-id, the same on every retry
            now=clock(),                 # signing timestamp, Retry-After dates
            resolve=False,               # True: close the alert (RESOLVABLE kinds only)
            alert_key=None,              # PagerDuty dedup_key / Opsgenie alias; delivery id if None
            base_urls={},                # kind slug -> base URL override (settings)
            skip_parts=frozenset(),      # parts (recipients) an earlier attempt reached
            timeout=10.0,                # total seconds per request
        )

``kind`` is a block type slug, a short name or a ChannelKind; ``data`` the block document's data with its
secrets decrypted. ``send`` never raises for anything the channel or the receiver does: it
returns an ``Attempt`` whose ``outcome`` is sent, retry (``retry_after`` seconds when the
receiver said), permanent or gone. It raises ValueError only when asked to resolve on a kind
that cannot (a caller's mistake). Some kinds send one request per recipient (Twilio numbers,
Mattermost channels): ``parts_sent`` names those that have got the message (by ``part_id``, a
digest of the recipient, so the log keeps no phone number), and a retry passes them back as
``skip_parts`` so recipients already reached are not messaged again. Parts are named rather
than counted: a channel edited between two attempts (a number added, the list reordered) still
reaches each of its recipients once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import aiohttp

from .channels import ChannelConfigError, Context, Message, Outcome, Request, Response, Verdict
from .channels import ChannelKind, channel_kind, secret_values, url_problem
from .addresses import PrivateAddress, PublicOnlyResolver, private_literal
from .redact import Redactor, display_url

DEFAULT_TIMEOUT = 10.0
MAX_READ = 64 * 1024  # bytes of an answer read at most; the rest is never downloaded
EXCERPT_LIMIT = 1024  # characters of it kept with the attempt
PRIVATE = "the channel may reach public addresses only (allow_private_urls is false)"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one send did. ``error`` and ``excerpt`` are redacted; ``target`` is the method and
    the URL's scheme and host only."""

    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None
    elapsed: float = 0.0  # seconds spent on the wire, over all parts sent this time
    excerpt: str = ""
    error: str | None = None
    provider_ref: str | None = None
    target: str = ""
    parts_sent: tuple[str, ...] = ()
    """The part ids (``part_id``) of the recipients that have the message: reached by this send
    or skipped because an earlier attempt reached them."""
    parts_total: int = 0


def part_id(slug: str, part: str) -> str:
    """The name a part is recorded under: a digest of the kind and the recipient, stable across
    processes, that says nothing of the recipient itself."""
    return hashlib.sha256(f"{slug}\n{part}".encode()).hexdigest()[:24]


class Session:
    """The notifier's HTTP client, one per process: an aiohttp session for channels that may
    reach any address, and one whose resolver admits public addresses only, for channels whose
    block says ``allow_private_urls: false``. No cookie jar: one receiver's cookies must never
    reach another on the same host. No proxy or .netrc from the environment: a base-URL
    override is the way to route a channel through a proxy, and it is visible in the settings."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        def session(**kwargs: Any) -> aiohttp.ClientSession:
            return aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout), cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False, raise_for_status=False, **kwargs,
            )

        self.any = session()
        self.public = session(connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver()))

    async def close(self) -> None:
        await self.any.close()
        await self.public.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_session(*, timeout: float = DEFAULT_TIMEOUT) -> Session:
    """The notifier's session (``async with open_session() as session``); call it in the loop
    that will use it."""
    return Session(timeout=timeout)


async def send(
    session: Session,
    kind: str | ChannelKind,
    data: Mapping[str, Any],
    message: Message,
    *,
    delivery_id: UUID,
    now: datetime,
    resolve: bool = False,
    alert_key: str | None = None,
    base_urls: Mapping[str, str] | None = None,
    skip_parts: Collection[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> Attempt:
    try:
        # A kind itself: one that is not a channel (call-webhook's ``webhook`` block, whose slug
        # is also custom-webhook's short name).
        channel = kind if isinstance(kind, ChannelKind) else channel_kind(kind)
    except ValueError as exc:
        return Attempt(Outcome.PERMANENT, error=str(exc))
    if resolve and not channel.resolvable:
        raise ValueError(f"{channel.slug} channels cannot resolve an alert")
    secrets = list(secret_values(channel, data))
    ctx = Context(delivery_id, now, resolve, alert_key, (base_urls or {}).get(channel.slug))
    try:
        requests = channel.build(data, message, ctx)
    except ChannelConfigError as exc:
        return Attempt(Outcome.PERMANENT, error=Redactor(secrets)(str(exc)))
    except ValueError as exc:  # a URL urllib cannot parse, say: the data is wrong, not the wire
        return Attempt(Outcome.PERMANENT, error=Redactor(secrets)(f"the channel cannot make a request: {exc}"))

    # Secrets the requests derived (a Basic credential) join those of the block's fields.
    redact = Redactor([*secrets, *(s for r in requests for s in r.secrets)])
    public_only = data.get("allow_private_urls") is False
    client = session.public if public_only else session.any
    skip = frozenset(skip_parts)
    elapsed, sent, last = 0.0, [], Attempt(Outcome.SENT)
    for request in requests:
        part = part_id(channel.slug, request.part) if request.part else None
        if part is not None and part in skip:
            sent.append(part)  # an earlier attempt reached this recipient
            continue
        if public_only and private_literal(urlsplit(request.url).hostname):
            last = Attempt(Outcome.PERMANENT, error=PRIVATE, target=f"{request.method} {display_url(request.url)}")
            break
        last = await _send_one(client, channel.classify, request, now, timeout, redact)
        elapsed += last.elapsed
        if last.outcome is not Outcome.SENT:
            break
        if part is not None:
            sent.append(part)
    return Attempt(
        last.outcome, last.status, last.retry_after, elapsed, last.excerpt, last.error,
        last.provider_ref, last.target, tuple(sent), len(requests),
    )


async def _send_one(
    session: aiohttp.ClientSession, classify: Callable[[Response], Verdict], request: Request,
    now: datetime, timeout: float, redact: Redactor,
) -> Attempt:
    target = f"{request.method} {display_url(request.url)}"
    if problem := url_problem(request.url):
        return Attempt(Outcome.PERMANENT, error=problem, target=target)
    limit = min(request.timeout, timeout) if request.timeout else timeout
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with session.request(
            request.method, request.url, headers=dict(request.headers), data=request.body or None,
            allow_redirects=False, timeout=aiohttp.ClientTimeout(total=limit),
            # A body the channel gave no type (a custom webhook's raw form string) goes without
            # one, as Prefect sends it, not as application/octet-stream.
            skip_auto_headers=() if _has(request.headers, "Content-Type") else ("Content-Type",),
        ) as resp:
            answer = Response(resp.status, resp.headers, await _read_capped(resp.content), now)
            if not resp.content.at_eof():
                resp.close()  # the rest is never read: drop the connection rather than drain it
    except TimeoutError:
        return _failed(Outcome.RETRY, f"no answer within {limit:g} s", loop.time() - started, target)
    except (aiohttp.InvalidURL, ValueError) as exc:
        return _failed(Outcome.PERMANENT, redact(f"{type(exc).__name__}: {exc}"), loop.time() - started, target)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, PrivateAddress):
            return _failed(Outcome.PERMANENT, PRIVATE, loop.time() - started, target)
        return _failed(Outcome.RETRY, redact(f"{type(exc).__name__}: {exc}"), loop.time() - started, target)
    except (aiohttp.ClientError, OSError) as exc:
        return _failed(Outcome.RETRY, redact(f"{type(exc).__name__}: {exc}"), loop.time() - started, target)
    elapsed = loop.time() - started
    verdict: Verdict = classify(answer)
    excerpt = redact(answer.text())[:EXCERPT_LIMIT]
    error = None if verdict.outcome is Outcome.SENT else redact(verdict.reason or f"HTTP {answer.status}")
    if 300 <= answer.status < 400 and "Location" in answer.headers:
        error = f"{error} (to {display_url(answer.headers['Location'])})"
    return Attempt(verdict.outcome, answer.status, verdict.retry_after, elapsed, excerpt, error,
                   verdict.provider_ref and redact(verdict.provider_ref), target)


async def _read_capped(stream: aiohttp.StreamReader) -> bytes:
    """Up to MAX_READ bytes of the body (``read(n)`` returns what has arrived, so loop)."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_READ:
        try:
            chunk = await stream.read(MAX_READ - size)
        except (aiohttp.ClientError, TimeoutError):
            # The status line was the receiver's answer; a body cut short does not undo it
            # (retrying a 2xx whose body broke off would send the alert twice).
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _has(headers: Mapping[str, str], name: str) -> bool:
    return any(key.lower() == name.lower() for key in headers)


def _failed(outcome: Outcome, error: str, elapsed: float, target: str) -> Attempt:
    return Attempt(outcome, elapsed=elapsed, error=error, target=target)


__all__ = [
    "DEFAULT_TIMEOUT", "EXCERPT_LIMIT", "MAX_READ", "Attempt", "Message", "Outcome", "Session", "open_session",
    "part_id", "send",
]
