"""What every channel module shares: the message, the request it shapes, the answer it
classifies, and the small helpers (truncation, Retry-After, base-URL overrides) they use.

A channel module never does I/O: it turns (block data, message, context) into ``Request``s and
a ``Response`` into a ``Verdict``. ``runlog.notifier.http`` is the only place that sends.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

# Prefect's notification blocks send under this name (its custom webhook sets it as the
# user-agent); receivers that filter on it keep working when runlog sends instead.
USER_AGENT = "Prefect Notifications"
# The subject SendNotification uses when an automation sets none (Prefect's default).
DEFAULT_SUBJECT = "Prefect automated notification"
ELLIPSIS = "…"


class ChannelConfigError(ValueError):
    """The block document cannot make a request (a field missing or of the wrong kind, a
    template naming an unknown value, a URL that is not http(s)). Never retried: the channel
    must be edited first. Messages name fields, never their values."""


@dataclass(frozen=True, slots=True)
class Message:
    """What to say: the rendered subject (None when the action set none) and body."""

    body: str
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a channel needs besides its data and the message.

    ``delivery_id`` is stable across the retries of one delivery (``webhook-id``);
    ``alert_key`` names the alert a resolve must close (PagerDuty ``dedup_key``, Opsgenie
    ``alias``): an alert is opened under its delivery's id (no key given), and the dispatcher
    gives a resolve the id of the delivery that opened it. ``base_url`` replaces the vendor's
    scheme and host (tests, proxies)."""

    delivery_id: UUID
    now: datetime
    resolve: bool = False
    alert_key: str | None = None
    base_url: str | None = None

    @property
    def key(self) -> str:
        return self.alert_key or str(self.delivery_id)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, ready to send. ``secrets`` lists strings derived from secret fields
    that are not in the block data as such (a Basic credential, a URL with a token in it), so
    that redaction can find them in whatever comes back. ``part`` names the recipient of a
    kind that sends one request per recipient (a phone number, a channel), so that a retry can
    leave out the recipients already reached; empty for a kind that sends one request."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes = b""
    secrets: tuple[str, ...] = ()
    timeout: float | None = None  # the block's own, when it has one (custom webhooks)
    part: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive when it comes from http.py (a CIMultiDict)
    body: bytes  # at most the capped number of bytes that were read
    now: datetime

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (or was cut by the read cap)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # try again later; after ``retry_after`` seconds when the receiver said
    PERMANENT = "permanent"  # retrying will not help: dead-letter it
    GONE = "gone"  # the endpoint is no more (404/410): dead-letter and mark the channel failing


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    retry_after: float | None = None
    reason: str | None = None  # why it was not sent, in words; never a secret
    provider_ref: str | None = None  # the receiver's id for what it accepted


# -- classification --------------------------------------------------------------------------

_RETRYABLE = {408, 425, 429}
_THROTTLED = {429, 503}
_GONE = {404, 410}


def classify(response: Response, *, sent: Callable[[Response], Verdict] | None = None) -> Verdict:
    """The common reading of an answer: 2xx sent (or what ``sent`` makes of it); 429/503
    retry after Retry-After; 408, 425 and other 5xx retry; 3xx permanent (redirects are never
    followed); 404/410 gone; any other 4xx permanent."""
    status = response.status
    if 200 <= status < 300:
        return sent(response) if sent else Verdict(Outcome.SENT)
    if status in _THROTTLED:
        return Verdict(Outcome.RETRY, retry_after(response), f"HTTP {status}")
    if status in _RETRYABLE or status >= 500:
        return Verdict(Outcome.RETRY, None, f"HTTP {status}")
    if status in _GONE:
        return Verdict(Outcome.GONE, None, f"HTTP {status}: the endpoint is gone")
    if 300 <= status < 400:
        return Verdict(Outcome.PERMANENT, None, f"HTTP {status}: redirect not followed")
    return Verdict(Outcome.PERMANENT, None, f"HTTP {status}")


def retry_after(response: Response) -> float | None:
    """Seconds to wait from the Retry-After header, given as seconds or as an HTTP date
    (a date already past means now: 0); without one, from the rate-limit headers Discord and
    SendGrid send (``X-RateLimit-Reset-After`` seconds, ``X-RateLimit-Reset`` epoch seconds).
    None when there is none that can be read."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return _rate_limit_reset(response)
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - response.now).total_seconds())


def _rate_limit_reset(response: Response) -> float | None:
    try:
        if (after := response.headers.get("X-RateLimit-Reset-After")) is not None:
            return max(0.0, float(after))
        if (epoch := response.headers.get("X-RateLimit-Reset")) is not None:
            return max(0.0, float(epoch) - response.now.timestamp())
    except ValueError:
        pass
    return None


def ref_from_json(response: Response, key: str) -> str | None:
    body = response.json()
    value = body.get(key) if isinstance(body, dict) else None
    return str(value) if value is not None else None


def classify_with_ref(key: str) -> Callable[[Response], Verdict]:
    """The common classification, keeping the receiver's id for what it accepted: the value
    of KEY in its JSON answer (Discord's message id, Twilio's sid, Opsgenie's requestId)."""

    def _classify(response: Response) -> Verdict:
        return classify(response, sent=lambda r: Verdict(Outcome.SENT, provider_ref=ref_from_json(r, key)))

    return _classify


# -- shaping helpers -------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """TEXT cut to at most LIMIT characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def truncate_bytes(text: str, limit: int) -> str:
    """TEXT cut so its UTF-8 encoding is at most LIMIT bytes (cards are limited in bytes)."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    cut = limit - len(ELLIPSIS.encode())
    return raw[:cut].decode("utf-8", "ignore") + ELLIPSIS


def joined(message: Message, sep: str = "\r\n") -> str:
    """Subject and body as one text, for channels that have no title (as apprise merges them)."""
    return f"{message.subject}{sep}{message.body}" if message.subject else message.body


def json_body(value: Any) -> bytes:
    # Compact and UTF-8, as httpx encodes Prefect's requests; the exact bytes are what a
    # Standard Webhooks signature covers, so they are made here once.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}


def rebase(url: str, base: str | None) -> str:
    """URL with its scheme and host taken from BASE (whose path, if any, is put in front of
    URL's path); URL unchanged when there is no override."""
    if not base:
        return url
    target, over = urlsplit(url), urlsplit(base)
    path = over.path.rstrip("/") + target.path
    return urlunsplit((over.scheme, over.netloc, path, target.query, target.fragment))


def url_problem(url: str) -> str | None:
    """Why URL may not be requested, or None: only http(s) URLs with a host are."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return "the channel's URL is malformed"
    if parts.scheme.lower() not in ("http", "https"):
        return f"only http(s) URLs are accepted, not {parts.scheme.lower() or 'none'!r}"
    if not parts.hostname:
        return "the channel's URL names no host"
    return None


def vendor_url(default_base: str, path: str, ctx: Context) -> str:
    return (ctx.base_url or default_base).rstrip("/") + path


def regional(bases: Mapping[str, str], data: Mapping[str, Any]) -> str:
    """The vendor's base URL for the block's ``region_name`` (us or eu, us by default)."""
    return bases.get(optional(data, "region_name", str, "us"), bases["us"])


def require(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    """DATA[NAME], which must be set and of KIND; a ChannelConfigError naming it otherwise."""
    value = data.get(name)
    if value is None or value == "":
        raise ChannelConfigError(f"the channel has no {name!r}")
    if not isinstance(value, kind):
        raise ChannelConfigError(f"the channel's {name!r} has the wrong type")
    return value


def optional(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ChannelConfigError(f"the channel's {name!r} has the wrong type")
    return value


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """One kind of channel: its Prefect block type slug, the fields Prefect's block schema
    marks secret (``secrets.*`` means every value of ``secrets``), how it shapes requests and
    reads answers, and whether it can resolve an alert it raised."""

    slug: str
    build: Callable[[Mapping[str, Any], Message, Context], list[Request]]
    secret_fields: tuple[str, ...]
    classify: Callable[[Response], Verdict] = classify
    resolvable: bool = False
    # The vendor's own host, for kinds whose data holds only credentials (not a whole URL):
    # these need a base-URL override to be pointed anywhere else.
    vendor_host: str | None = None
    aliases: tuple[str, ...] = field(default=())
