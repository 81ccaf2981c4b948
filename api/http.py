"""Request decoding and response encoding shared by every route module.

Bodies are decoded straight into msgspec structs; a malformed or mistyped body raises
msgspec's errors, which the error middleware turns into a 422 naming the offending field.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

import msgspec
from aiohttp import web

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class NotFound(web.HTTPNotFound):
    """A 404 with Prefect's body shape: {"detail": "..."}."""

    def __init__(self, detail: str) -> None:
        super().__init__(text=_encoder.encode({"detail": detail}).decode(), content_type="application/json")


class Unprocessable(web.HTTPUnprocessableEntity):
    def __init__(self, detail: str) -> None:
        super().__init__(text=_encoder.encode({"detail": detail}).decode(), content_type="application/json")


async def decode_body(request: web.Request, kind: type[T], *, default: T | None = None) -> T:
    """Decode the JSON body into ``kind``; an empty body gives ``default`` when one is given."""
    body = await request.read()
    if not body.strip() and default is not None:
        return default
    try:
        return msgspec.json.decode(body, type=kind)
    except (UnicodeDecodeError, RecursionError) as exc:
        # msgspec lets these two through as they are (bytes that are not UTF-8, nesting
        # deeper than it recurses); they are malformed bodies all the same, so a 422, not a 500.
        raise msgspec.DecodeError(f"JSON is malformed: {exc}") from None


def path_uuid(request: web.Request, name: str = "id") -> UUID:
    raw = request.match_info[name]
    try:
        return UUID(raw)
    except ValueError:
        raise Unprocessable(f"path parameter {name!r} is not a valid UUID: {raw!r}") from None


def query_uuid(request: web.Request, name: str) -> UUID:
    """A required UUID query parameter, or a 422 naming it."""
    raw = request.query.get(name)
    if raw is None:
        raise Unprocessable(f"query parameter {name!r} is required")
    try:
        return UUID(raw)
    except ValueError:
        raise Unprocessable(f"query parameter {name!r} is not a valid UUID: {raw!r}") from None


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status)
