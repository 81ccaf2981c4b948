"""/block_types, /block_schemas, /block_documents and /block_capabilities: Prefect 3.8's blocks
API, with its routes, status codes and error details."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from runlog.commands import blocks as commands
from runlog.projections.blocks import TYPE_FIELDS, BlockDocument, BlockSchema, BlockTypeView

from .. import keys
from ..http import NotFound, Unprocessable, decode_body, empty_response, json_response, page_limit, path_uuid
from ..openapi import documented
from ..queries import blocks as queries
from ..schemas.blocks import (
    AnyId, BlockDocumentCountRequest, BlockDocumentFilter, BlockDocumentCreate, BlockDocumentFilterRequest, BlockDocumentUpdate,
    BlockSchemaCreate, BlockSchemaFilterRequest, BlockTypeCreate, BlockTypeFilterRequest, BlockTypeUpdate,
)

routes = web.RouteTableDef()

TYPE_NOT_FOUND = "Block type not found"
SCHEMA_NOT_FOUND = "Block schema not found"
DOCUMENT_NOT_FOUND = "Block document not found"

_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}
_SECRETS_QUERY = {"include_secrets": bool | None}


def include_secrets(request: web.Request) -> bool:
    """The ``include_secrets`` query parameter, read as FastAPI reads a bool (default false)."""
    raw = request.query.get("include_secrets")
    if raw is None:
        return False
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise Unprocessable(f"query parameter 'include_secrets' is not a valid boolean: {raw!r}")


def found(value: Any, detail: str) -> web.Response:
    """``value`` as JSON, or Prefect's 404 with ``detail`` when there is none."""
    if value is None:
        raise NotFound(detail)
    return json_response(value)


async def _cipher(request: web.Request):  # type: ignore[no-untyped-def]
    return await request.config_dict[keys.KEYRING].cipher(request.config_dict[keys.STORE])


# -- block types ------------------------------------------------------------------------------


@routes.post("/block_types/")
@documented(
    summary="Create a block type", request=BlockTypeCreate, response=BlockTypeView, status=201,
    errors={403: "A name beginning with 'Prefect' (reserved)", 409: "A block type with that name or slug exists"},
)
async def create_block_type(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockTypeCreate)
    details = {field: getattr(body, field) for field in TYPE_FIELDS}
    view = await commands.create_type(
        request.config_dict[keys.STORE], name=body.name, slug=body.slug, details=details,
        clock=request.config_dict[keys.CLOCK],
    )
    return json_response(view, status=201)


@routes.post("/block_types/filter")
@documented(summary="List block types", request=BlockTypeFilterRequest, request_required=False, response=list[BlockTypeView])
async def filter_block_types(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockTypeFilterRequest, default=BlockTypeFilterRequest())
    views = await queries.block_types(
        request.config_dict[keys.STORE], body.block_types, body.block_schemas,
        limit=page_limit(body.limit, queries.DEFAULT_LIMIT), offset=body.offset or 0,
    )
    return json_response(views)


@routes.get("/block_types/slug/{slug}")
@documented(summary="Read a block type by slug", response=BlockTypeView, errors={404: TYPE_NOT_FOUND})
async def read_block_type_by_slug(request: web.Request) -> web.Response:
    view = await queries.block_type_by_slug(request.config_dict[keys.STORE], request.match_info["slug"])
    return found(view, TYPE_NOT_FOUND)


@routes.get("/block_types/slug/{slug}/block_documents")
@documented(
    summary="List a block type's documents", response=list[BlockDocument], query=_SECRETS_QUERY,
    errors={404: TYPE_NOT_FOUND},
)
async def read_block_documents_of_type(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    view = await queries.block_type_by_slug(store, request.match_info["slug"])
    if view is None:
        raise NotFound(TYPE_NOT_FOUND)
    body = BlockDocumentFilterRequest(
        block_documents=BlockDocumentFilter(block_type_id=AnyId(any_=[view.id])), include_secrets=include_secrets(request)
    )
    return json_response(await queries.documents(store, await _cipher(request), body, limit=None))


@routes.get("/block_types/slug/{slug}/block_documents/name/{name}")
@documented(
    summary="Read a block document by its type's slug and its name", response=BlockDocument, query=_SECRETS_QUERY,
    errors={404: DOCUMENT_NOT_FOUND},
)
async def read_block_document_by_name(request: web.Request) -> web.Response:
    return found(await queries.document_by_name(
        request.config_dict[keys.STORE], await _cipher(request), request.match_info["slug"],
        request.match_info["name"], include_secrets=include_secrets(request),
    ), DOCUMENT_NOT_FOUND)


@routes.get("/block_types/{id}")
@documented(summary="Read a block type", response=BlockTypeView, errors={404: TYPE_NOT_FOUND})
async def read_block_type(request: web.Request) -> web.Response:
    return found(await queries.block_type(request.config_dict[keys.STORE], path_uuid(request)), TYPE_NOT_FOUND)


@routes.patch("/block_types/{id}")
@documented(summary="Update a block type", request=BlockTypeUpdate, status=204, errors={404: TYPE_NOT_FOUND})
async def update_block_type(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockTypeUpdate)
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    await commands.update_type(
        request.config_dict[keys.STORE], path_uuid(request), changes, clock=request.config_dict[keys.CLOCK]
    )
    return empty_response()


@routes.delete("/block_types/{id}")
@documented(
    summary="Delete a block type, with its schemas and documents", status=204,
    errors={403: "A protected block type", 404: TYPE_NOT_FOUND},
)
async def delete_block_type(request: web.Request) -> web.Response:
    await commands.delete_type(request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK])
    return empty_response()


# -- block schemas ----------------------------------------------------------------------------


@routes.post("/block_schemas/")
@documented(
    summary="Create a block schema (200 with the existing one of the same checksum and version)",
    request=BlockSchemaCreate, response=BlockSchema, status=(201, 200), errors={404: "No such block type"},
)
async def create_block_schema(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockSchemaCreate)
    store = request.config_dict[keys.STORE]
    view, created = await commands.create_schema(
        store, fields=body.fields, block_type_id=body.block_type_id, capabilities=body.capabilities,
        version=body.version, clock=request.config_dict[keys.CLOCK],
    )
    return json_response(await queries.with_type(store, view), status=201 if created else 200)


@routes.post("/block_schemas/filter")
@documented(
    summary="List block schemas, newest first", request=BlockSchemaFilterRequest, request_required=False,
    response=list[BlockSchema],
)
async def filter_block_schemas(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockSchemaFilterRequest, default=BlockSchemaFilterRequest())
    views = await queries.block_schemas(
        request.config_dict[keys.STORE], body.block_schemas, limit=page_limit(body.limit, queries.DEFAULT_LIMIT),
        offset=body.offset or 0,
    )
    return json_response(views)


@routes.get("/block_schemas/checksum/{checksum}")
@documented(
    summary="Read a block schema by checksum (the newest, or the given version)", response=BlockSchema,
    query={"version": str | None}, errors={404: SCHEMA_NOT_FOUND},
)
async def read_block_schema_by_checksum(request: web.Request) -> web.Response:
    return found(await queries.block_schema_by_checksum(
        request.config_dict[keys.STORE], request.match_info["checksum"], request.query.get("version")
    ), SCHEMA_NOT_FOUND)


@routes.get("/block_schemas/{id}")
@documented(summary="Read a block schema", response=BlockSchema, errors={404: SCHEMA_NOT_FOUND})
async def read_block_schema(request: web.Request) -> web.Response:
    return found(await queries.block_schema(request.config_dict[keys.STORE], path_uuid(request)), SCHEMA_NOT_FOUND)


@routes.delete("/block_schemas/{id}")
@documented(
    summary="Delete a block schema, with its documents", status=204,
    errors={403: "A protected block type's schema", 404: SCHEMA_NOT_FOUND},
)
async def delete_block_schema(request: web.Request) -> web.Response:
    await commands.delete_schema(
        request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK]
    )
    return empty_response()


@routes.get("/block_capabilities/")
@documented(summary="List the capabilities of every block schema", response=list[str])
async def read_block_capabilities(request: web.Request) -> web.Response:
    return json_response(await queries.capabilities(request.config_dict[keys.STORE]))


# -- block documents --------------------------------------------------------------------------


@routes.post("/block_documents/")
@documented(
    summary="Create a block document (secret fields are encrypted at rest)", request=BlockDocumentCreate,
    response=BlockDocument, status=201,
    errors={400: "A malformed nested block reference", 409: "A name taken, or no such type, schema or nested document"},
)
async def create_block_document(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockDocumentCreate)
    store, cipher = request.config_dict[keys.STORE], await _cipher(request)
    document_id = await commands.create_document(
        store, cipher, commands.NewBlockDocument(**msgspec.structs.asdict(body)), clock=request.config_dict[keys.CLOCK]
    )
    document = await queries.document(store, cipher, document_id, include_secrets=False)
    return json_response(document, status=201)


@routes.post("/block_documents/filter")
@documented(
    summary="List block documents", request=BlockDocumentFilterRequest, request_required=False,
    response=list[BlockDocument],
)
async def filter_block_documents(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockDocumentFilterRequest, default=BlockDocumentFilterRequest())
    limit = page_limit(body.limit, queries.DEFAULT_LIMIT)
    store = request.config_dict[keys.STORE]
    return json_response(await queries.documents(store, await _cipher(request), body, limit=limit))


@routes.post("/block_documents/count")
@documented(summary="Count block documents", request=BlockDocumentCountRequest, request_required=False, response=int)
async def count_block_documents(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockDocumentCountRequest, default=BlockDocumentCountRequest())
    return json_response(await queries.count_documents(request.config_dict[keys.STORE], body))


@routes.get("/block_documents/{id}")
@documented(summary="Read a block document", response=BlockDocument, query=_SECRETS_QUERY, errors={404: DOCUMENT_NOT_FOUND})
async def read_block_document(request: web.Request) -> web.Response:
    return found(await queries.document(
        request.config_dict[keys.STORE], await _cipher(request), path_uuid(request),
        include_secrets=include_secrets(request),
    ), DOCUMENT_NOT_FOUND)


@routes.patch("/block_documents/{id}")
@documented(
    summary="Update a block document ('********' sent back for a secret keeps it)", request=BlockDocumentUpdate,
    status=204, errors={400: "A schema of another block type, or a bad nested reference", 404: DOCUMENT_NOT_FOUND},
)
async def update_block_document(request: web.Request) -> web.Response:
    body = await decode_body(request, BlockDocumentUpdate)
    await commands.update_document(
        request.config_dict[keys.STORE], await _cipher(request), path_uuid(request), data=body.data,
        block_schema_id=body.block_schema_id, merge_existing_data=body.merge_existing_data,
        clock=request.config_dict[keys.CLOCK],
    )
    return empty_response()


@routes.delete("/block_documents/{id}")
@documented(summary="Delete a block document", status=204, errors={404: DOCUMENT_NOT_FOUND})
async def delete_block_document(request: web.Request) -> web.Response:
    await commands.delete_document(request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK])
    return empty_response()


__all__: list[Any] = ["routes"]
