"""The flows read model: one row per registered flow, kept inline with the log, and its reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import streams
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import read_view, us, view_in


FLOWS = Table("flows", ("id", "name", "created", "view"), key=("id",))
SQL_GET = "SELECT view FROM flows WHERE id = ?"


class FlowView(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    created: datetime
    updated: datetime
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
decode_flow = msgspec.json.Decoder(FlowView).decode


async def get(store: EventStore, flow_id: UUID) -> FlowView | None:
    return await read_view(store, SQL_GET, str(flow_id), decode_flow)


def evolve_flow(view: FlowView | None, event: Any) -> FlowView | None:
    if isinstance(event, catalogue.FlowCreated):
        return FlowView(
            id=event.flow_id, name=event.name, created=event.created, updated=event.created,
            tags=event.tags, labels=event.labels,
        )
    if isinstance(event, catalogue.FlowDeleted):
        return None
    if isinstance(event, catalogue.FlowUpdated) and view is not None:
        changes = {k: v for k, v in event.changes.items() if k in ("tags", "labels")}
        merged = msgspec.convert({**msgspec.to_builtins(view), **changes}, FlowView)
        return msgspec.structs.replace(merged, updated=event.updated)
    return view


def _is_flow_event(event_type: str) -> bool:
    return event_type.startswith("flow.")


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class FlowsProjection:
    name = "flows"
    version = VERSION
    reads_by_key_only = True  # it reads flows by id only: a rebuild's shadow needs no other index
    tables = (FLOWS,)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """Nothing to write for a batch without flow events; with them, ``changes`` reads."""
        return None if any(_is_flow_event(r.event.type) for r in rows) else RowChanges()

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        views: dict[str, FlowView | None] = {}
        for event in events:
            if not _is_flow_event(event.type):
                continue
            flow_id = event.stream_id.removeprefix(streams.FLOW)
            if flow_id in views:
                current = views[flow_id]
            elif event.type == "flow.updated":
                current = await view_in(tx, SQL_GET, flow_id, decode_flow)
            else:
                current = None
            view = views[flow_id] = evolve_flow(current, catalogue.decode(event.data))
            if view is None:
                changes.delete(FLOWS, flow_id)
            else:
                changes.upsert(FLOWS, (str(view.id), view.name, us(view.created), _encoder.encode(view)))
        return changes
