"""Slack incoming webhooks (block type ``slack-webhook``): the message as a legacy attachment,
as apprise posts it for Prefect's block; success is a 200 whose body is ``ok``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    JSON_HEADERS, USER_AGENT, ChannelKind, Context, Message, Outcome, Request, Response, Verdict,
    classify, json_body, rebase, require, truncate,
)

# Slack cuts a message's text at 40,000 characters; the reference keeps a margin (~35 k) for
# the title and the attachment's other fields.
TEXT_LIMIT = 35_000
TITLE_LIMIT = 250
# apprise's colours per notify_type, which Prefect's block carries.
COLORS = {"info": "#3AA3E3", "success": "#3AA337", "warning": "#CACF29", "failure": "#A32037"}


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    url = rebase(require(data, "url"), ctx.base_url)
    attachment = {
        "title": truncate(message.subject or "", TITLE_LIMIT),
        "text": truncate(message.body, TEXT_LIMIT),
        "color": COLORS.get(data.get("notify_type") or "info", COLORS["info"]),
        "footer": USER_AGENT,
        "ts": int(ctx.now.timestamp()),
    }
    body = {"mrkdwn": True, "attachments": [attachment]}
    return [Request("POST", url, {**JSON_HEADERS, "Content-Type": "application/json; charset=utf-8"}, json_body(body))]


def _sent(response: Response) -> Verdict:
    # Slack answers 200 "ok"; anything else in a 200 is an error it chose to report in the body.
    if response.status == 200 and response.text().strip() == "ok":
        return Verdict(Outcome.SENT)
    return Verdict(Outcome.PERMANENT, None, f"HTTP {response.status} without 'ok' in the body")


KIND = ChannelKind("slack-webhook", build, secret_fields=("url",),
                   classify=lambda response: classify(response, sent=_sent), aliases=("slack",))
