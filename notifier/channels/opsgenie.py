"""Opsgenie Alert API v2 (block type ``opsgenie-webhook``), US or EU region.

The alert's ``alias`` is Opsgenie's deduplication key: one open alert per alias. It is the
block's own ``alias`` when set (Prefect's meaning: every notification joins one alert), else the
context's alert key, so a retry never opens a second alert and a resolve can close this one
(``POST /v2/alerts/{alias}/close?identifierType=alias``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .base import (
    JSON_HEADERS, USER_AGENT, ChannelKind, Context, Message, Request, classify_with_ref, json_body,
    optional, regional, require, truncate, vendor_url,
)

BASE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
MESSAGE_LIMIT = 130
DESCRIPTION_LIMIT = 15_000
ALIAS_LIMIT = 512
NOTE_LIMIT = 25_000
# Prefect's block names responders by these fields; Opsgenie by (type, name or username).
_RESPONDERS = (("target_user", "user", "username"), ("target_team", "team", "name"),
               ("target_schedule", "schedule", "name"), ("target_escalation", "escalation", "name"))


def alias(data: Mapping[str, Any], ctx: Context) -> str:
    return truncate(optional(data, "alias", str) or ctx.key, ALIAS_LIMIT)


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    headers = {**JSON_HEADERS, "Authorization": f"GenieKey {require(data, 'apikey')}"}
    if ctx.resolve:
        path = f"/v2/alerts/{quote(alias(data, ctx), safe='')}/close?identifierType=alias"
        note = {"source": USER_AGENT, "note": truncate(message.body, NOTE_LIMIT)}
        return [Request("POST", vendor_url(regional(BASE_URLS, data), path, ctx), headers, json_body(note))]

    title = message.subject or message.body.strip().partition("\n")[0]
    body: dict[str, Any] = {
        "message": truncate(title, MESSAGE_LIMIT),
        "alias": alias(data, ctx),
        "description": truncate(message.body, DESCRIPTION_LIMIT),
        "source": USER_AGENT,
    }
    responders = [
        {"type": kind, key: str(name)}
        for field, kind, key in _RESPONDERS
        for name in optional(data, field, list, [])
    ]
    if responders:
        body["responders"] = responders
    if tags := optional(data, "tags", list):
        body["tags"] = [str(t) for t in tags]
    priority = optional(data, "priority", int)
    if priority is not None and 1 <= priority <= 5:
        body["priority"] = f"P{priority}"
    if entity := optional(data, "entity", str):
        body["entity"] = entity
    if details := optional(data, "details", dict):
        body["details"] = {str(k): str(v) for k, v in details.items()}
    return [Request("POST", vendor_url(regional(BASE_URLS, data), "/v2/alerts", ctx), headers, json_body(body))]


# 202: accepted for asynchronous processing; requestId is Opsgenie's handle on it.
KIND = ChannelKind("opsgenie-webhook", build, secret_fields=("apikey",),
                   classify=classify_with_ref("requestId"), resolvable=True, vendor_host=BASE_URLS["us"],
                   aliases=("opsgenie",))
