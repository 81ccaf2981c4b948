"""Microsoft Teams through a Workflows (Power Automate) URL (block type ``ms-teams-webhook``):
an adaptive card in a ``message`` envelope. 200 or 202 is success (202 only means the flow
accepted it; it runs asynchronously)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .base import (
    JSON_HEADERS, ChannelConfigError, ChannelKind, Context, Message, Request, json_body, rebase, require,
    truncate_bytes,
)

# Teams refuses messages over 28 KB; the card's envelope and title take a little of that.
BODY_LIMIT_BYTES = 24_000
TITLE_LIMIT_BYTES = 1_000
RETIRED_HOST = "webhook.office.com"


def card(message: Message, *, wrap: bool = True) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if message.subject:
        body.append({
            "type": "TextBlock", "text": truncate_bytes(message.subject, TITLE_LIMIT_BYTES),
            "style": "heading", "weight": "Bolder", "size": "Large", "wrap": wrap,
        })
    body.append({"type": "TextBlock", "text": truncate_bytes(message.body, BODY_LIMIT_BYTES), "wrap": wrap})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "full"},
    }


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    url = require(data, "url")
    if (urlsplit(url).hostname or "").endswith(RETIRED_HOST):
        # Microsoft retired Office 365 connector webhooks; Prefect's block refuses them too.
        raise ChannelConfigError("the channel's 'url' is an Office 365 connector URL; use a Workflows URL")
    url = rebase(url, ctx.base_url)
    wrap = data.get("wrap", True) is not False
    envelope = {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": card(message, wrap=wrap),
        }],
    }
    return [Request("POST", url, JSON_HEADERS, json_body(envelope))]


KIND = ChannelKind("ms-teams-webhook", build, secret_fields=("url",),
                   aliases=("teams", "microsoft-teams-webhook"))
