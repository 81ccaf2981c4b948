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

from runlog.eventstore import PreparedWrite, RecordedEvent, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import us

ARTIFACT_STREAM = "artifact-"
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
_decoder = msgspec.json.Decoder(ArtifactView)


def decode_artifact(data: bytes) -> ArtifactView:
    return _decoder.decode(data)


def stream_of(artifact_id: UUID) -> str:
    return ARTIFACT_STREAM + str(artifact_id)


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

SQL_GET = "SELECT view FROM artifacts WHERE id = ?"
SQL_INSERT = (
    "INSERT INTO artifacts (id, key, type, flow_run_id, task_run_id, created, updated, position, view) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
SQL_UPDATE = "UPDATE artifacts SET updated = ?, view = ? WHERE id = ?"
SQL_DELETE = "DELETE FROM artifacts WHERE id = ?"
# A new artifact with a key is its key's latest; an existing collection keeps its id and created.
SQL_UPSERT_COLLECTION = (
    "INSERT INTO artifact_collections (key, id, latest_id, created) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET latest_id = excluded.latest_id"
)
SQL_COLLECTION_OF = "SELECT key FROM artifact_collections WHERE latest_id = ?"
SQL_NEXT_LATEST = (
    "SELECT id, created FROM artifacts WHERE key = ? AND id <> ? ORDER BY created DESC, position DESC LIMIT 1"
)
SQL_HAND_OVER = "UPDATE artifact_collections SET latest_id = ?, created = ? WHERE key = ?"
SQL_DELETE_COLLECTION = "DELETE FROM artifact_collections WHERE key = ?"


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


class ArtifactsProjection:
    name = "artifacts"
    tables = ("artifacts", "artifact_collections")

    def prepare(self, rows: Sequence[Row]) -> list[PreparedWrite] | None:
        """Nothing to write for a batch without artifact events; with them, apply does the work."""
        return None if any(r.event.type in _TYPES for r in rows) else []

    async def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        for record in events:
            if record.type not in _TYPES or not record.stream_id.startswith(ARTIFACT_STREAM):
                continue
            event = catalogue.decode(record.data)
            if isinstance(event, catalogue.ArtifactCreated):
                await self._create(tx, event, record.position)
            elif isinstance(event, catalogue.ArtifactUpdated):
                rows = await tx.fetch(SQL_GET, str(event.artifact_id))
                view = evolve_artifact(decode_artifact(bytes(rows[0][0])), event) if rows else None
                if view is not None:
                    await tx.execute(SQL_UPDATE, us(view.updated), _encoder.encode(view), str(view.id))
            elif isinstance(event, catalogue.ArtifactDeleted):
                await self._delete(tx, event.artifact_id)

    async def _create(self, tx: Tx, event: catalogue.ArtifactCreated, position: int) -> None:
        view = evolve_artifact(None, event)
        assert view is not None
        await tx.execute(
            SQL_INSERT, str(view.id), view.key, view.type, _text(view.flow_run_id), _text(view.task_run_id),
            us(view.created), us(view.updated), position, _encoder.encode(view),
        )
        if view.key is not None:
            await tx.execute(
                SQL_UPSERT_COLLECTION, view.key, str(collection_id_for(view.id)), str(view.id), us(view.created)
            )

    async def _delete(self, tx: Tx, artifact_id: UUID) -> None:
        # Prefect's delete_artifact: the latest of a key hands its key to the newest one left.
        for (key,) in await tx.fetch(SQL_COLLECTION_OF, str(artifact_id)):
            following = await tx.fetch(SQL_NEXT_LATEST, key, str(artifact_id))
            if following:
                await tx.execute(SQL_HAND_OVER, following[0][0], following[0][1], key)
            else:
                await tx.execute(SQL_DELETE_COLLECTION, key)
        await tx.execute(SQL_DELETE, str(artifact_id))


__all__ = [
    "ARTIFACT_STREAM",
    "ArtifactView",
    "ArtifactsProjection",
    "collection_id_for",
    "decode_artifact",
    "evolve_artifact",
    "stream_of",
]
