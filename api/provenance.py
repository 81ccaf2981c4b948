"""Who a request creates things for: Prefect's ``created_by`` of a flow run, read from the
headers its automations send (``Prefect-Automation-ID`` and the base64 of the automation's name
in ``Prefect-Automation-Name``), and the guard that keeps a client from setting it (or
``auto_scheduled``) in a body where Prefect forbids both."""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.commands.flow_runs import created_by_automation

AUTOMATION_ID = "Prefect-Automation-ID"
AUTOMATION_NAME = "Prefect-Automation-Name"

SERVER_ONLY = ("auto_scheduled", "created_by")
"""Fields of a run the server sets; Prefect's FlowRunCreate has neither and refuses extra fields."""


class _ServerOnly(msgspec.Struct):
    auto_scheduled: Any = msgspec.UNSET
    created_by: Any = msgspec.UNSET


def created_by(request: web.Request) -> dict[str, Any] | None:
    """The automation that made this request, as Prefect's get_created_by reads it: both
    headers needed, the name base64 and non-empty once decoded, else None. An id that is not
    a UUID is refused, as FastAPI refuses Prefect's UUID-typed header."""
    raw_id, raw_name = request.headers.get(AUTOMATION_ID), request.headers.get(AUTOMATION_NAME)
    if not raw_id or not raw_name:
        return None
    try:
        automation_id = UUID(raw_id)
    except ValueError:
        raise msgspec.ValidationError(f"Header {AUTOMATION_ID} must be a UUID, got {raw_id!r}") from None
    try:
        name = b64decode(raw_name.encode()).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return created_by_automation(automation_id, name) if name else None


async def refuse_server_only_fields(request: web.Request) -> None:
    """Raise a ValidationError (422) when the body names ``auto_scheduled`` or ``created_by``
    at its top level. The body is decoded again only when one of the names appears in it."""
    body = await request.read()
    if not any(f'"{name}"'.encode() in body for name in SERVER_ONLY):
        return
    sent = msgspec.json.decode(body, type=_ServerOnly)
    for name in SERVER_ONLY:
        if getattr(sent, name) is not msgspec.UNSET:
            raise msgspec.ValidationError(f"Object contains unknown field `{name}` - at `$`")
