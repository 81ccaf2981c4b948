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

from runlog.commands.clock import Clock, system_clock
from runlog.commands.errors import Unprocessable
from runlog.commands.executor import Decided, Executor, Versioned, load_versioned, no_view, versioned
from runlog.eventstore import EventStore
from runlog.projections.artifacts import ArtifactView, evolve_artifact, stream_of
from runlog.schema import events as catalogue

from ..queries import artifacts as queries
from ..schemas.artifacts import MAX_METADATA_VALUE_LENGTH, ArtifactCreate, ArtifactUpdate


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


async def create(store: EventStore, body: ArtifactCreate, *, clock: Clock = system_clock) -> ArtifactView:
    _check_type(body.type)
    artifact_id = uuid.uuid4()

    def decide(_view: None, now: datetime) -> Decided[None]:
        return Decided([catalogue.ArtifactCreated(
            artifact_id=artifact_id, key=body.key, type=body.type, description=body.description, data=body.data,
            metadata_=truncate_metadata(body.metadata_), flow_run_id=body.flow_run_id, task_run_id=body.task_run_id,
            created=now,
        )])

    outcome = await Executor(store, clock=clock).execute(
        stream_of(artifact_id), load=no_view, decide=decide, evolve=lambda view, event, _v: evolve_artifact(view, event),
        retry_conflicts=False,  # a new id: its stream cannot exist
    )
    assert outcome.view is not None
    return outcome.view


def changes_of(body: ArtifactUpdate) -> dict[str, Any]:
    """The fields the client sent; an explicit null sets the field to null, as in Prefect."""
    changes = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not msgspec.UNSET}
    if "metadata_" in changes:
        changes["metadata_"] = truncate_metadata(changes["metadata_"])
    return changes


async def _command(store: EventStore, artifact_id: UUID, decide, clock: Clock) -> bool:  # type: ignore[no-untyped-def]
    stream = stream_of(artifact_id)
    outcome = await Executor(store, clock=clock).execute(
        stream, load=lambda: load_versioned(store, stream, lambda: queries.get(store, artifact_id)),
        decide=decide, evolve=versioned(evolve_artifact),
    )
    return outcome.result


async def update(store: EventStore, artifact_id: UUID, body: ArtifactUpdate, *, clock: Clock = system_clock) -> bool:
    """Whether the artifact exists. Its latest-of-key row shows the update when it is the latest."""
    changes = changes_of(body)

    def decide(artifact: Versioned[ArtifactView], now: datetime) -> Decided[bool]:
        if artifact.view is None:
            return Decided((), False)
        return Decided([catalogue.ArtifactUpdated(artifact_id=artifact_id, changes=changes, updated=now)], True)

    return await _command(store, artifact_id, decide, clock)


async def delete(store: EventStore, artifact_id: UUID, *, clock: Clock = system_clock) -> bool:
    """Whether the artifact existed. Deleting the latest of a key hands the key to the newest left."""

    def decide(artifact: Versioned[ArtifactView], _now: datetime) -> Decided[bool]:
        if artifact.view is None:
            return Decided((), False)
        return Decided([catalogue.ArtifactDeleted(artifact_id=artifact_id)], True)

    return await _command(store, artifact_id, decide, clock)
