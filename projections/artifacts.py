"""The artifacts read model: every artifact, and the latest artifact of each key, kept inline.

Each artifact is its own stream (artifact-<id>), so creating one never waits on another. The
latest-per-key table is Prefect's ``artifact_collection``: a new artifact with a key becomes
its key's latest (the collection keeps its id and creation time); updating the latest artifact
is what the collection shows; deleting the latest hands the key to the newest artifact left
(by creation time, then log position), or removes the key when none is left. A collection's
id is derived from the artifact that opened it, so a rebuild gives the same ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import streams
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import changes_needed, read_view, text, us

COLLECTION_NAMESPACE = uuid.UUID("9a0f3c1e-5b2d-4e7a-8c61-72756e6c6f67")

_TYPES = frozenset({"artifact.created", "artifact.updated", "artifact.deleted"})
_FIELDS = ("data", "description", "metadata_")


class ArtifactView(msgspec.Struct, kw_only=True):
    id: UUID
    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    created: datetime
    updated: datetime


_encoder = msgspec.json.Encoder()
decode_artifact = msgspec.json.Decoder(ArtifactView).decode


def stream_of(artifact_id: UUID) -> str:
    return streams.artifact(artifact_id)


def collection_id_for(opening_artifact_id: UUID) -> UUID:
    """The id of the collection (latest-per-key row) that this artifact's creation opened."""
    return uuid.uuid5(COLLECTION_NAMESPACE, str(opening_artifact_id))


def evolve_artifact(view: ArtifactView | None, event: Any) -> ArtifactView | None:
    """Fold one event of an artifact's stream."""
    if isinstance(event, catalogue.ArtifactCreated):
        return ArtifactView(
            id=event.artifact_id, key=event.key, type=event.type, description=event.description, data=event.data,
            metadata_=event.metadata_, flow_run_id=event.flow_run_id, task_run_id=event.task_run_id,
            created=event.created, updated=event.created,
        )
    if view is None or isinstance(event, catalogue.ArtifactDeleted):
        return None
    if isinstance(event, catalogue.ArtifactUpdated):
        changes = {k: v for k, v in event.changes.items() if k in _FIELDS}
        merged = msgspec.convert({**msgspec.to_builtins(view), **changes}, ArtifactView)
        return msgspec.structs.replace(merged, updated=event.updated)
    return view


# -- storage ----------------------------------------------------------------------------------

ARTIFACTS = Table(
    "artifacts",
    ("id", "key", "type", "flow_run_id", "task_run_id", "created", "updated", "position", "view"),
    key=("id",),
)
COLLECTIONS = Table("artifact_collections", ("key", "id", "latest_id", "created"), key=("key",))

SQL_GET = "SELECT id, key, type, flow_run_id, task_run_id, created, updated, position, view FROM artifacts WHERE id = ?"
SQL_COLLECTION = "SELECT key, id, latest_id, created FROM artifact_collections WHERE key = ?"
SQL_COLLECTION_OF = "SELECT key, id, latest_id, created FROM artifact_collections WHERE latest_id = ?"
SQL_NEXT_LATEST = (
    "SELECT id, created FROM artifacts WHERE key = ? AND id <> ? ORDER BY created DESC, position DESC LIMIT 1"
)


SQL_VIEW = "SELECT view FROM artifacts WHERE id = ?"


async def get(store: EventStore, artifact_id: UUID) -> ArtifactView | None:
    return await read_view(store, SQL_VIEW, str(artifact_id), decode_artifact)


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class ArtifactsProjection:
    name = "artifacts"
    version = VERSION
    tables = (ARTIFACTS, COLLECTIONS)
    per_event = True  # a delete hands its key to the newest artifact left, which the batch may hold
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES or not record.stream_id.startswith(streams.ARTIFACT):
                continue
            event = catalogue.decode(record.data)
            if isinstance(event, catalogue.ArtifactCreated):
                await self._create(tx, changes, event, record.position)
            elif isinstance(event, catalogue.ArtifactUpdated):
                rows = await tx.fetch(SQL_GET, str(event.artifact_id))
                if rows:
                    row = tuple(rows[0])
                    view = evolve_artifact(decode_artifact(bytes(row[8])), event)
                    if view is not None:
                        changes.upsert(ARTIFACTS, (*row[:6], us(view.updated), row[7], _encoder.encode(view)))
            elif isinstance(event, catalogue.ArtifactDeleted):
                await self._delete(tx, changes, event.artifact_id)
        return changes

    async def _create(self, tx: Tx, changes: RowChanges, event: catalogue.ArtifactCreated, position: int) -> None:
        view = evolve_artifact(None, event)
        assert view is not None
        changes.upsert(ARTIFACTS, (
            str(view.id), view.key, view.type, text(view.flow_run_id), text(view.task_run_id),
            us(view.created), us(view.updated), position, _encoder.encode(view),
        ))
        if view.key is not None:
            # A new artifact with a key is its key's latest; an existing collection keeps its
            # id and creation time.
            rows = await tx.fetch(SQL_COLLECTION, view.key)
            if rows:
                key, collection_id, _latest, created = rows[0]
                changes.upsert(COLLECTIONS, (key, collection_id, str(view.id), created))
            else:
                changes.upsert(COLLECTIONS, (view.key, str(collection_id_for(view.id)), str(view.id), us(view.created)))

    async def _delete(self, tx: Tx, changes: RowChanges, artifact_id: UUID) -> None:
        # Prefect's delete_artifact: the latest of a key hands its key to the newest one left.
        for key, collection_id, _latest, _created in await tx.fetch(SQL_COLLECTION_OF, str(artifact_id)):
            following = await tx.fetch(SQL_NEXT_LATEST, key, str(artifact_id))
            if following:
                changes.upsert(COLLECTIONS, (key, collection_id, following[0][0], following[0][1]))
            else:
                changes.delete(COLLECTIONS, key)
        changes.delete(ARTIFACTS, str(artifact_id))


__all__ = [
    "ArtifactView",
    "ArtifactsProjection",
    "collection_id_for",
    "decode_artifact",
    "evolve_artifact",
    "get",
    "stream_of",
]
