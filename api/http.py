"""Request decoding and response encoding shared by every route module.

Bodies are decoded straight into msgspec structs; a malformed or mistyped body raises
msgspec's errors, which the error middleware turns into a 422 naming the offending field.
Decoding is lax the way Prefect's (pydantic's lax mode) is: ``60.0`` or ``"60"`` is an int,
``"true"`` a bool, a number of seconds a datetime; a datetime without an offset is UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import msgspec.inspect as mi
from aiohttp import web

from runlog.commands.errors import Unprocessable as DomainUnprocessable

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


class NotFound(web.HTTPNotFound):
    """A 404 with Prefect's body shape: {"detail": "..."}."""

    def __init__(self, detail: str) -> None:
        super().__init__(text=_encoder.encode({"detail": detail}).decode(), content_type="application/json")


class BadRequest(web.HTTPBadRequest):
    """A 400 with Prefect's body shape: {"detail": "..."}."""

    def __init__(self, detail: str) -> None:
        super().__init__(text=_encoder.encode({"detail": detail}).decode(), content_type="application/json")


class Unprocessable(web.HTTPUnprocessableEntity):
    def __init__(self, detail: str) -> None:
        super().__init__(text=_encoder.encode({"detail": detail}).decode(), content_type="application/json")


async def decode_body(request: web.Request, kind: type[T], *, default: T | None = None, nul: bool = False) -> T:
    """Decode the JSON body into ``kind``; an empty body gives ``default`` when one is given.

    A body of only whitespace is not empty: it is malformed JSON, as Prefect answers it. A
    string holding U+0000 is refused (PostgreSQL can store it in no text or JSON column, so
    both backends refuse it alike) unless ``nul`` is set by a route that stores it safely.
    """
    body = await request.read()
    if not body and default is not None:
        return default
    try:
        value = msgspec.json.decode(body, type=kind, strict=False)
    except (UnicodeDecodeError, RecursionError) as exc:
        # msgspec lets these two through as they are (bytes that are not UTF-8, nesting
        # deeper than it recurses); they are malformed bodies all the same, so a 422, not a 500.
        raise msgspec.DecodeError(f"JSON is malformed: {exc}") from None
    if not nul and b"\\u0000" in body:
        _refuse_nul(body)
    fix = _utc_fixer(kind)
    return value if fix is None else fix(value)


def _refuse_nul(body: bytes) -> None:
    """Raise a ValidationError naming where the first U+0000 is, if there is one (the escape
    may also have been an escaped backslash followed by "u0000", which is no NUL)."""
    path = _nul_path(msgspec.json.decode(body), "$")
    if path is not None:
        raise msgspec.ValidationError(f"text must not contain NUL characters (\\u0000) - at `{path}`")


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return path
            found = _nul_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


Fixer = Callable[[Any], Any]


@functools.cache
def _utc_fixer(kind: Any) -> Fixer | None:
    """A function giving every naive datetime inside a decoded ``kind`` the UTC offset, as
    Prefect reads them; None when ``kind`` holds no datetime. Planned once per type, so a body
    costs only the attribute reads that can hold a datetime."""
    return _fixer(mi.type_info(kind), set())


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _fixer(t: mi.Type, seen: set[type]) -> Fixer | None:
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.DateTimeType):
        return _as_utc
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return None  # a recursive type: its outer level is fixed already
        seen.add(t.cls)
        fields = [(f.name, fx) for f in t.fields if (fx := _fixer(f.type, seen)) is not None]
        seen.discard(t.cls)
        if not fields:
            return None

        def fix_struct(value: Any) -> Any:
            for name, fx in fields:
                item = getattr(value, name)
                if item is None:
                    continue  # an optional field left out (most are): nothing to fix, no call
                fixed = fx(item)
                if fixed is not item:
                    setattr(value, name, fixed)
            return value

        return fix_struct
    if isinstance(t, tuple(_COLLECTIONS)):
        item_fx = _fixer(t.item_type, seen)
        if item_fx is None:
            return None
        make = _COLLECTIONS[type(t)]
        return lambda value: make(item_fx(item) for item in value)
    if isinstance(t, mi.DictType):
        value_fx = _fixer(t.value_type, seen)
        if value_fx is None:
            return None
        return lambda value: {k: value_fx(v) for k, v in value.items()}
    if isinstance(t, mi.UnionType):
        options = [(_python_type(sub), fx) for sub in t.types if (fx := _fixer(sub, seen)) is not None]
        if not options:
            return None

        def fix_union(value: Any) -> Any:
            for cls, fx in options:
                if isinstance(value, cls):
                    return fx(value)
            return value

        return fix_union
    return None


_COLLECTIONS: dict[type, type] = {mi.ListType: list, mi.SetType: set, mi.FrozenSetType: frozenset, mi.VarTupleType: tuple}


def _python_type(t: mi.Type) -> type:
    """What a decoded value of a union member that can hold a datetime is an instance of."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.DateTimeType):
        return datetime
    if isinstance(t, mi.StructType):
        return t.cls
    return dict if isinstance(t, mi.DictType) else _COLLECTIONS[type(t)]


def path_uuid(request: web.Request, name: str = "id") -> UUID:
    raw = request.match_info[name]
    try:
        return UUID(raw)
    except ValueError:
        raise Unprocessable(f"path parameter {name!r} is not a valid UUID: {raw!r}") from None


def query_uuid(request: web.Request, name: str, *, required: bool = True) -> UUID:
    """A UUID query parameter, or a 422 naming it (None when absent and not ``required``)."""
    raw = request.query.get(name)
    if raw is None:
        if not required:
            return None  # type: ignore[return-value]
        raise Unprocessable(f"query parameter {name!r} is required")
    try:
        return UUID(raw)
    except ValueError:
        raise Unprocessable(f"query parameter {name!r} is not a valid UUID: {raw!r}") from None


def query_int(request: web.Request, name: str, low: int, high: int, default: int | None = None) -> int | None:
    """An integer query parameter within [LOW, HIGH], DEFAULT when absent or empty, or a 422 naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Unprocessable(f"query parameter {name!r} is not a number: {raw!r}") from None
    if not low <= value <= high:
        raise Unprocessable(f"query parameter {name!r} must be between {low} and {high}; got {value}")
    return value


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def empty_response(status: int = 204) -> web.Response:
    return web.Response(status=status)


def page_limit(value: int | None, default: int) -> int:
    """Prefect's LimitBody: null means the default, which is also the largest accepted value;
    anything outside 0..default is refused (422 through the error middleware)."""
    if value is None:
        return default
    if value < 0:
        raise DomainUnprocessable("Invalid limit: must be greater than or equal to 0.")
    if value > default:
        raise DomainUnprocessable(f"Invalid limit: must be less than or equal to {default}.")
    return value


def present(value: T | None, detail: str) -> T:
    """``value``, found; a read or write that found nothing answers 404 with ``detail``."""
    if value is None:
        raise NotFound(detail)
    return value


def no_content(found: bool, detail: str) -> web.Response:
    """204 for a write that found what it was to change; 404 with ``detail`` when it did not."""
    if not found:
        raise NotFound(detail)
    return empty_response()


def sent_fields(body: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body sent (UNSET ones left out); an explicit null stays, and sets the
    field to null, as in Prefect."""
    return {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
