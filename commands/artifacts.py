"""Creating, updating and deleting artifacts: one stream per artifact (artifact-<id>).

An artifact's writes never depend on another artifact's, so there is nothing to decide across
streams: which artifact is the latest of its key follows from the log's order, and the
artifacts projection works it out in the append's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections import artifacts as reads
from runlog.projections.artifacts import ArtifactView, evolve_artifact, stream_of
from runlog.schema import events as catalogue

from .clock import Clock, system_clock
from .errors import Unprocessable
from .entities import EntityStream
from .executor import Decided

MAX_METADATA_VALUE_LENGTH = 500
"""Prefect keeps the first 500 characters of a longer metadata value, followed by "..."."""


class NewArtifact(msgspec.Struct, kw_only=True):
    """An artifact to create (POST /artifacts/ extends it with Prefect's key pattern)."""

    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


ARTIFACTS = EntityStream(stream_of, reads.get, evolve_artifact, versioned=True)


class InvalidArtifact(Unprocessable):
    """A field the database cannot hold: answered with 422."""


def truncate_metadata(metadata: dict[str, str] | None) -> dict[str, str] | None:
    """Prefect's validate_max_metadata_length: a value over 500 characters keeps its first 500
    followed by "..."."""
    if metadata is None:
        return None
    return {
        key: value if len(value) <= MAX_METADATA_VALUE_LENGTH else value[:MAX_METADATA_VALUE_LENGTH] + "..."
        for key, value in metadata.items()
    }


def _check_type(artifact_type: str | None) -> None:
    # The type is copied into a text column for filtering, and PostgreSQL text cannot hold NUL.
    if artifact_type is not None and "\x00" in artifact_type:
        raise InvalidArtifact("Artifact type must not contain the NUL character")


async def create(store: EventStore, body: NewArtifact, *, clock: Clock = system_clock) -> ArtifactView:
    _check_type(body.type)
    artifact_id = uuid.uuid4()

    def decide(_view: None, now: datetime) -> Decided[None]:
        return Decided([catalogue.ArtifactCreated(
            artifact_id=artifact_id, key=body.key, type=body.type, description=body.description, data=body.data,
            metadata_=truncate_metadata(body.metadata_), flow_run_id=body.flow_run_id, task_run_id=body.task_run_id,
            created=now,
        )])

    return await ARTIFACTS.create(store, artifact_id, decide, clock=clock)  # a new id: its stream cannot exist


def _truncated(changes: dict[str, Any]) -> dict[str, Any]:
    if "metadata_" in changes:
        return {**changes, "metadata_": truncate_metadata(changes["metadata_"])}
    return changes


async def update(
    store: EventStore, artifact_id: UUID, changes: dict[str, Any], *, clock: Clock = system_clock
) -> bool:
    """Set the fields in ``changes`` (data, description, metadata_); whether the artifact exists.
    Its latest-of-key row shows the update when it is the latest."""
    changes = _truncated(changes)

    def changed(_artifact: ArtifactView, now: datetime) -> list[catalogue.Event]:
        return [catalogue.ArtifactUpdated(artifact_id=artifact_id, changes=changes, updated=now)]

    return await ARTIFACTS.if_exists(store, artifact_id, changed, clock=clock)


async def delete(store: EventStore, artifact_id: UUID, *, clock: Clock = system_clock) -> bool:
    """Whether the artifact existed. Deleting the latest of a key hands the key to the newest left."""
    return await ARTIFACTS.delete(store, artifact_id, catalogue.ArtifactDeleted(artifact_id=artifact_id), clock=clock)
