"""Discord webhooks (block type ``discord-webhook``): ``?wait=true`` so that a 200 with the
saved message proves delivery (without it Discord answers 204 even for a message it drops);
a 429 carries ``retry_after`` in its JSON body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .base import (
    JSON_HEADERS, ChannelKind, Context, Message, Outcome, Request, Response, Verdict,
    classify_with_ref, joined, json_body, optional, require, truncate, vendor_url,
)

BASE_URL = "https://discord.com"
CONTENT_LIMIT = 2000  # Discord's limit on `content`


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    hook_id = quote(require(data, "webhook_id"), safe="")
    token = quote(require(data, "webhook_token"), safe="")
    url = vendor_url(BASE_URL, f"/api/webhooks/{hook_id}/{token}?wait=true", ctx)
    body: dict[str, Any] = {"content": truncate(joined(message), CONTENT_LIMIT), "tts": bool(data.get("tts"))}
    if botname := optional(data, "botname", str):
        body["username"] = botname
    if avatar_url := optional(data, "avatar_url", str):
        body["avatar_url"] = avatar_url
    return [Request("POST", url, JSON_HEADERS, json_body(body))]


_common = classify_with_ref("id")


def _classify(response: Response) -> Verdict:
    verdict = _common(response)
    if response.status == 429:
        # The body's retry_after is Discord's own figure (a float, more precise than the header).
        body = response.json()
        after = body.get("retry_after") if isinstance(body, dict) else None
        if isinstance(after, (int, float)) and not isinstance(after, bool):
            return Verdict(Outcome.RETRY, max(0.0, float(after)), verdict.reason)
    return verdict


KIND = ChannelKind("discord-webhook", build, secret_fields=("webhook_id", "webhook_token"),
                   classify=_classify, vendor_host=BASE_URL, aliases=("discord",))
