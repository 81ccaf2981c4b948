"""The blocks read model: block types, their schemas and block documents, kept inline.

Every block event is on the one stream "blocks" (streams.BLOCKS), where the commands decide that
slugs, schema checksums and document names stay unique. Deleting a type deletes its schemas and
documents, and deleting a schema its documents, as Prefect's foreign keys cascade. A document's
values are stored as the Fernet token its event carries (projections/block_secrets.py); nested
documents are rows of block_document_references, resolved on read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from cryptography.fernet import Fernet

from runlog.eventstore import RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .block_secrets import mask, unseal
from .tables import us

_TYPES = frozenset({
    "block_type.created", "block_type.updated", "block_type.deleted", "block_schema.created",
    "block_schema.deleted", "block_document.created", "block_document.updated", "block_document.deleted",
})
TYPE_FIELDS = ("logo_url", "documentation_url", "description", "code_example")
MAX_REFERENCE_DEPTH = 50
"""Prefect's: a chain of nested documents deeper than this is refused rather than followed."""


class BlockTypeView(msgspec.Struct, kw_only=True):
    """A block type, with Prefect's field names (it is also what the API answers)."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    slug: str
    logo_url: str | None = None
    documentation_url: str | None = None
    description: str | None = None
    code_example: str | None = None
    is_protected: bool = False


class BlockSchemaView(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    checksum: str
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    block_type_id: UUID
    capabilities: list[str] = msgspec.field(default_factory=list)
    version: str


class BlockDocumentView(msgspec.Struct, kw_only=True):
    """A stored document: its own values sealed (``data`` is a Fernet token)."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    block_schema_id: UUID
    block_type_id: UUID
    block_type_name: str
    is_anonymous: bool = False
    data: str
    references: dict[str, UUID] = msgspec.field(default_factory=dict)


class BlockSchema(BlockSchemaView, kw_only=True):
    """A schema as Prefect answers it: with its type."""

    block_type: BlockTypeView | None = None


class BlockDocument(msgspec.Struct, kw_only=True):
    """A document as Prefect answers it: values opened (secrets masked unless asked for), nested
    documents' values in place, with its schema and type."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    data: dict[str, Any]
    block_schema_id: UUID
    block_schema: BlockSchema | None
    block_type_id: UUID
    block_type_name: str
    block_type: BlockTypeView | None
    block_document_references: dict[str, Any]
    is_anonymous: bool


_encoder = msgspec.json.Encoder()
# Each view's row holds it as JSON: decode_type(row.view) and so on.
decode_type = msgspec.json.Decoder(BlockTypeView).decode
decode_schema = msgspec.json.Decoder(BlockSchemaView).decode
decode_document = msgspec.json.Decoder(BlockDocumentView).decode


# -- storage ----------------------------------------------------------------------------------

BLOCK_TYPES = Table("block_types", ("id", "name", "slug", "created", "updated", "view"), key=("id",))
BLOCK_SCHEMAS = Table(
    "block_schemas", ("id", "checksum", "block_type_id", "version", "created", "view"), key=("id",)
)
BLOCK_SCHEMA_CAPABILITIES = Table(
    "block_schema_capabilities", ("block_schema_id", "capability"), key=("block_schema_id", "capability")
)
BLOCK_DOCUMENTS = Table(
    "block_documents",
    ("id", "name", "block_type_id", "block_schema_id", "is_anonymous", "created", "updated", "view"),
    key=("id",),
)
BLOCK_DOCUMENT_REFERENCES = Table(
    "block_document_references", ("parent_id", "name", "reference_id"), key=("parent_id", "name")
)

SQL_TYPE = "SELECT view FROM block_types WHERE id = ?"
SQL_TYPE_BY_SLUG = "SELECT view FROM block_types WHERE slug = ? ORDER BY created, id LIMIT 1"
SQL_SCHEMA = "SELECT view FROM block_schemas WHERE id = ?"
# Without a version, the newest schema of the checksum answers, as in Prefect.
SQL_SCHEMA_BY_CHECKSUM = "SELECT view FROM block_schemas WHERE checksum = ? ORDER BY created DESC, id DESC LIMIT 1"
SQL_SCHEMA_BY_CHECKSUM_VERSION = (
    "SELECT view FROM block_schemas WHERE checksum = ? AND version = ? ORDER BY created DESC, id DESC LIMIT 1"
)
SQL_SCHEMAS_OF_TYPE = "SELECT id FROM block_schemas WHERE block_type_id = ?"
SQL_DOCUMENT = "SELECT view FROM block_documents WHERE id = ?"
SQL_DOCUMENT_BY_NAME = (
    "SELECT view FROM block_documents WHERE block_type_id = ? AND name = ? ORDER BY created, id LIMIT 1"
)
SQL_DOCUMENTS_OF_TYPE = "SELECT id FROM block_documents WHERE block_type_id = ?"
SQL_DOCUMENTS_OF_SCHEMA = "SELECT id FROM block_documents WHERE block_schema_id = ?"
SQL_REFERENCES_TO = "SELECT parent_id, name FROM block_document_references WHERE reference_id = ?"


def _one(rows: Sequence[Sequence[Any]]) -> bytes | None:
    return bytes(rows[0][0]) if rows else None


async def block_type(tx: Tx, block_type_id: UUID) -> BlockTypeView | None:
    data = _one(await tx.fetch(SQL_TYPE, str(block_type_id)))
    return None if data is None else decode_type(data)


async def block_type_by_slug(tx: Tx, slug: str) -> BlockTypeView | None:
    data = _one(await tx.fetch(SQL_TYPE_BY_SLUG, slug))
    return None if data is None else decode_type(data)


async def block_schema(tx: Tx, block_schema_id: UUID) -> BlockSchemaView | None:
    data = _one(await tx.fetch(SQL_SCHEMA, str(block_schema_id)))
    return None if data is None else decode_schema(data)


async def block_schema_by_checksum(tx: Tx, checksum: str, version: str | None) -> BlockSchemaView | None:
    if version is None:
        rows = await tx.fetch(SQL_SCHEMA_BY_CHECKSUM, checksum)
    else:
        rows = await tx.fetch(SQL_SCHEMA_BY_CHECKSUM_VERSION, checksum, version)
    data = _one(rows)
    return None if data is None else decode_schema(data)


async def stored_document(tx: Tx, block_document_id: UUID) -> BlockDocumentView | None:
    data = _one(await tx.fetch(SQL_DOCUMENT, str(block_document_id)))
    return None if data is None else decode_document(data)


async def stored_document_by_name(tx: Tx, block_type_id: UUID, name: str) -> BlockDocumentView | None:
    data = _one(await tx.fetch(SQL_DOCUMENT_BY_NAME, str(block_type_id), name))
    return None if data is None else decode_document(data)


async def with_type(tx: Tx, schema: BlockSchemaView) -> BlockSchema:
    return BlockSchema(**msgspec.structs.asdict(schema), block_type=await block_type(tx, schema.block_type_id))


async def document(
    tx: Tx, block_document_id: UUID, cipher: Fernet, *, include_secrets: bool = False
) -> BlockDocument | None:
    """The document with this id, its values opened and nested documents resolved; secrets are
    masked unless ``include_secrets``. What the API answers, and what the notifier reads a
    channel's settings with (``include_secrets=True``)."""
    stored = await stored_document(tx, block_document_id)
    return None if stored is None else await hydrate(tx, stored, cipher, include_secrets=include_secrets)


async def hydrate(
    tx: Tx, stored: BlockDocumentView, cipher: Fernet, *, include_secrets: bool, _depth: int = 0
) -> BlockDocument:
    if _depth > MAX_REFERENCE_DEPTH:
        raise ValueError(f"Block document reference graph exceeds max depth {MAX_REFERENCE_DEPTH}")
    data = unseal(cipher, stored.data)
    references: dict[str, Any] = {}
    for name, reference_id in sorted(stored.references.items()):
        child = await stored_document(tx, reference_id)
        if child is None:
            continue
        nested = await hydrate(tx, child, cipher, include_secrets=include_secrets, _depth=_depth + 1)
        data[name] = nested.data
        references[name] = {"block_document": {
            "id": str(nested.id), "name": nested.name,
            "block_type": msgspec.to_builtins(nested.block_type),
            "is_anonymous": nested.is_anonymous,
            "block_document_references": nested.block_document_references,
        }}
    schema = await block_schema(tx, stored.block_schema_id)
    if not include_secrets and schema is not None:
        data = mask(data, schema.fields.get("secret_fields", []))
    return BlockDocument(
        id=stored.id, created=stored.created, updated=stored.updated, name=stored.name, data=data,
        block_schema_id=stored.block_schema_id, block_schema=None if schema is None else await with_type(tx, schema),
        block_type_id=stored.block_type_id, block_type_name=stored.block_type_name,
        block_type=await block_type(tx, stored.block_type_id), block_document_references=references,
        is_anonymous=stored.is_anonymous,
    )


# -- the fold ---------------------------------------------------------------------------------


def evolve_type(view: BlockTypeView | None, event: Any) -> BlockTypeView | None:
    if isinstance(event, catalogue.BlockTypeCreated):
        return BlockTypeView(
            id=event.block_type_id, created=event.created, updated=event.created, name=event.name, slug=event.slug,
            logo_url=event.logo_url, documentation_url=event.documentation_url, description=event.description,
            code_example=event.code_example, is_protected=event.is_protected,
        )
    if view is None or isinstance(event, catalogue.BlockTypeDeleted):
        return None
    if isinstance(event, catalogue.BlockTypeUpdated):
        changes = {k: v for k, v in event.changes.items() if k in TYPE_FIELDS and (v is None or isinstance(v, str))}
        return msgspec.structs.replace(view, updated=event.updated, **changes)
    return view


def schema_of(event: catalogue.BlockSchemaCreated) -> BlockSchemaView:
    return BlockSchemaView(
        id=event.block_schema_id, created=event.created, updated=event.created, checksum=event.checksum,
        fields=event.fields, block_type_id=event.block_type_id, capabilities=list(event.capabilities),
        version=event.version,
    )


def evolve_document(view: BlockDocumentView | None, event: Any) -> BlockDocumentView | None:
    if isinstance(event, catalogue.BlockDocumentCreated):
        return BlockDocumentView(
            id=event.block_document_id, created=event.created, updated=event.created, name=event.name,
            block_schema_id=event.block_schema_id, block_type_id=event.block_type_id,
            block_type_name=event.block_type_name, is_anonymous=event.is_anonymous, data=event.data,
            references=dict(event.references),
        )
    if view is None or isinstance(event, catalogue.BlockDocumentDeleted):
        return None
    if isinstance(event, catalogue.BlockDocumentUpdated):
        return msgspec.structs.replace(
            view, updated=event.updated, block_schema_id=event.block_schema_id, data=event.data,
            references=dict(event.references),
        )
    return view


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class BlocksProjection:
    name = "blocks"
    version = VERSION
    tables = (BLOCK_TYPES, BLOCK_SCHEMAS, BLOCK_SCHEMA_CAPABILITIES, BLOCK_DOCUMENTS, BLOCK_DOCUMENT_REFERENCES)
    per_event = True  # an update or a cascade reads rows the batch's previous event may have written
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """Nothing to write for a batch without block events; with them, ``changes`` reads."""
        return None if any(r.event.type in _TYPES for r in rows) else RowChanges()

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES or record.stream_id != streams.BLOCKS:
                continue
            event = catalogue.decode(record.data)
            if isinstance(event, catalogue.BlockTypeCreated | catalogue.BlockTypeUpdated):
                current = None if isinstance(event, catalogue.BlockTypeCreated) else await block_type(
                    tx, event.block_type_id
                )
                view = evolve_type(current, event)
                if view is not None:
                    changes.upsert(BLOCK_TYPES, (
                        str(view.id), view.name, view.slug, us(view.created), us(view.updated), _encoder.encode(view),
                    ))
            elif isinstance(event, catalogue.BlockTypeDeleted):
                for (schema_id,) in await tx.fetch(SQL_SCHEMAS_OF_TYPE, str(event.block_type_id)):
                    await self._delete_schema(tx, changes, schema_id)
                changes.delete(BLOCK_TYPES, str(event.block_type_id))
            elif isinstance(event, catalogue.BlockSchemaCreated):
                schema = schema_of(event)
                changes.upsert(BLOCK_SCHEMAS, (
                    str(schema.id), schema.checksum, str(schema.block_type_id), schema.version, us(schema.created),
                    _encoder.encode(schema),
                ))
                for capability in set(schema.capabilities):
                    changes.upsert(BLOCK_SCHEMA_CAPABILITIES, (str(schema.id), capability))
            elif isinstance(event, catalogue.BlockSchemaDeleted):
                await self._delete_schema(tx, changes, str(event.block_schema_id))
            elif isinstance(event, catalogue.BlockDocumentDeleted):
                await self._delete_document(tx, changes, str(event.block_document_id))
            elif isinstance(event, catalogue.BlockDocumentCreated | catalogue.BlockDocumentUpdated):
                await self._write_document(tx, changes, event)
        return changes

    async def _write_document(self, tx: Tx, changes: RowChanges, event: Any) -> None:
        current = None
        if isinstance(event, catalogue.BlockDocumentUpdated):
            current = await stored_document(tx, event.block_document_id)
        view = evolve_document(current, event)
        if view is None:
            return
        for name in set(current.references if current is not None else ()) - set(view.references):
            changes.delete(BLOCK_DOCUMENT_REFERENCES, (str(view.id), name))
        for name, reference_id in view.references.items():
            changes.upsert(BLOCK_DOCUMENT_REFERENCES, (str(view.id), name, str(reference_id)))
        changes.upsert(BLOCK_DOCUMENTS, (
            str(view.id), view.name, str(view.block_type_id), str(view.block_schema_id), int(view.is_anonymous),
            us(view.created), us(view.updated), _encoder.encode(view),
        ))

    async def _delete_schema(self, tx: Tx, changes: RowChanges, schema_id: str) -> None:
        for (document_id,) in await tx.fetch(SQL_DOCUMENTS_OF_SCHEMA, schema_id):
            await self._delete_document(tx, changes, document_id)
        schema = await block_schema(tx, UUID(schema_id))
        for capability in set(schema.capabilities if schema is not None else ()):
            changes.delete(BLOCK_SCHEMA_CAPABILITIES, (schema_id, capability))
        changes.delete(BLOCK_SCHEMAS, schema_id)

    async def _delete_document(self, tx: Tx, changes: RowChanges, document_id: str) -> None:
        stored = await stored_document(tx, UUID(document_id))
        for name in stored.references if stored is not None else ():
            changes.delete(BLOCK_DOCUMENT_REFERENCES, (document_id, name))
        # A document nested in others leaves them (Prefect's reference rows cascade too).
        for parent_id, name in await tx.fetch(SQL_REFERENCES_TO, document_id):
            changes.delete(BLOCK_DOCUMENT_REFERENCES, (parent_id, name))
        changes.delete(BLOCK_DOCUMENTS, document_id)


__all__ = [
    "BlockDocument", "BlockDocumentView", "BlockSchema", "BlockSchemaView", "BlockTypeView", "BlocksProjection",
    "block_schema", "block_schema_by_checksum", "block_type", "block_type_by_slug", "decode_document",
    "decode_schema", "decode_type", "document", "evolve_document", "evolve_type", "hydrate", "schema_of",
    "stored_document", "stored_document_by_name", "with_type",
]
