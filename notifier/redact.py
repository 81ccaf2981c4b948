"""Keeping secrets out of what the notifier records: every error message and response excerpt
an attempt produces passes through one ``Redactor`` built from the channel's secret values.

Each secret is masked as written and in the encodings it travels in (URL-quoted, form-quoted,
JSON-escaped); a secret that is itself a URL (a Slack or Teams webhook URL) also has its path
segments and query values masked, since receivers echo those on their own. Strings shorter
than ``MIN_SECRET`` are not masked: they would garble every message and protect nothing.
URLs are shown only as ``scheme://host:port/…``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from runlog.eventstore.urls import MASK, mask_url

MIN_SECRET = 4
_MIN_URL_PART = 8  # path segments and query values of secret URLs worth masking on their own
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        found: set[str] = set()
        for secret in secrets:
            found.update(_forms(secret))
            found.update(_url_parts(secret))
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL.sub(lambda m: mask_url(m.group(0)), text) if "://" in text else text


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def _url_parts(secret: str) -> set[str]:
    if "://" not in secret:
        return set()
    try:
        parts = urlsplit(secret)
    except ValueError:
        return set()
    pieces = [seg for seg in parts.path.split("/") if len(seg) >= _MIN_URL_PART]
    pieces += [value for _, value in parse_qsl(parts.query) if len(value) >= _MIN_URL_PART]
    if parts.path:
        pieces.append(parts.path + ("?" + parts.query if parts.query else ""))
    return {form for piece in pieces for form in _forms(piece)}


def display_url(url: str) -> str:
    """Where a request went, without the path or query that may hold a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a malformed URL)"
    if not parts.scheme:
        return "(a relative URL)"
    return f"{parts.scheme}://{host}{port}/…"
