"""Bodies of /deployments, with Prefect 3.8's names and defaults (prefect/server/schemas/actions.py,
responses.py). A create or update body tells a field not sent (msgspec's UNSET) from one sent:
Prefect's upsert and PATCH change only the fields sent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from runlog.commands.deployments import DeploymentRun, NewSchedule

from .filters import (
    DeploymentFilter, FlowFilter, FlowRunFilter, Limit, NonNegative, PageNumber, TaskRunFilter, WorkPoolFilter,
    WorkQueueFilter,
)

Unset = msgspec.UnsetType
UNSET = msgspec.UNSET
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]

DeploymentSort = Literal["CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC"]


class DeploymentScheduleCreate(NewSchedule, kw_only=True, forbid_unknown_fields=True):
    pass  # the domain's NewSchedule under Prefect's name (a docstring would join the OpenAPI document)


class DeploymentScheduleUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    active: bool | None | Unset = UNSET
    schedule: dict[str, Any] | None | Unset = UNSET
    max_scheduled_runs: PositiveInt | None | Unset = UNSET
    parameters: dict[str, Any] | Unset = UNSET
    slug: str | None | Unset = UNSET
    replaces: str | None | Unset = UNSET


class _DeploymentFields(msgspec.Struct, kw_only=True):
    """The settings a create or an update may send (each UNSET unless sent)."""

    version: str | None | Unset = UNSET
    description: str | None | Unset = UNSET
    paused: bool | Unset = UNSET
    concurrency_limit: PositiveInt | None | Unset = UNSET
    concurrency_options: dict[str, Any] | None | Unset = UNSET
    global_concurrency_limit_id: UUID | None | Unset = UNSET
    enforce_parameter_schema: bool | None | Unset = UNSET
    parameter_openapi_schema: dict[str, Any] | None | Unset = UNSET
    parameters: dict[str, Any] | None | Unset = UNSET
    tags: list[str] | Unset = UNSET
    labels: dict[str, Any] | None | Unset = UNSET
    pull_steps: list[dict[str, Any]] | None | Unset = UNSET
    work_queue_name: str | None | Unset = UNSET
    work_pool_name: str | None | Unset = UNSET
    storage_document_id: UUID | None | Unset = UNSET
    infrastructure_document_id: UUID | None | Unset = UNSET
    path: str | None | Unset = UNSET
    entrypoint: str | None | Unset = UNSET
    job_variables: dict[str, Any] | None | Unset = UNSET
    version_info: dict[str, Any] | None | Unset = UNSET
    # Fields older clients send, which Prefect drops (remove_old_deployment_fields).
    worker_pool_queue_id: Any | Unset = UNSET
    worker_pool_name: Any | Unset = UNSET
    worker_pool_queue_name: Any | Unset = UNSET
    work_pool_queue_name: Any | Unset = UNSET


_DROPPED = ("worker_pool_queue_id", "worker_pool_name", "worker_pool_queue_name", "work_pool_queue_name")
_NOT_NULL = ("parameters", "job_variables", "labels", "enforce_parameter_schema")


def fields_sent(body: _DeploymentFields) -> dict[str, Any]:
    """The settings the body sent, as plain values; a null for a field that cannot be null is
    dropped (Prefect's model would fill its default)."""
    sent = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET or name in _DROPPED or name in ("name", "flow_id", "schedules"):
            continue
        if value is None and name in _NOT_NULL:
            continue
        sent[name] = msgspec.to_builtins(value)
    return sent


class DeploymentCreate(_DeploymentFields, kw_only=True):
    name: str
    flow_id: UUID
    schedules: list[DeploymentScheduleCreate] = msgspec.field(default_factory=list)


class DeploymentUpdate(_DeploymentFields, kw_only=True):
    schedules: list[DeploymentScheduleCreate] | Unset = UNSET


class DeploymentFlowRunCreate(DeploymentRun, kw_only=True):
    pass  # the domain's DeploymentRun under Prefect's name (a docstring would join the OpenAPI document)


class DeploymentSchedule(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    deployment_id: UUID | None
    schedule: dict[str, Any]
    active: bool
    max_scheduled_runs: int | None
    parameters: dict[str, Any]
    slug: str | None


class Deployment(msgspec.Struct, kw_only=True):
    """Prefect's DeploymentResponse."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    version: str | None
    description: str | None
    flow_id: UUID
    paused: bool
    schedules: list[DeploymentSchedule]
    concurrency_limit: int | None
    global_concurrency_limit: dict[str, Any] | None
    concurrency_options: dict[str, Any] | None
    job_variables: dict[str, Any]
    parameters: dict[str, Any]
    tags: list[str]
    labels: dict[str, Any]
    work_queue_name: str | None
    work_queue_id: UUID | None
    last_polled: datetime | None
    parameter_openapi_schema: dict[str, Any] | None
    path: str | None
    pull_steps: list[dict[str, Any]] | None
    entrypoint: str | None
    storage_document_id: UUID | None
    infrastructure_document_id: UUID | None
    created_by: Any
    updated_by: Any
    work_pool_name: str | None
    status: str
    enforce_parameter_schema: bool


class DeploymentCountRequest(msgspec.Struct, kw_only=True):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None
    work_pools: WorkPoolFilter | None = None
    work_pool_queues: WorkQueueFilter | None = None


class DeploymentFilterRequest(DeploymentCountRequest, kw_only=True):
    sort: DeploymentSort | None = None
    limit: Limit | None = None
    offset: NonNegative | None = None


class DeploymentPaginateRequest(DeploymentCountRequest, kw_only=True):
    sort: DeploymentSort | None = None
    limit: Limit | None = None
    page: PageNumber | None = None


class ScheduledRunsRequest(msgspec.Struct, kw_only=True):
    deployment_ids: list[UUID]
    scheduled_before: datetime | None = None
    limit: Limit | None = None
