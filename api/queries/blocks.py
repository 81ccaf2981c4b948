"""Reading block types, schemas and documents from the blocks projection; filters in SQL.

Documents are read as the API answers them: values opened with the server's cipher, nested
documents resolved, secrets masked unless asked for (projections/blocks.py does that part).
"""

from __future__ import annotations

from uuid import UUID

from cryptography.fernet import Fernet

from runlog.eventstore import EventStore, Tx
from runlog.projections import blocks as model

from ..schemas.blocks import (
    BlockDocumentCountRequest, BlockDocumentFilter, BlockDocumentFilterRequest, BlockSchemaFilter, BlockTypeFilter,
)
from .filtering import Cond, Criteria, Related, Resource, Sql, any_in, combine, fetch_count, fetch_page, like
from .filtering import TagSource, tags_all

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""


def _equals_flag(_d: Sql, expr: str, value: bool | None) -> Cond | None:
    return None if value is None else (f"{expr} = ?", (int(value),))


# A schema's capabilities are a set of strings, filtered like tags (all_).
CAPABILITIES = TagSource(
    lambda _d, expr: f"block_schema_capabilities c WHERE c.block_schema_id = {expr}", lambda _d: "c.capability"
)
BLOCK_TYPE = Resource({
    "name": Criteria("t.name", {"like_": like}),
    "slug": Criteria("t.slug", {"any_": any_in}),
})
BLOCK_SCHEMA = Resource({
    "block_type_id": Criteria("s.block_type_id", {"any_": any_in}),
    "block_capabilities": Criteria("s.id", {"all_": tags_all(CAPABILITIES)}),
    "id": Criteria("s.id", {"any_": any_in}),
    "version": Criteria("s.version", {"any_": any_in}),
})
BLOCK_DOCUMENT = Resource({
    "id": Criteria("d.id", {"any_": any_in}),
    "is_anonymous": Criteria("d.is_anonymous", {"eq_": _equals_flag}),
    "block_type_id": Criteria("d.block_type_id", {"any_": any_in}),
    "name": Criteria("d.name", {"any_": any_in, "like_": like}),
})
TYPE_OF_DOCUMENT = Related("EXISTS (SELECT 1 FROM block_types t WHERE t.id = d.block_type_id AND {where})", BLOCK_TYPE)
SCHEMA_OF_DOCUMENT = Related(
    "EXISTS (SELECT 1 FROM block_schemas s WHERE s.id = d.block_schema_id AND {where})", BLOCK_SCHEMA
)
SCHEMA_OF_TYPE = Related("EXISTS (SELECT 1 FROM block_schemas s WHERE s.block_type_id = t.id AND {where})", BLOCK_SCHEMA)

DOCUMENT_ORDER = {
    "NAME_DESC": "d.name DESC, d.id",
    "NAME_ASC": "d.name ASC, d.id",
    "BLOCK_TYPE_AND_NAME_ASC": "(SELECT t.name FROM block_types t WHERE t.id = d.block_type_id) ASC, d.name ASC, d.id",
}


# -- block types ------------------------------------------------------------------------------


async def block_type(store: EventStore, block_type_id: UUID) -> model.BlockTypeView | None:
    async with store.reading() as tx:
        return await model.block_type(tx, block_type_id)


async def block_type_by_slug(store: EventStore, slug: str) -> model.BlockTypeView | None:
    async with store.reading() as tx:
        return await model.block_type_by_slug(tx, slug)


async def block_types(
    store: EventStore, types: BlockTypeFilter | None, schemas: BlockSchemaFilter | None, *, limit: int, offset: int
) -> list[model.BlockTypeView]:
    async with store.reading() as tx:
        cond = combine([BLOCK_TYPE.where(tx, types), *([] if schemas is None else SCHEMA_OF_TYPE.conds(tx, schemas))])
        rows = await fetch_page(tx, "block_types t", "t.view", cond, "t.name, t.id", limit, offset)
    return [model.decode_type(bytes(row[0])) for row in rows]


# -- block schemas ----------------------------------------------------------------------------


async def block_schema(store: EventStore, block_schema_id: UUID) -> model.BlockSchema | None:
    async with store.reading() as tx:
        schema = await model.block_schema(tx, block_schema_id)
        return None if schema is None else await model.with_type(tx, schema)


async def block_schema_by_checksum(store: EventStore, checksum: str, version: str | None) -> model.BlockSchema | None:
    async with store.reading() as tx:
        schema = await model.block_schema_by_checksum(tx, checksum, version)
        return None if schema is None else await model.with_type(tx, schema)


async def with_type(store: EventStore, schema: model.BlockSchemaView) -> model.BlockSchema:
    async with store.reading() as tx:
        return await model.with_type(tx, schema)


async def block_schemas(
    store: EventStore, schemas: BlockSchemaFilter | None, *, limit: int, offset: int
) -> list[model.BlockSchema]:
    async with store.reading() as tx:
        # Newest first, as in Prefect (so that limit=1 is the newest).
        rows = await fetch_page(
            tx, "block_schemas s", "s.view", BLOCK_SCHEMA.where(tx, schemas), "s.created DESC, s.id", limit, offset
        )
        return [await model.with_type(tx, model.decode_schema(bytes(row[0]))) for row in rows]


async def capabilities(store: EventStore) -> list[str]:
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT DISTINCT capability FROM block_schema_capabilities ORDER BY capability")
    return [str(row[0]) for row in rows]


# -- block documents --------------------------------------------------------------------------


def _document_cond(tx: Tx, body: BlockDocumentCountRequest) -> Cond:
    # No document filter at all is Prefect's default one: anonymous documents left out.
    documents = body.block_documents if body.block_documents is not None else BlockDocumentFilter()
    conds = [BLOCK_DOCUMENT.where(tx, documents)]
    if body.block_types is not None:
        conds += TYPE_OF_DOCUMENT.conds(tx, body.block_types)
    if body.block_schemas is not None:
        conds += SCHEMA_OF_DOCUMENT.conds(tx, body.block_schemas)
    return combine(conds)


async def document(
    store: EventStore, cipher: Fernet, block_document_id: UUID, *, include_secrets: bool
) -> model.BlockDocument | None:
    async with store.reading() as tx:
        return await model.document(tx, block_document_id, cipher, include_secrets=include_secrets)


async def document_by_name(
    store: EventStore, cipher: Fernet, slug: str, name: str, *, include_secrets: bool
) -> model.BlockDocument | None:
    async with store.reading() as tx:
        block_type = await model.block_type_by_slug(tx, slug)
        stored = None if block_type is None else await model.stored_document_by_name(tx, block_type.id, name)
        return None if stored is None else await model.hydrate(tx, stored, cipher, include_secrets=include_secrets)


async def documents(
    store: EventStore, cipher: Fernet, body: BlockDocumentFilterRequest, *, limit: int | None
) -> list[model.BlockDocument]:
    async with store.reading() as tx:
        rows = await fetch_page(
            tx, "block_documents d", "d.view", _document_cond(tx, body), DOCUMENT_ORDER[body.sort or "NAME_ASC"],
            limit, body.offset or 0,
        )
        return [
            await model.hydrate(tx, model.decode_document(bytes(row[0])), cipher, include_secrets=body.include_secrets)
            for row in rows
        ]


async def count_documents(store: EventStore, body: BlockDocumentCountRequest) -> int:
    async with store.reading() as tx:
        return await fetch_count(tx, "block_documents d", _document_cond(tx, body))



