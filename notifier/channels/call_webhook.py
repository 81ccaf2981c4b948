"""Prefect's ``webhook`` block (prefect/blocks/webhook.py: ``method``, ``url``, ``headers``), as
the call-webhook action calls it: the rendered payload sent as the body, as it is, with the
block's method and headers (its secret fields are ``url`` and ``headers.*``).

Not a notification channel (it is not in ``KINDS``, so ``runlog channel`` does not list it);
the dispatcher sends a call-webhook action's delivery through it, with the retries every
channel has, where Prefect makes one call and reports whatever answer as executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import ChannelConfigError, ChannelKind, Context, Message, Request, optional, require

SLUG = "webhook"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    method = optional(data, "method", str, "POST")
    if method not in METHODS:
        raise ChannelConfigError(f"the webhook's 'method' must be one of {', '.join(METHODS)}")
    headers = {str(k): str(v) for k, v in optional(data, "headers", dict, {}).items()}
    return [Request(method, require(data, "url"), headers, message.body.encode())]


KIND = ChannelKind(SLUG, build, secret_fields=("url", "headers.*"))
