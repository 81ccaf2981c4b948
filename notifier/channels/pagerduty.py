"""PagerDuty Events API v2 (block type ``pager-duty-webhook``), US or EU region.

The routing (integration) key goes in the body; no auth header is needed (the block's
``api_key`` is a REST key the Events API does not use). Every event carries a ``dedup_key``:
retries update the same alert instead of opening more, and a resolve with the same key closes
it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    JSON_HEADERS, USER_AGENT, ChannelKind, Context, Message, Request, classify_with_ref, json_body,
    optional, regional, require, truncate, vendor_url,
)

BASE_URLS = {"us": "https://events.pagerduty.com", "eu": "https://events.eu.pagerduty.com"}
# apprise's mapping of Prefect's notify_type to PagerDuty severities.
SEVERITIES = {"info": "info", "success": "info", "warning": "warning", "failure": "critical"}
BODY_DETAIL = "Prefect Notification Body"  # the custom_details key Prefect's block uses
# PagerDuty's limits; the whole event must stay under 512 KB and the body is its only
# unbounded part.
SUMMARY_LIMIT, DEDUP_KEY_LIMIT, DETAILS_LIMIT = 1024, 255, 400_000


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    event: dict[str, Any] = {
        "routing_key": require(data, "integration_key"),
        "event_action": "resolve" if ctx.resolve else "trigger",
        "dedup_key": truncate(ctx.key, DEDUP_KEY_LIMIT),
        "client": USER_AGENT,
    }
    if not ctx.resolve:
        details = {str(k): str(v) for k, v in (optional(data, "custom_details", dict) or {}).items()}
        summary = message.subject or message.body.strip().partition("\n")[0] or message.body
        if message.subject:
            details[BODY_DETAIL] = truncate(message.body, DETAILS_LIMIT)
        payload: dict[str, Any] = {
            "summary": truncate(summary, SUMMARY_LIMIT),
            "source": optional(data, "source", str) or "Prefect",
            "severity": SEVERITIES.get(optional(data, "notify_type", str, "info"), "info"),
            "timestamp": ctx.now.isoformat(),
            "component": optional(data, "component", str) or "Notification",
        }
        if group := optional(data, "group", str):
            payload["group"] = group
        if class_id := optional(data, "class_id", str):
            payload["class"] = class_id
        if details:
            payload["custom_details"] = details
        event["payload"] = payload
        if link := optional(data, "clickable_url", str):
            event["links"] = [{"href": link}]
    return [Request("POST", vendor_url(regional(BASE_URLS, data), "/v2/enqueue", ctx), JSON_HEADERS, json_body(event))]


KIND = ChannelKind("pager-duty-webhook", build, secret_fields=("integration_key", "api_key"),
                   classify=classify_with_ref("dedup_key"), resolvable=True, vendor_host=BASE_URLS["us"],
                   aliases=("pagerduty",))
