"""Custom webhooks (block type ``custom-webhook``), shaped as Prefect's
``CustomWebhookNotificationBlock`` shapes them: templated URL, query params, JSON or form body,
headers and cookies, with ``subject``, ``body``, ``name`` and every key of ``secrets`` as values,
and ``user-agent: Prefect Notifications``.

runlog adds Standard Webhooks headers (``runlog.notifier.channels.signing``): ``webhook-id`` is
the delivery id, so it is the same on every retry, and requests are signed when ``secrets``
holds a ``whsec_`` secret under ``SIGNING_SECRET_KEY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import signing, templating
from .base import (
    USER_AGENT, ChannelConfigError, ChannelKind, Context, Message, Request, json_body, optional,
    rebase, require,
)

SIGNING_SECRET_KEY = "webhook_signing_secret"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
TEMPLATED = ("url", "params", "form_data", "json_data", "headers", "cookies")


def validate(data: Mapping[str, Any]) -> None:
    """Refuse what Prefect's block refuses at initialization (both a JSON and a form body, a
    placeholder naming no value) and a method it does not know; for the block's save path too."""
    if data.get("form_data") is not None and data.get("json_data") is not None:
        raise ChannelConfigError("the channel has both 'form_data' and 'json_data'")
    if data.get("method", "POST") not in METHODS:
        raise ChannelConfigError(f"the channel's 'method' must be one of {', '.join(METHODS)}")
    allowed = {"subject", "body", "name", *_secrets(data)}
    templating.check({f: data.get(f) for f in TEMPLATED if data.get(f) is not None}, allowed)


def _secrets(data: Mapping[str, Any]) -> dict[str, Any]:
    return optional(data, "secrets", dict, {})


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    validate(data)
    secrets = _secrets(data)
    values = {**secrets, "subject": "null" if message.subject is None else message.subject,
              "body": message.body, "name": data.get("name", "")}

    def fill(field: str, kind: type) -> Any:
        value = templating.apply(data.get(field), values)
        if value is None or value is templating.UNSET:
            return None
        if not isinstance(value, kind):
            raise ChannelConfigError(f"the channel's {field!r} has the wrong type after substitution")
        return value

    url = rebase(str(templating.apply(require(data, "url"), values)), ctx.base_url)
    if params := fill("params", dict):
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode({k: str(v) for k, v in params.items()})) if q)
        url = urlunsplit(parts._replace(query=query))

    headers: dict[str, str] = {"User-Agent": USER_AGENT}
    body = b""
    if (payload := fill("json_data", dict)) is not None:
        body, headers["Content-Type"] = json_body(payload), "application/json"
    elif isinstance(form := fill("form_data", (dict, str)), dict):
        body = urlencode({k: str(v) for k, v in form.items()}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif isinstance(form, str):
        body = form.encode()  # Prefect sends a string form body as it is, unescaped
    if cookies := fill("cookies", dict):
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    # The block's own headers win over ours (a user-agent of their own, say), as in httpx.
    for key, value in (fill("headers", dict) or {}).items():
        for existing in [h for h in headers if h.lower() == str(key).lower()]:
            del headers[existing]
        headers[str(key)] = str(value)

    secret = secrets.get(SIGNING_SECRET_KEY)
    headers |= signing.headers(secret if isinstance(secret, str) else None, str(ctx.delivery_id), ctx.now, body)
    timeout = optional(data, "timeout", (int, float))
    return [Request(data.get("method", "POST"), url, headers, body, timeout=timeout)]


KIND = ChannelKind("custom-webhook", build, secret_fields=("secrets.*",), aliases=("webhook",))
