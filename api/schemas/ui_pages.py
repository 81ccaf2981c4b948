"""Bodies of the endpoints only Prefect's web UI calls: the flow run graph (v2), a task run with
its flow run's name, saved searches, and schema validation. Field names as Prefect 3.8.8's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from runlog.schema.events import StateType

from .filters import NonNegative
from .runs import TaskRun


class GraphState(msgspec.Struct, kw_only=True):
    id: UUID
    timestamp: datetime
    type: StateType
    name: str | None


class GraphArtifact(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    key: str | None
    type: str | None
    is_latest: bool
    data: Any = None  # a progress artifact's only, as Prefect


class Edge(msgspec.Struct, kw_only=True):
    id: UUID


class Node(msgspec.Struct, kw_only=True):
    kind: Literal["flow-run", "task-run"]
    id: UUID
    label: str
    state_type: StateType | None
    start_time: datetime
    end_time: datetime | None
    parents: list[Edge]
    children: list[Edge]
    encapsulating: list[Edge]
    artifacts: list[GraphArtifact]


class Graph(msgspec.Struct, kw_only=True):
    start_time: datetime | None
    end_time: datetime | None
    root_node_ids: list[UUID]
    nodes: list[tuple[UUID, Node]]
    artifacts: list[GraphArtifact]
    states: list[GraphState]


class UITaskRun(TaskRun, kw_only=True):
    """A task run and the name of its flow run."""

    flow_run_name: str | None = None


class SavedSearchFilter(msgspec.Struct, kw_only=True):
    """One filter of a saved search, as the UI writes it."""

    object: str
    property: str
    type: str
    operation: str
    value: Any


class SavedSearchCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    filters: list[SavedSearchFilter] = msgspec.field(default_factory=list)


class SavedSearch(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    filters: list[SavedSearchFilter]


class SavedSearchFilterRequest(msgspec.Struct, kw_only=True):
    offset: NonNegative = 0
    limit: int | None = None


class SchemaValidation(msgspec.Struct, kw_only=True):
    """POST /ui/schemas/validate: values to check against a JSON schema."""

    schema: dict[str, Any]
    values: dict[str, Any]
