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
from aiohttp import web

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
) -> Callable[[F], F]:
    """Record a handler's request body type, response type and status codes for the document.

    ``status`` is every success code answering with ``response``, the usual one first;
    ``errors`` maps other codes to when they happen (their body is Prefect's ``{"detail": ...}``);
    ``query`` maps query parameters to their types (required unless the type admits None).
    The handler is returned unchanged, so the decorator goes under the route's own.
    """
    operation = Operation(
        summary=summary, description=description, request=request, request_required=request_required,
        response=response, status=(status,) if isinstance(status, int) else tuple(status),
        errors=dict(errors or {}), query=dict(query or {}),
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
            if route.method != "HEAD":
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
        paths.setdefault(_PATH_PARAMETER.sub(r"{\1}", route.path), {})[route.method.lower()] = entry
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": _version(),
            "description": "runlog's HTTP API: the Prefect 3 REST API over an event log, and runlog's own "
            "extensions under /api/runlog.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }


def _types(operation: Operation) -> list[Any]:
    kinds = [operation.request, operation.response, *operation.query.values()]
    return [kind for kind in kinds if kind is not NO_BODY]


def _schemas(kinds: list[Any]) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """JSON Schemas for ``kinds`` (keyed by id of the type) and the components they refer to.

    msgspec cannot describe some types (a field whose default it cannot encode, such as a
    msgspec.Raw); such a type is described generically, so one type never costs the document."""
    unique = list({id(kind): kind for kind in kinds}.values())
    describable = [kind for kind in unique if _describable(kind)]
    failed = [kind for kind in unique if not _describable(kind)]
    generated, components = msgspec.json.schema_components(describable, ref_template=REF_TEMPLATE)
    schemas = {id(kind): schema for kind, schema in zip(describable, generated, strict=True)}
    for kind in failed:
        schemas[id(kind)] = {"description": f"{_type_name(kind)} (its schema could not be generated)"}
    return schemas, components


@functools.cache
def _describable(kind: Any) -> bool:
    """Whether msgspec can describe ``kind`` (asked once per type: it costs a schema)."""
    try:
        msgspec.json.schema_components([kind], ref_template=REF_TEMPLATE)
    except (TypeError, ValueError):
        return False
    return True


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
            responses[str(code)]["content"] = {"application/json": {"schema": schemas[id(operation.response)]}}
    errors = dict(operation.errors)
    if operation.request is not NO_BODY or operation.query:
        errors.setdefault(422, "The request does not match its schema")
    for code, when in sorted(errors.items()):
        responses[str(code)] = {
            "description": when,
            "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(name="ErrorDetail")}}},
        }
    entry["responses"] = responses
    return entry


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
    # runlog's path ids are UUIDs (a handler answers 422 or 404 for anything else).
    schema = {"type": "string", "format": "uuid"} if name == "id" or name.endswith("_id") else {"type": "string"}
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
