"""Block types, schemas and documents: every write decided on the one "blocks" stream.

One stream rather than one per record because every block rule spans records: a type's slug and
name, a schema's (checksum, version) and a document's name within its type are unique, a document
must name a schema of its own type and documents it nests must exist, and deleting a type or a
schema takes its documents with it. Each command reads the stream's version, decides against the
blocks tables, and appends with that version expected (decide_on_stream), so two racing creations
of one name never both succeed, with no lock held. Blocks are configuration, written rarely.

A document's values are sealed with the server's cipher before they become an event, so neither
the log nor the read model ever holds a secret in clear (projections/block_secrets.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.fernet import Fernet

from runlog.eventstore import EventStore, Tx
from runlog.projections import blocks as model
from runlog.projections.block_secrets import keep_masked_secrets, seal, unseal
from runlog.schema import events as catalogue
from runlog.schema import streams

from .block_checksum import schema_checksum
from .clock import Clock, system_clock
from .errors import Conflict, DomainError, Forbidden, NotFound
from .executor import Decided, decide_on_stream

DEFAULT_SCHEMA_VERSION = "non-versioned"
"""Prefect's DEFAULT_BLOCK_SCHEMA_VERSION: a schema posted without a version."""


class InvalidBlockDocument(DomainError):
    """A document Prefect refuses with 400: a bad nested reference, a schema of another type."""


class BlockTypeNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Block type not found")


async def _decide(store: EventStore, decide: Callable[[Tx, datetime], Any], clock: Clock) -> Any:
    return await decide_on_stream(store, streams.BLOCKS, decide, clock=clock)


# -- block types ------------------------------------------------------------------------------


SQL_TYPE_NAMED = "SELECT 1 FROM block_types WHERE name = ? OR slug = ? LIMIT 1"


async def create_type(
    store: EventStore, *, name: str, slug: str, details: Mapping[str, str | None], clock: Clock = system_clock
) -> model.BlockTypeView:
    """A new block type; ``details`` holds its logo_url, documentation_url, description and
    code_example. Raises Forbidden for a name starting with "Prefect" (reserved), Conflict for
    a name or slug taken."""
    if name.lower().startswith("prefect"):
        raise Forbidden("Block type names beginning with 'Prefect' are reserved.")

    async def decide(tx: Tx, now: datetime) -> Decided[catalogue.BlockTypeCreated]:
        if await tx.fetch(SQL_TYPE_NAMED, name, slug):
            raise Conflict(f'Block type with name "{name}" already exists')
        event = catalogue.BlockTypeCreated(
            block_type_id=uuid.uuid4(), name=name, slug=slug, created=now,
            **{field: details.get(field) for field in model.TYPE_FIELDS},
        )
        return Decided([event], event)

    event = await _decide(store, decide, clock)
    view = model.evolve_type(None, event)
    assert view is not None
    return view


async def update_type(
    store: EventStore, block_type_id: UUID, changes: dict[str, Any], *, clock: Clock = system_clock
) -> None:
    """Applies the fields of ``changes`` (logo_url, documentation_url, description, code_example)
    that differ from the type's; none differing writes nothing. Raises BlockTypeNotFound."""
    changes = {k: v for k, v in changes.items() if k in model.TYPE_FIELDS}

    async def decide(tx: Tx, now: datetime) -> Decided[None]:
        view = await model.block_type(tx, block_type_id)
        if view is None:
            raise BlockTypeNotFound()
        # Only a meaningful change is written, as Prefect does: every client that saves a block
        # sends its type's fields again.
        differing = {k: v for k, v in changes.items() if getattr(view, k) != v}
        if not differing:
            return Decided((), None)
        return Decided([catalogue.BlockTypeUpdated(block_type_id=block_type_id, changes=differing, updated=now)])

    await _decide(store, decide, clock)


async def delete_type(store: EventStore, block_type_id: UUID, *, clock: Clock = system_clock) -> None:
    """Deletes the type with its schemas and documents. Raises BlockTypeNotFound, or Forbidden
    for a protected type."""

    async def decide(tx: Tx, _now: datetime) -> Decided[None]:
        view = await model.block_type(tx, block_type_id)
        if view is None:
            raise BlockTypeNotFound()
        if view.is_protected:
            raise Forbidden("protected block types cannot be deleted.")
        return Decided([catalogue.BlockTypeDeleted(block_type_id=block_type_id)])

    await _decide(store, decide, clock)


# -- block schemas ----------------------------------------------------------------------------


async def create_schema(
    store: EventStore, *, fields: dict[str, Any], block_type_id: UUID, capabilities: list[str],
    version: str = DEFAULT_SCHEMA_VERSION, clock: Clock = system_clock,
) -> tuple[model.BlockSchemaView, bool]:
    """The schema, and whether it is new: one of the same checksum and version is answered as it
    is (Prefect's 200 rather than 201). Raises NotFound for an unknown block type."""
    checksum = schema_checksum(fields)

    async def decide(tx: Tx, now: datetime) -> Decided[tuple[model.BlockSchemaView, bool]]:
        if await model.block_type(tx, block_type_id) is None:
            raise NotFound(f"Block type {block_type_id} not found.")
        existing = await model.block_schema_by_checksum(tx, checksum, version)
        if existing is not None:
            return Decided((), (existing, False))
        event = catalogue.BlockSchemaCreated(
            block_schema_id=uuid.uuid4(), checksum=checksum, fields=fields, block_type_id=block_type_id,
            capabilities=capabilities, version=version, created=now,
        )
        return Decided([event], (model.schema_of(event), True))

    return await _decide(store, decide, clock)


async def delete_schema(store: EventStore, block_schema_id: UUID, *, clock: Clock = system_clock) -> None:
    async def decide(tx: Tx, _now: datetime) -> Decided[None]:
        schema = await model.block_schema(tx, block_schema_id)
        if schema is None:
            raise NotFound("Block schema not found")
        block_type = await model.block_type(tx, schema.block_type_id)
        if block_type is not None and block_type.is_protected:
            raise Forbidden("Block schemas for protected block types cannot be deleted.")
        return Decided([catalogue.BlockSchemaDeleted(block_schema_id=block_schema_id)])

    await _decide(store, decide, clock)


# -- block documents --------------------------------------------------------------------------


def split_references(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, UUID]]:
    """(the values without nested documents, {field: nested document id}). As in Prefect, a
    nested document is a top-level value ``{"$ref": {"block_document_id": ...}}``."""
    values: dict[str, Any] = {}
    references: dict[str, UUID] = {}
    for key, value in data.items():
        if isinstance(value, dict) and "$ref" in value:
            ref = value["$ref"]
            target = ref.get("block_document_id") if isinstance(ref, dict) else None
            if target is None:
                raise InvalidBlockDocument(f"Received block reference without a block_document_id in key {key}")
            try:
                references[key] = UUID(str(target))
            except ValueError:
                raise InvalidBlockDocument(f"Received a block reference that is not a block document id in key {key}") from None
        else:
            values[key] = value
    return values, references


async def _check_references(tx: Tx, parent_id: UUID, references: dict[str, UUID]) -> None:
    """Each nested document exists, and nesting it does not make a cycle."""
    for key, target in references.items():
        if target == parent_id or await _reaches(tx, target, parent_id):
            raise InvalidBlockDocument(
                f"Cannot create block document reference: it would introduce a cycle (key {key})"
            )
        if await model.stored_document(tx, target) is None:
            # Prefect's foreign key refuses it with 409 (an integrity conflict).
            raise Conflict(f"Block document {target} referenced in key {key} not found")


async def _reaches(tx: Tx, start: UUID, goal: UUID) -> bool:
    seen: set[UUID] = set()
    stack = [start]
    while stack:
        current = stack.pop()
        if current == goal:
            return True
        if current in seen:
            continue
        seen.add(current)
        stored = await model.stored_document(tx, current)
        if stored is not None:
            stack.extend(stored.references.values())
    return False


@dataclass(frozen=True, kw_only=True)
class NewBlockDocument:
    name: str | None
    data: dict[str, Any]
    block_schema_id: UUID
    block_type_id: UUID
    is_anonymous: bool = False


async def create_document(
    store: EventStore, cipher: Fernet, new: NewBlockDocument, *, clock: Clock = system_clock
) -> UUID:
    """The new document's id. Raises Conflict for a name its type has, an unknown type, schema
    or nested document; InvalidBlockDocument for a malformed reference or a cycle."""
    document_id = uuid.uuid4()
    values, references = split_references(new.data)
    name = new.name if new.name or not new.is_anonymous else f"anonymous-{uuid.uuid4()}"
    sealed = seal(cipher, values)

    async def decide(tx: Tx, now: datetime) -> Decided[UUID]:
        block_type = await model.block_type(tx, new.block_type_id)
        # Prefect's foreign keys refuse an unknown type or schema with 409 (an integrity conflict).
        if block_type is None:
            raise Conflict(f"Block type {new.block_type_id} not found")
        schema = await model.block_schema(tx, new.block_schema_id)
        if schema is None or schema.block_type_id != new.block_type_id:
            raise Conflict(f"Block schema {new.block_schema_id} not found for block type {new.block_type_id}")
        if new.name is not None and await model.stored_document_by_name(tx, new.block_type_id, new.name) is not None:
            raise Conflict("Block already exists")
        await _check_references(tx, document_id, references)
        return Decided([catalogue.BlockDocumentCreated(
            block_document_id=document_id, name=name, block_schema_id=new.block_schema_id,
            block_type_id=new.block_type_id, block_type_name=block_type.name, is_anonymous=new.is_anonymous,
            data=sealed, references=references, created=now,
        )], document_id)

    return await _decide(store, decide, clock)


async def update_document(
    store: EventStore, cipher: Fernet, block_document_id: UUID, *, data: dict[str, Any],
    block_schema_id: UUID | None = None, merge_existing_data: bool = True, clock: Clock = system_clock,
) -> None:
    """Prefect's update: a secret sent back as ``********`` keeps its stored value; with
    ``merge_existing_data`` the values sent replace only those keys. Nested documents are the
    ones the (merged) values name. Raises NotFound, or InvalidBlockDocument for a schema of
    another type or a bad nested document."""

    async def decide(tx: Tx, now: datetime) -> Decided[None]:
        current = await model.stored_document(tx, block_document_id)
        if current is None:
            raise NotFound("Block document not found")
        schema = await model.block_schema(tx, current.block_schema_id)
        secret_fields = schema.fields.get("secret_fields", []) if schema is not None else []
        current_values = unseal(cipher, current.data)
        sent = keep_masked_secrets(data, current_values, secret_fields)
        merged = {**current_values, **sent} if merge_existing_data else sent
        values, references = split_references(merged)
        target_schema = current.block_schema_id
        if block_schema_id is not None and block_schema_id != current.block_schema_id:
            proposed = await model.block_schema(tx, block_schema_id)
            if proposed is None:
                raise NotFound(f"Block schema {block_schema_id} not found")
            if proposed.block_type_id != current.block_type_id:
                raise InvalidBlockDocument("Must migrate block document to a block schema of the same block type.")
            target_schema = block_schema_id
        await _check_references(tx, block_document_id, references)
        return Decided([catalogue.BlockDocumentUpdated(
            block_document_id=block_document_id, block_schema_id=target_schema, data=seal(cipher, values),
            references=references, updated=now,
        )])

    await _decide(store, decide, clock)


async def delete_document(store: EventStore, block_document_id: UUID, *, clock: Clock = system_clock) -> None:
    async def decide(tx: Tx, _now: datetime) -> Decided[None]:
        if await model.stored_document(tx, block_document_id) is None:
            raise NotFound("Block document not found")
        return Decided([catalogue.BlockDocumentDeleted(block_document_id=block_document_id)])

    await _decide(store, decide, clock)


__all__ = [
    "DEFAULT_SCHEMA_VERSION", "BlockTypeNotFound", "InvalidBlockDocument", "NewBlockDocument",
    "create_document", "create_schema", "create_type", "delete_document", "delete_schema", "delete_type",
    "split_references", "update_document", "update_type",
]
