"""The flow run inputs read model: one row per input, folded inline from the run-input-<run>
streams, and the reads that commands and routes share (by key, by key prefix).

A flow run's deletion takes its inputs with it, as Prefect's foreign key cascade does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .tables import changes_needed, in_list, list_param, us

_TYPES = frozenset({"flow_run_input.created", "flow_run_input.deleted", "flow_run.deleted"})

FLOW_RUN_INPUTS = Table("flow_run_inputs", ("id", "flow_run_id", "key", "created", "position", "view"), key=("id",))
# Keys are unique per run (decided on the run's input stream); should a pushed log hold two, the oldest answers.
SQL_BY_KEY = (
    "SELECT view FROM flow_run_inputs WHERE flow_run_id = ? AND key = ? ORDER BY created, position LIMIT 1"
)
SQL_IDS_OF_RUN = "SELECT id FROM flow_run_inputs WHERE flow_run_id = ?"


class FlowRunInputView(msgspec.Struct, kw_only=True):
    id: UUID
    flow_run_id: UUID
    key: str
    value: str
    sender: str | None = None
    created: datetime


_encoder = msgspec.json.Encoder()
decode_input = msgspec.json.Decoder(FlowRunInputView).decode


async def by_key(tx: Tx, flow_run_id: UUID, key: str) -> FlowRunInputView | None:
    rows = await tx.fetch(SQL_BY_KEY, str(flow_run_id), key)
    return decode_input(bytes(rows[0][0])) if rows else None


async def get_by_key(store: EventStore, flow_run_id: UUID, key: str) -> FlowRunInputView | None:
    async with store.reading() as tx:
        return await by_key(tx, flow_run_id, key)


async def filter_inputs(
    store: EventStore, flow_run_id: UUID, prefix: str, limit: int, exclude_keys: Sequence[str],
) -> list[FlowRunInputView]:
    """A run's inputs whose key starts with ``prefix``, less ``exclude_keys``, oldest first."""
    async with store.reading() as tx:
        # A plain prefix comparison rather than LIKE: the prefix is the client's text.
        sql = (
            "SELECT view FROM flow_run_inputs WHERE flow_run_id = ? AND substr(key, 1, length(?)) = ? "
            f"AND NOT ({in_list(tx, 'key')}) ORDER BY created, position LIMIT ?"
        )
        rows = await tx.fetch(sql, str(flow_run_id), prefix, prefix, list_param(tx, list(exclude_keys)), limit)
    return [decode_input(bytes(row[0])) for row in rows]


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class FlowRunInputsProjection:
    name = "flow_run_inputs"
    version = VERSION
    tables = (FLOW_RUN_INPUTS,)
    per_event = True  # a run's deletion removes the inputs the batch may just have created
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES:
                continue
            event = catalogue.decode(record.data)
            if isinstance(event, catalogue.FlowRunInputCreated) and record.stream_id.startswith(streams.RUN_INPUT):
                view = FlowRunInputView(
                    id=event.input_id, flow_run_id=event.flow_run_id, key=event.key, value=event.value,
                    sender=event.sender, created=event.created,
                )
                changes.upsert(FLOW_RUN_INPUTS, (
                    str(view.id), str(view.flow_run_id), view.key, us(view.created), record.position,
                    _encoder.encode(view),
                ))
            elif isinstance(event, catalogue.FlowRunInputDeleted):
                changes.delete(FLOW_RUN_INPUTS, str(event.input_id))
            elif isinstance(event, catalogue.FlowRunDeleted):
                for (input_id,) in await tx.fetch(SQL_IDS_OF_RUN, str(event.flow_run_id)):
                    changes.delete(FLOW_RUN_INPUTS, input_id)
        return changes


__all__ = [
    "FlowRunInputView", "FlowRunInputsProjection", "by_key", "decode_input", "filter_inputs", "get_by_key",
]
