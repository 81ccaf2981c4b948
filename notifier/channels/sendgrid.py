"""SendGrid v3 mail/send (block type ``sendgrid-email``): one request, one personalization per
recipient (so no recipient sees the others), plain text. Success is 202 with the message id in
``X-Message-Id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    DEFAULT_SUBJECT, JSON_HEADERS, ChannelConfigError, ChannelKind, Context, Message, Outcome,
    Request, Response, Verdict, classify, json_body, require, truncate, vendor_url,
)

BASE_URL = "https://api.sendgrid.com"
SUBJECT_LIMIT = 998  # the longest line RFC 5322 allows in a header
BODY_LIMIT = 1_000_000  # SendGrid takes 20 MB; an alert needs far less


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    recipients = require(data, "to_emails", list)
    if not recipients or not all(isinstance(r, str) and r for r in recipients):
        raise ChannelConfigError("the channel's 'to_emails' must list e-mail addresses")
    mail = {
        "personalizations": [{"to": [{"email": r}]} for r in recipients],
        "from": {"email": require(data, "sender_email")},
        "subject": truncate((message.subject or DEFAULT_SUBJECT).replace("\n", " "), SUBJECT_LIMIT),
        "content": [{"type": "text/plain", "value": truncate(message.body, BODY_LIMIT)}],
    }
    headers = {**JSON_HEADERS, "Authorization": f"Bearer {require(data, 'api_key')}"}
    return [Request("POST", vendor_url(BASE_URL, "/v3/mail/send", ctx), headers, json_body(mail))]


def _sent(response: Response) -> Verdict:
    return Verdict(Outcome.SENT, provider_ref=response.headers.get("X-Message-Id"))


KIND = ChannelKind("sendgrid-email", build, secret_fields=("api_key",),
                   classify=lambda response: classify(response, sent=_sent), vendor_host=BASE_URL, aliases=("sendgrid",))
