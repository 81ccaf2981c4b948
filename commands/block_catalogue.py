"""Registers Prefect's built-in block types and schemas (schema/prefect_blocks.py) at start, as
Prefect's server does, so the UI's Blocks catalogue is full on a new server.

One decision on the "blocks" stream, like every block write (commands/blocks.py): what is
missing is appended in one batch with the stream's version expected, so a restart appends
nothing and of several processes starting at once one appends and the others, going round on
the version conflict, find everything there. A type already registered (by a client, or by an
older runlog) keeps its id; as Prefect's register_block_type does, its logo, documentation URL,
description and code example are brought to the built-in's when they differ. A schema is known
by (checksum, version), the key runlog's and Prefect's POST /block_schemas/ look it up by, so a
client registering a built-in later meets the schema registered here. A built-in type whose
name another slug already holds is left out (block type names are unique).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from runlog.eventstore import EventStore, Tx
from runlog.projections import blocks as model
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.prefect_blocks import BuiltinBlocks, builtin_blocks

from .clock import Clock, system_clock
from .executor import Decided, decide_on_stream

SQL_TYPES = "SELECT view FROM block_types"
SQL_SCHEMA_KEYS = "SELECT checksum, version FROM block_schemas"


@dataclass(frozen=True)
class Registered:
    types_created: int = 0
    types_updated: int = 0
    schemas_created: int = 0
    skipped: tuple[str, ...] = ()
    """Slugs of built-in types left out: their name is another type's."""


async def _plan(tx: Tx, now: datetime, builtins: BuiltinBlocks) -> Decided[Registered]:
    existing = [model.decode_type(bytes(row[0])) for row in await tx.fetch(SQL_TYPES)]
    by_slug = {view.slug: view for view in existing}
    names = {view.name for view in existing}
    schema_keys = {(str(row[0]), str(row[1])) for row in await tx.fetch(SQL_SCHEMA_KEYS)}

    events: list[catalogue.Event] = []
    type_ids: dict[str, UUID] = {}
    created = updated = 0
    skipped: list[str] = []
    for builtin in builtins.types:
        details = {field: getattr(builtin, field) for field in model.TYPE_FIELDS}
        current = by_slug.get(builtin.slug)
        if current is not None:
            type_ids[builtin.slug] = current.id
            differing = {k: v for k, v in details.items() if getattr(current, k) != v}
            if differing:
                events.append(catalogue.BlockTypeUpdated(block_type_id=current.id, changes=differing, updated=now))
                updated += 1
        elif builtin.name in names:
            skipped.append(builtin.slug)
        else:
            type_ids[builtin.slug] = uuid.uuid4()
            events.append(catalogue.BlockTypeCreated(
                block_type_id=type_ids[builtin.slug], name=builtin.name, slug=builtin.slug,
                is_protected=builtin.is_protected, created=now, **details,
            ))
            names.add(builtin.name)
            created += 1

    schemas = 0
    for schema in builtins.schemas:
        type_id = type_ids.get(schema.block_type_slug)
        if type_id is None or (schema.checksum, schema.version) in schema_keys:
            continue
        # A microsecond apart, oldest first, so that "newest first" lists them in Prefect's order.
        events.append(catalogue.BlockSchemaCreated(
            block_schema_id=uuid.uuid4(), checksum=schema.checksum, fields=schema.fields, block_type_id=type_id,
            capabilities=list(schema.capabilities), version=schema.version,
            created=now + timedelta(microseconds=schemas),
        ))
        schema_keys.add((schema.checksum, schema.version))
        schemas += 1
    return Decided(events, Registered(created, updated, schemas, tuple(skipped)))


async def register_builtin_blocks(
    store: EventStore, *, builtins: BuiltinBlocks | None = None, clock: Clock = system_clock
) -> Registered:
    """Appends what of the built-in block types and schemas the server lacks; what it did."""
    chosen = builtins or builtin_blocks()
    return await decide_on_stream(store, streams.BLOCKS, lambda tx, now: _plan(tx, now, chosen), clock=clock)


__all__ = ["Registered", "register_builtin_blocks"]
