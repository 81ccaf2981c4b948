"""The automations read model: one row per automation (with its tags and related resources),
kept inline with the log.

Each automation is its own stream (automation-<id>): Prefect lets two automations share a
name, so no write depends on another automation. The view keeps the definition as the JSON
values the event holds; the notifier turns them into structs with schema/automations.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .tables import changes_needed, sync_tags, us

_TYPES = frozenset({
    "automation.created", "automation.updated", "automation.enabled_changed", "automation.muted",
    "automation.deleted",
})

AUTOMATIONS = Table("automations", ("id", "name", "created", "updated", "view"), key=("id",))
AUTOMATION_TAGS = Table("automation_tags", ("automation_id", "tag"), key=("automation_id", "tag"))
AUTOMATION_RELATED = Table(
    "automation_resources", ("automation_id", "resource_id", "owned"), key=("automation_id", "resource_id")
)
SQL_GET = "SELECT view FROM automations WHERE id = ?"
SQL_ALL = "SELECT view FROM automations ORDER BY created, id"


class AutomationView(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    description: str = ""
    enabled: bool = True
    tags: list[str] = msgspec.field(default_factory=list)
    trigger: dict[str, Any]
    actions: list[dict[str, Any]] = msgspec.field(default_factory=list)
    actions_on_trigger: list[dict[str, Any]] = msgspec.field(default_factory=list)
    actions_on_resolve: list[dict[str, Any]] = msgspec.field(default_factory=list)
    owner_resource: str | None = None
    muted_until: datetime | None = None
    """runlog's own: no action fires before it (``runlog notification mute``)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AutomationView)
_DEFINITION_FIELDS = (
    "name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger", "actions_on_resolve",
)


def decode_automation(data: bytes) -> AutomationView:
    return _decoder.decode(data)


def stream_of(automation_id: UUID) -> str:
    return streams.automation(automation_id)


def _with_definition(view: dict[str, Any], definition: dict[str, Any]) -> AutomationView:
    fields = {k: v for k, v in definition.items() if k in _DEFINITION_FIELDS}
    return msgspec.convert({**view, **fields}, AutomationView)


def evolve_automation(view: AutomationView | None, event: Any) -> AutomationView | None:
    """Fold one event of an automation's stream."""
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.AutomationCreated):
        base = {"id": event.automation_id, "created": event.created, "updated": event.created,
                "owner_resource": event.owner_resource}
        return _with_definition(base, event.definition)
    if view is None or isinstance(event, catalogue.AutomationDeleted):
        return None
    if isinstance(event, catalogue.AutomationUpdated):
        # A PUT replaces the definition; what is not part of it (owner, mute) stays.
        kept = {"id": view.id, "created": view.created, "updated": event.updated,
                "owner_resource": view.owner_resource, "muted_until": view.muted_until}
        return _with_definition(kept, event.definition)
    if isinstance(event, catalogue.AutomationEnabledChanged):
        return replace(view, enabled=event.enabled, updated=event.updated)
    if isinstance(event, catalogue.AutomationMuted):
        return replace(view, muted_until=event.until, updated=event.updated)
    return view


async def by_id(tx: Tx, automation_id: UUID) -> AutomationView | None:
    rows = await tx.fetch(SQL_GET, str(automation_id))
    return decode_automation(bytes(rows[0][0])) if rows else None


async def every_automation(tx: Tx) -> list[AutomationView]:
    """Every automation, oldest first: what the notifier evaluates (it skips disabled and muted ones)."""
    return [decode_automation(bytes(row[0])) for row in await tx.fetch(SQL_ALL)]


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class AutomationsProjection:
    name = "automations"
    version = VERSION
    tables = (AUTOMATIONS, AUTOMATION_TAGS, AUTOMATION_RELATED)
    per_event = True  # an update reads the view the batch's previous event may have written
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES or not record.stream_id.startswith(streams.AUTOMATION):
                continue
            event = catalogue.decode(record.data)
            automation_id = event.automation_id  # type: ignore[union-attr]
            current = None if isinstance(event, catalogue.AutomationCreated) else await by_id(tx, automation_id)
            view = evolve_automation(current, event)
            key = str(automation_id)
            sync_tags(changes, AUTOMATION_TAGS, key, set(current.tags) if current is not None else set(),
                      set(view.tags) if view is not None else set())
            if view is None:
                changes.delete(AUTOMATIONS, key)
                if current is not None and current.owner_resource is not None:
                    changes.delete(AUTOMATION_RELATED, (key, current.owner_resource))
                continue
            if isinstance(event, catalogue.AutomationCreated) and view.owner_resource is not None:
                # Prefect relates an automation to the resource that owns it (related-to, owned-by).
                changes.upsert(AUTOMATION_RELATED, (key, view.owner_resource, 1))
            changes.upsert(AUTOMATIONS, (key, view.name, us(view.created), us(view.updated), _encoder.encode(view)))
        return changes


__all__ = [
    "AUTOMATIONS", "AutomationView", "AutomationsProjection", "by_id", "decode_automation", "every_automation",
    "evolve_automation",
    "stream_of",
]
