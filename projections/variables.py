"""The variables read model: one row per variable (and one per tag), kept inline with the log,
and the reads of one variable that commands and routes share.

Every variable event is on the one stream "variables" (streams.VARIABLES): the commands decide
whether a name is free against that stream's version, so names stay unique without a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import changes_needed, read_view, sync_tags, us, view_in


_TYPES = frozenset({"variable.created", "variable.updated", "variable.deleted"})
_FIELDS = ("name", "value", "tags")

VARIABLES = Table("variables", ("id", "name", "created", "updated", "view"), key=("id",))
VARIABLE_TAGS = Table("variable_tags", ("variable_id", "tag"), key=("variable_id", "tag"))
SQL_GET = "SELECT view FROM variables WHERE id = ?"
# Names are unique (the commands decide on one stream); should a pushed log hold two, the oldest answers.
SQL_BY_NAME = "SELECT view FROM variables WHERE name = ? ORDER BY created, id LIMIT 1"


class VariableView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    value: Any = None
    tags: list[str] = msgspec.field(default_factory=list)
    created: datetime
    updated: datetime


_encoder = msgspec.json.Encoder()
decode_variable = msgspec.json.Decoder(VariableView).decode


async def by_id(tx: Tx, variable_id: UUID) -> VariableView | None:
    return await view_in(tx, SQL_GET, str(variable_id), decode_variable)


async def by_name(tx: Tx, name: str) -> VariableView | None:
    return await view_in(tx, SQL_BY_NAME, name, decode_variable)


async def get(store: EventStore, variable_id: UUID) -> VariableView | None:
    return await read_view(store, SQL_GET, str(variable_id), decode_variable)


async def get_by_name(store: EventStore, name: str) -> VariableView | None:
    return await read_view(store, SQL_BY_NAME, name, decode_variable)


def evolve_variable(view: VariableView | None, event: Any) -> VariableView | None:
    """Fold one event of the variables stream into the view of the variable it names."""
    if isinstance(event, catalogue.VariableCreated):
        return VariableView(
            id=event.variable_id, name=event.name, value=event.value, tags=list(event.tags),
            created=event.created, updated=event.created,
        )
    if view is None:
        return None  # nothing but a creation starts a variable
    if isinstance(event, catalogue.VariableDeleted):
        return None
    if isinstance(event, catalogue.VariableUpdated):
        changes = {k: v for k, v in event.changes.items() if k in _FIELDS}
        replace = msgspec.structs.replace
        updated = replace(view, updated=event.updated)
        if "name" in changes and isinstance(changes["name"], str):
            updated = replace(updated, name=changes["name"])
        if "value" in changes:
            updated = replace(updated, value=changes["value"])
        if "tags" in changes and isinstance(changes["tags"], list):
            updated = replace(updated, tags=[str(t) for t in changes["tags"]])
        return updated
    return view


def _variable_id(event: Any) -> UUID | None:
    if isinstance(event, catalogue.VariableCreated | catalogue.VariableUpdated | catalogue.VariableDeleted):
        return event.variable_id
    return None


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class VariablesProjection:
    name = "variables"
    version = VERSION
    tables = (VARIABLES, VARIABLE_TAGS)
    per_event = True  # an update reads the view the batch's previous event may have written
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES:
                continue
            event = catalogue.decode(record.data)
            variable_id = _variable_id(event)
            if variable_id is None:
                continue
            current = None if isinstance(event, catalogue.VariableCreated) else await by_id(tx, variable_id)
            view = evolve_variable(current, event)
            sync_tags(changes, VARIABLE_TAGS, str(variable_id), set(current.tags) if current is not None else set(),
                      set(view.tags) if view is not None else set())
            if view is None:
                changes.delete(VARIABLES, str(variable_id))
            else:
                changes.upsert(VARIABLES, (
                    str(view.id), view.name, us(view.created), us(view.updated), _encoder.encode(view),
                ))
        return changes


__all__ = [
    "VariableView", "VariablesProjection", "by_id", "by_name", "decode_variable", "evolve_variable", "get", "get_by_name",
]
