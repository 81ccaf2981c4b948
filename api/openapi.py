"""The OpenAPI 3.1 document of runlog's HTTP API, built from the routes themselves.

A handler declares what it reads and answers with ``@documented(...)`` next to its route; the
document walks the app's routers (sub-apps included, so paths are the public ones) and turns
those declarations into operations, with the JSON Schemas msgspec generates from the very types
the handlers decode and encode. A route without a declaration still appears, described as such.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi
from aiohttp import hdrs, web

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{name}"

NO_BODY: Any = object()
"""``response=NO_BODY`` (the default): the answer has no body. ``response=None`` is JSON null."""

UNDOCUMENTED = "Not described in runlog's API document yet; Prefect's REST API reference has its shape."

_ATTRIBUTE = "__runlog_openapi__"
_PATH_PARAMETER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")

F = TypeVar("F", bound=Callable[..., Any])


class ErrorDetail(msgspec.Struct):
    """Every error body: Prefect's shape, with a message (or msgspec's path and message) as detail."""

    detail: Any


@dataclasses.dataclass(frozen=True, kw_only=True)
class Operation:
    """What one handler declares about itself; see ``documented``."""

    summary: str
    description: str | None = None
    request: Any = NO_BODY
    request_required: bool = True
    response: Any = NO_BODY
    status: tuple[int, ...] = (200,)
    errors: Mapping[int, str] = dataclasses.field(default_factory=dict)
    query: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    media_type: str = "application/json"


def documented(
    *,
    summary: str,
    description: str | None = None,
    request: Any = NO_BODY,
    request_required: bool = True,
    response: Any = NO_BODY,
    status: int | tuple[int, ...] = 200,
    errors: Mapping[int, str] | None = None,
    query: Mapping[str, Any] | None = None,
    media_type: str = "application/json",
) -> Callable[[F], F]:
    """Record a handler's request body type, response type and status codes for the document.

    ``status`` is every success code answering with ``response``, the usual one first;
    ``errors`` maps other codes to when they happen (their body is Prefect's ``{"detail": ...}``);
    ``query`` maps query parameters to their types (required unless the type admits None);
    ``media_type`` is the success answer's (JSON unless said otherwise, e.g. JSON lines).
    The handler is returned unchanged, so the decorator goes under the route's own.
    """
    operation = Operation(
        summary=summary, description=description, request=request, request_required=request_required,
        response=response, status=(status,) if isinstance(status, int) else tuple(status),
        errors=dict(errors or {}), query=dict(query or {}), media_type=media_type,
    )

    def record(handler: F) -> F:
        setattr(handler, _ATTRIBUTE, operation)
        return handler

    return record


def declared(handler: Callable[..., Any]) -> Operation | None:
    return getattr(handler, _ATTRIBUTE, None)


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str  # public, as clients call it: /api/flow_runs/{id}
    handler: Callable[..., Any]


def public_routes(app: web.Application) -> Iterator[Route]:
    """Every route of ``app`` and its sub-apps, in registration order, without aiohttp's implicit
    HEAD twins of GET routes. A sub-app's resources already carry its prefix."""
    for resource in app.router.resources():
        info = resource.get_info()
        if isinstance(info.get("app"), web.Application):
            yield from public_routes(info["app"])
            continue
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path += "/{filename}"
        for route in resource:
            # HEAD twins of GET routes are implicit; a route for any method ("*") is the 405
            # a fixed path answers to the methods it does not serve (see api/routing.py).
            if route.method not in ("HEAD", hdrs.METH_ANY):
                yield Route(route.method, path, route.handler)


def build_document(app: web.Application, *, title: str = "runlog") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route reachable through ``app``'s router."""
    routes = [(route, declared(route.handler)) for route in public_routes(app)]
    schemas, components = _schemas([t for _, op in routes if op is not None for t in _types(op)] + [ErrorDetail])
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route, operation in routes:
        entry = _operation(route, operation, schemas) if operation else _undocumented(route)
        entry["operationId"] = _operation_id(route, operation_ids)
        path_parameters = [_path_parameter(name) for name in _PATH_PARAMETER.findall(route.path)]
        if path_parameters:
            entry["parameters"] = path_parameters + entry.get("parameters", [])
        if operation and any(p["schema"].get("format") == "uuid" for p in path_parameters):
            entry["responses"].setdefault("422", _error_response("An id in the path that is not a UUID"))
        paths.setdefault(_PATH_PARAMETER.sub(r"{\1}", route.path), {})[route.method.lower()] = entry
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": _version(),
            "description": "runlog's HTTP API: the Prefect 3 REST API over an event log, and runlog's own "
            "extensions under /api/runlog. A string holding U+0000 is refused with 422 anywhere but in "
            "log lines (where it becomes U+FFFD) and events.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def _types(operation: Operation) -> list[Any]:
    kinds = [operation.request, operation.response, *operation.query.values()]
    return [kind for kind in kinds if kind is not NO_BODY]


def _schemas(kinds: list[Any]) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """JSON Schemas for ``kinds`` (keyed by id of the type) and the components they refer to.

    msgspec cannot put some defaults in a schema (a msgspec.Raw, say); such a struct is
    described by a twin without those defaults. A type that still cannot be described is
    described generically, so one type never costs the document."""
    unique = list({id(kind): kind for kind in kinds}.values())
    described = {id(kind): _describable_as(kind) for kind in unique}
    describable = [kind for kind in unique if described[id(kind)] is not None]
    failed = [kind for kind in unique if described[id(kind)] is None]
    twins = [described[id(kind)] for kind in describable]
    generated, components = msgspec.json.schema_components(twins, ref_template=REF_TEMPLATE)
    for twin, schema in zip(twins, generated, strict=True):
        _mark_datetimes(mi.type_info(twin), schema, components, set())
    schemas = {id(kind): schema for kind, schema in zip(describable, generated, strict=True)}
    for kind in failed:
        schemas[id(kind)] = {"description": f"{_type_name(kind)} (its schema could not be generated)"}
    return schemas, components


@functools.cache
def _describable_as(kind: Any) -> Any:
    """``kind``, or a struct's twin whose undescribable defaults are dropped (the fields stay
    optional), or the same for the items of a list of structs; None if neither works."""
    for candidate in (kind, _twin(kind)):
        if candidate is None:
            continue
        try:
            msgspec.json.schema_components([candidate], ref_template=REF_TEMPLATE)
        except (TypeError, ValueError):
            continue
        return candidate
    return None


def _twin(kind: Any) -> Any:
    if typing.get_origin(kind) is list and len(typing.get_args(kind)) == 1:
        item = _twin(typing.get_args(kind)[0])
        return None if item is None else list[item]  # type: ignore[valid-type]
    if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
        return None
    info = mi.type_info(kind)
    assert isinstance(info, mi.StructType)
    hints = typing.get_type_hints(kind, include_extras=True)
    fields: list[Any] = []
    for field in info.fields:
        if field.required:
            fields.append((field.name, hints[field.name]))
            continue
        if field.default is mi.NODEFAULT:
            default = msgspec.field(name=field.encode_name, default_factory=field.default_factory)
        else:
            try:
                msgspec.to_builtins(field.default)
                default = msgspec.field(name=field.encode_name, default=field.default)
            except TypeError:  # still optional, with no default the document can show
                default = msgspec.field(name=field.encode_name, default_factory=lambda: None)
        fields.append((field.name, hints[field.name], default))
    return msgspec.defstruct(
        kind.__name__, fields, kw_only=True, forbid_unknown_fields=info.forbid_unknown_fields,
        module=kind.__module__,
    )


def _mark_datetimes(t: mi.Type, schema: dict[str, Any], components: dict[str, Any], done: set[str]) -> None:
    """Declare every datetime ``format: date-time``, walking the type beside its schema.

    msgspec writes a datetime that may be naive as a plain string; runlog reads a naive one as
    UTC (api/http.py) and always answers with an offset, so the value is an RFC 3339 date-time
    either way, and a client (or a generator of test requests) needs to know it is one."""
    while isinstance(t, mi.Metadata):
        t = t.type
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_TEMPLATE.format(name="")):
        name = ref.removeprefix(REF_TEMPLATE.format(name=""))
        if name in done or name not in components:
            return
        done.add(name)
        schema = components[name]
    if isinstance(t, mi.DateTimeType):
        if schema.get("type") == "string":
            schema.setdefault("format", "date-time")
    elif isinstance(t, mi.StructType):
        properties = schema.get("properties", {})
        for field in t.fields:
            if field.encode_name in properties:
                _mark_datetimes(field.type, properties[field.encode_name], components, done)
    elif isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        if isinstance(schema.get("items"), dict):
            _mark_datetimes(t.item_type, schema["items"], components, done)
    elif isinstance(t, mi.DictType):
        if isinstance(schema.get("additionalProperties"), dict):
            _mark_datetimes(t.value_type, schema["additionalProperties"], components, done)
    elif isinstance(t, mi.UnionType):
        # A plain-string option is the datetime's only when no str shares the union.
        options = schema.get("anyOf", [])
        members = [m.type if isinstance(m, mi.Metadata) else m for m in t.types]
        if any(isinstance(m, mi.DateTimeType) for m in members) and not any(isinstance(m, mi.StrType) for m in members):
            for option in options:
                if option == {"type": "string"}:
                    option["format"] = "date-time"
        for member in members:
            if not isinstance(member, mi.DateTimeType):
                for option in options:
                    if _same_shape(member, option, components):
                        _mark_datetimes(member, option, components, done)


def _same_shape(t: mi.Type, schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Whether ``schema`` (one option of a union's anyOf) is the schema of ``t``."""
    if isinstance(t, mi.StructType):
        # A component's title is its class's name, also when its key had to be qualified.
        name = str(schema.get("$ref", "")).removeprefix(REF_TEMPLATE.format(name=""))
        return components.get(name, {}).get("title") == t.cls.__name__
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return schema.get("type") == "array"
    if isinstance(t, mi.DictType):
        return schema.get("type") == "object"
    return False


def _operation(route: Route, operation: Operation, schemas: dict[int, dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"tags": [_tag(route)], "summary": operation.summary}
    description = operation.description or _docstring(route.handler)
    if description:
        entry["description"] = description
    if operation.query:
        entry["parameters"] = [
            {"name": name, "in": "query", "required": not _admits_none(kind), "schema": schemas[id(kind)]}
            for name, kind in operation.query.items()
        ]
    if operation.request is not NO_BODY:
        entry["requestBody"] = {
            "required": operation.request_required,
            "content": {"application/json": {"schema": schemas[id(operation.request)]}},
        }
    responses: dict[str, Any] = {}
    for code in operation.status:
        responses[str(code)] = {"description": HTTPStatus(code).phrase}
        if operation.response is not NO_BODY:
            responses[str(code)]["content"] = {operation.media_type: {"schema": schemas[id(operation.response)]}}
    errors = dict(operation.errors)
    if operation.request is not NO_BODY or operation.query:
        errors.setdefault(422, "The request does not match its schema")
    for code, when in sorted(errors.items()):
        responses[str(code)] = _error_response(when)
    entry["responses"] = responses
    return entry


def _error_response(when: str) -> dict[str, Any]:
    return {
        "description": when,
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(name="ErrorDetail")}}},
    }


def _undocumented(route: Route) -> dict[str, Any]:
    name = getattr(route.handler, "__name__", "handler")
    return {
        "tags": [_tag(route)],
        "summary": name.replace("_", " ").capitalize(),
        "description": _docstring(route.handler) or UNDOCUMENTED,
        "responses": {"default": {"description": UNDOCUMENTED}},
    }


def _operation_id(route: Route, taken: set[str]) -> str:
    """The handler's name; qualified by its module, then numbered, if another route has it."""
    name = getattr(route.handler, "__name__", route.method.lower())
    chosen, n = name, 1
    while chosen in taken:
        n += 1
        chosen = f"{_tag(route)}_{name}" if n == 2 else f"{_tag(route)}_{name}_{n}"
    taken.add(chosen)
    return chosen


def _path_parameter(name: str) -> dict[str, Any]:
    # runlog's path ids are UUIDs (a handler answers 422, as Prefect does, or 404 for anything else).
    schema: dict[str, Any] = {"type": "string", "format": "uuid"}
    if not (name == "id" or name.endswith("_id")):
        schema = {"type": "string", "minLength": 1}  # an empty segment is another path
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _tag(route: Route) -> str:
    """The route's module: one module per resource, like Prefect's API."""
    return getattr(route.handler, "__module__", "").rsplit(".", 1)[-1] or "default"


def _docstring(handler: Callable[..., Any]) -> str | None:
    doc = getattr(handler, "__doc__", None)
    return " ".join(doc.split()) if doc else None


def _admits_none(kind: Any) -> bool:
    if kind is None or kind is type(None) or kind is Any:
        return True
    return typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in typing.get_args(kind)


def _type_name(kind: Any) -> str:
    return kind.__qualname__ if isinstance(kind, type) else repr(kind)


def _version() -> str:
    try:
        return importlib.metadata.version("runlog")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
