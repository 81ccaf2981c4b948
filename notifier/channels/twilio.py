"""Twilio SMS through the Messages API (block type ``twilio-sms``): form-encoded, HTTP Basic
auth with the account SID and auth token, one request per recipient. Success is 201 with the
message's ``sid``; Twilio never processes a request it answered 429, so that is safe to retry."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from .base import (
    USER_AGENT, ChannelConfigError, ChannelKind, Context, Message, Request, classify_with_ref,
    joined, require, truncate, vendor_url,
)

BASE_URL = "https://api.twilio.com"
BODY_LIMIT = 1600  # Twilio refuses longer message bodies


def e164(number: str) -> str:
    """A phone number as Twilio wants it: +digits. Prefect's examples omit the '+'."""
    digits = "".join(c for c in number if c.isdigit())
    if not digits:
        raise ChannelConfigError("the channel has a phone number without digits")
    return "+" + digits


def build(data: Mapping[str, Any], message: Message, ctx: Context) -> list[Request]:
    sid = require(data, "account_sid")
    credential = base64.b64encode(f"{sid}:{require(data, 'auth_token')}".encode()).decode()
    headers = {
        "Authorization": f"Basic {credential}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    url = vendor_url(BASE_URL, f"/2010-04-01/Accounts/{quote(sid, safe='')}/Messages.json", ctx)
    sender = e164(require(data, "from_phone_number"))
    text = truncate(joined(message), BODY_LIMIT)
    recipients = require(data, "to_phone_numbers", list)
    return [
        Request("POST", url, headers, urlencode({"To": number, "From": sender, "Body": text}).encode(),
                secrets=(credential,), part=f"to:{number}")
        for number in (e164(str(to)) for to in recipients)
    ]


KIND = ChannelKind("twilio-sms", build, secret_fields=("auth_token",), classify=classify_with_ref("sid"),
                   vendor_host=BASE_URL, aliases=("twilio",))
