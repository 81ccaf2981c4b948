"""Bodies of /flow_runs/filter, /flow_runs/count, /flow_runs/paginate and their task run twins.

The field names, defaults and nesting are Prefect 3.8's (prefect/server/schemas/filters.py and
sorting.py). Filter objects forbid unknown fields, as Prefect's do; the request bodies around
them do not (FastAPI ignores extra body keys). A top-level ``null`` means "use the default",
as FastAPI treats it, because the Prefect client sends ``"sort": null`` and ``"limit": null``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from runlog.schema.events import StateType

Operator = Literal["and_", "or_"]

FlowRunSort = Literal[
    "ID_DESC", "START_TIME_ASC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC",
    "NAME_ASC", "NAME_DESC", "NEXT_SCHEDULED_START_TIME_ASC", "END_TIME_DESC",
]
TaskRunSort = Literal[
    "ID_DESC", "EXPECTED_START_TIME_ASC", "EXPECTED_START_TIME_DESC", "NAME_ASC", "NAME_DESC",
    "NEXT_SCHEDULED_START_TIME_ASC", "END_TIME_DESC",
]

# Bounded so an offset always fits the databases' 64-bit integers: a larger one is a 422, not
# an overflow (a 500). A page becomes the offset (page - 1) * limit, with limit at most 200.
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# Prefect's LimitBody: null means the default (200), which is also the largest accepted.
Limit = Annotated[int, msgspec.Meta(ge=0, le=200)]
PageNumber = Annotated[int, msgspec.Meta(ge=1, le=(2**63 - 1) // 200)]


class _Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A filter whose criteria are always combined with AND."""


class _OperatorFilter(_Filter, kw_only=True):
    """A filter whose criteria are combined with the caller's operator."""

    operator: Operator = "and_"


# -- flows ------------------------------------------------------------------------------------


class FlowFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class FlowFilterDeployment(_OperatorFilter, kw_only=True):
    is_null_: bool | None = None


class FlowFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class FlowFilterTags(_OperatorFilter, kw_only=True):
    all_: list[str] | None = None
    is_null_: bool | None = None


class FlowFilter(_OperatorFilter, kw_only=True):
    id: FlowFilterId | None = None
    deployment: FlowFilterDeployment | None = None
    name: FlowFilterName | None = None
    tags: FlowFilterTags | None = None


# -- flow runs --------------------------------------------------------------------------------


class FlowRunFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class FlowRunFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class FlowRunFilterTags(_OperatorFilter, kw_only=True):
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilterDeploymentId(_OperatorFilter, kw_only=True):
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class FlowRunFilterWorkQueueName(_OperatorFilter, kw_only=True):
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilterStateType(_Filter, kw_only=True):
    any_: list[StateType] | None = None
    not_any_: list[StateType] | None = None


class FlowRunFilterStateName(_Filter, kw_only=True):
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class FlowRunFilterState(_OperatorFilter, kw_only=True):
    type: FlowRunFilterStateType | None = None
    name: FlowRunFilterStateName | None = None


class FlowRunFilterFlowVersion(_Filter, kw_only=True):
    any_: list[str] | None = None


class TimeFilter(_Filter, kw_only=True):
    """before_/after_ are inclusive bounds."""

    before_: datetime | None = None
    after_: datetime | None = None


class NullableTimeFilter(TimeFilter, kw_only=True):
    is_null_: bool | None = None


class FlowRunFilterParentFlowRunId(_OperatorFilter, kw_only=True):
    any_: list[UUID] | None = None


class FlowRunFilterParentTaskRunId(_OperatorFilter, kw_only=True):
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class FlowRunFilterIdempotencyKey(_Filter, kw_only=True):
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class FlowRunFilterCreatedBy(_OperatorFilter, kw_only=True):
    id_: list[UUID] | None = None
    type_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilter(_OperatorFilter, kw_only=True):
    id: FlowRunFilterId | None = None
    name: FlowRunFilterName | None = None
    tags: FlowRunFilterTags | None = None
    deployment_id: FlowRunFilterDeploymentId | None = None
    work_queue_name: FlowRunFilterWorkQueueName | None = None
    state: FlowRunFilterState | None = None
    flow_version: FlowRunFilterFlowVersion | None = None
    start_time: NullableTimeFilter | None = None
    end_time: NullableTimeFilter | None = None
    expected_start_time: TimeFilter | None = None
    next_scheduled_start_time: TimeFilter | None = None
    parent_flow_run_id: FlowRunFilterParentFlowRunId | None = None
    parent_task_run_id: FlowRunFilterParentTaskRunId | None = None
    idempotency_key: FlowRunFilterIdempotencyKey | None = None
    created_by: FlowRunFilterCreatedBy | None = None


# -- task runs --------------------------------------------------------------------------------


class TaskRunFilterFlowRunId(_OperatorFilter, kw_only=True):
    any_: list[UUID] | None = None
    # Prefect's default: a present-but-empty flow_run_id filter means "has a flow run".
    is_null_: bool | None = False


class TaskRunFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class TaskRunFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class TaskRunFilterTags(_OperatorFilter, kw_only=True):
    all_: list[str] | None = None
    is_null_: bool | None = None


class TaskRunFilterStateType(_Filter, kw_only=True):
    any_: list[StateType] | None = None


class TaskRunFilterStateName(_Filter, kw_only=True):
    any_: list[str] | None = None


class TaskRunFilterState(_OperatorFilter, kw_only=True):
    type: TaskRunFilterStateType | None = None
    name: TaskRunFilterStateName | None = None


class TaskRunFilterSubFlowRuns(_Filter, kw_only=True):
    exists_: bool | None = None


class TaskRunFilter(_OperatorFilter, kw_only=True):
    id: TaskRunFilterId | None = None
    name: TaskRunFilterName | None = None
    tags: TaskRunFilterTags | None = None
    state: TaskRunFilterState | None = None
    start_time: NullableTimeFilter | None = None
    end_time: NullableTimeFilter | None = None
    expected_start_time: TimeFilter | None = None
    subflow_runs: TaskRunFilterSubFlowRuns | None = None
    flow_run_id: TaskRunFilterFlowRunId | None = None


# -- deployments (runlog keeps no deployments table: a deployment is known by its id alone) ----


class DeploymentFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class DeploymentFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class DeploymentOrFlowNameFilter(_Filter, kw_only=True):
    like_: str | None = None


class DeploymentFilterPaused(_Filter, kw_only=True):
    eq_: bool | None = None


class DeploymentFilterTags(_OperatorFilter, kw_only=True):
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class DeploymentFilterWorkQueueName(_Filter, kw_only=True):
    any_: list[str] | None = None


class DeploymentFilterConcurrencyLimit(_Filter, kw_only=True):
    """Deprecated in Prefect, which ignores it; so does runlog."""

    ge_: int | None = None
    le_: int | None = None
    is_null_: bool | None = None


class DeploymentFilter(_OperatorFilter, kw_only=True):
    id: DeploymentFilterId | None = None
    # runlog knows nothing of a deployment but its id: a criterion set in any of these
    # matches no deployment, as on a Prefect server that has no such deployment.
    name: DeploymentFilterName | None = None
    flow_or_deployment_name: DeploymentOrFlowNameFilter | None = None
    paused: DeploymentFilterPaused | None = None
    tags: DeploymentFilterTags | None = None
    work_queue_name: DeploymentFilterWorkQueueName | None = None
    concurrency_limit: DeploymentFilterConcurrencyLimit | None = None


# -- work pools and work queues (runlog has none: a filter on them matches no flow run) ------


class WorkPoolFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class WorkPoolFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None


class WorkPoolFilterType(_Filter, kw_only=True):
    any_: list[str] | None = None


class WorkPoolFilter(_OperatorFilter, kw_only=True):
    id: WorkPoolFilterId | None = None
    name: WorkPoolFilterName | None = None
    type: WorkPoolFilterType | None = None


class WorkQueueFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class WorkQueueFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    startswith_: list[str] | None = None


class WorkQueueFilter(_OperatorFilter, kw_only=True):
    id: WorkQueueFilterId | None = None
    name: WorkQueueFilterName | None = None


# -- request bodies ---------------------------------------------------------------------------


class FlowRunCountRequest(msgspec.Struct, kw_only=True):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None
    work_pools: WorkPoolFilter | None = None
    work_pool_queues: WorkQueueFilter | None = None


class FlowRunFilterRequest(FlowRunCountRequest, kw_only=True):
    sort: FlowRunSort | None = None
    limit: Limit | None = None
    offset: NonNegative | None = None


class FlowRunPaginateRequest(FlowRunCountRequest, kw_only=True):
    sort: FlowRunSort | None = None
    limit: Limit | None = None
    page: PageNumber | None = None


class TaskRunCountRequest(msgspec.Struct, kw_only=True):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None


class TaskRunFilterRequest(TaskRunCountRequest, kw_only=True):
    sort: TaskRunSort | None = None
    limit: Limit | None = None
    offset: NonNegative | None = None


class TaskRunPaginateRequest(TaskRunCountRequest, kw_only=True):
    sort: TaskRunSort | None = None
    limit: Limit | None = None
    page: PageNumber | None = None


class Page(msgspec.Struct, kw_only=True):
    """Prefect's FlowRunPaginationResponse / TaskRunPaginationResponse."""

    results: list[Any]
    count: int
    limit: int
    pages: int
    page: int
