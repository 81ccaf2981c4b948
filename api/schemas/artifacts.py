"""Bodies of /artifacts, with Prefect 3.8's names and defaults.

Create and update bodies forbid unknown fields, as Prefect's do; an update tells a field sent
as ``null`` from one not sent (msgspec's UNSET). The filter requests also take Prefect's
flow run, task run, flow and deployment filters, evaluated like /flow_runs/filter's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from runlog.commands.artifacts import NewArtifact

from .filters import DeploymentFilter, FlowFilter, FlowRunFilter, NonNegative, Operator, TaskRunFilter

MAX_ARTIFACT_KEY_LENGTH = 2000
"""runlog's own bound (Prefect has none): keys are indexed, and an index entry must stay small."""

ARTIFACT_KEY_PATTERN = "^[a-z0-9-]*$"
"""Prefect's: lowercase letters, numbers and dashes."""

ArtifactKey = Annotated[str, msgspec.Meta(pattern=ARTIFACT_KEY_PATTERN, max_length=MAX_ARTIFACT_KEY_LENGTH)]

ArtifactSort = Literal["CREATED_DESC", "UPDATED_DESC", "ID_DESC", "KEY_DESC", "KEY_ASC"]


class ArtifactCreate(NewArtifact, kw_only=True, forbid_unknown_fields=True):
    # The domain's NewArtifact, with Prefect's key pattern and no unknown fields.
    key: ArtifactKey | None = None


class ArtifactUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    data: Any | msgspec.UnsetType = msgspec.UNSET
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    metadata_: dict[str, str] | None | msgspec.UnsetType = msgspec.UNSET


class Artifact(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    key: str | None
    type: str | None
    description: str | None
    data: Any
    metadata_: dict[str, str] | None
    flow_run_id: UUID | None
    task_run_id: UUID | None


class ArtifactCollection(msgspec.Struct, kw_only=True):
    """The latest artifact of a key, under the collection's own id and creation time."""

    id: UUID
    created: datetime
    updated: datetime
    key: str
    latest_id: UUID
    type: str | None
    description: str | None
    data: Any
    metadata_: dict[str, str] | None
    flow_run_id: UUID | None
    task_run_id: UUID | None


class _Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class AnyIds(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class ArtifactFilterKey(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None
    exists_: bool | None = None


class ArtifactFilterType(_Filter, kw_only=True):
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class _ArtifactFields(_Filter, kw_only=True):
    """What ArtifactFilter and ArtifactCollectionFilter share: all but the id they filter on."""

    operator: Operator = "and_"
    key: ArtifactFilterKey | None = None
    flow_run_id: AnyIds | None = None
    task_run_id: AnyIds | None = None
    type: ArtifactFilterType | None = None


class ArtifactFilter(_ArtifactFields, kw_only=True):
    id: AnyIds | None = None


class ArtifactCollectionFilter(_ArtifactFields, kw_only=True):
    latest_id: AnyIds | None = None


class _RunFilters(msgspec.Struct, kw_only=True):
    """A top-level ``null`` means the default, as FastAPI treats it."""

    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    flows: FlowFilter | None = None
    deployments: DeploymentFilter | None = None


class _Page(_RunFilters, kw_only=True):
    sort: ArtifactSort | None = None
    limit: int | None = None
    offset: NonNegative | None = None


class ArtifactCountRequest(_RunFilters, kw_only=True):
    artifacts: ArtifactFilter | None = None


class ArtifactFilterRequest(_Page, kw_only=True):
    artifacts: ArtifactFilter | None = None


class ArtifactCollectionCountRequest(_RunFilters, kw_only=True):
    artifacts: ArtifactCollectionFilter | None = None


class ArtifactCollectionFilterRequest(_Page, kw_only=True):
    artifacts: ArtifactCollectionFilter | None = None
