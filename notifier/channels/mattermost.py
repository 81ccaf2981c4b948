"""Mattermost incoming webhooks (block type ``mattermost-webhook``): the URL is built from the
block's host, port, ``secure`` flag, path and token, and one request goes to each listed
channel (as apprise does), or one to the webhook's own channel when none is listed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .base import (
    JSON_HEADERS, ChannelKind, ChannelConfigError, Context, Message, Request, joined, json_body,
    optional, rebase, require, truncate,
)

TEXT_LIMIT = 4000  # Mattermost splits longer webhook posts; apprise caps them here
DEFAULT_PORT = 8065  # Prefect's block default (and `secure` defaults to False: plain HTTP)


def webhook_url(data: Mapping[str, Any]) -> str:
    host = require(data, "hostname")
    if any(c in host for c in "/?#@ "):
        raise ChannelConfigError("the channel's 'hostname' must be a bare host name")
    port = optional(data, "port", int, DEFAULT_PORT)
    scheme = "https" if data.get("secure") else "http"
    path = (optional(data, "path", str, "") or "").strip("/")
    prefix = f"/{quote(path)}" if path else ""
    return f"{scheme}://{host}:{port}{prefix}/hooks/{quote(require(data, 'token'), safe='')}"


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    url = rebase(webhook_url(data), ctx.base_url)
    base: dict[str, Any] = {"text": truncate(joined(message), TEXT_LIMIT)}
    if botname := optional(data, "botname", str):
        base["username"] = botname
    channels = optional(data, "channels", list) or [None]
    return [
        Request("POST", url, JSON_HEADERS, json_body(base if channel is None else {**base, "channel": str(channel)}),
                part="" if channel is None else f"channel:{channel}")
        for channel in channels
    ]


KIND = ChannelKind("mattermost-webhook", build, secret_fields=("token",), aliases=("mattermost",))
