"""Bodies of /flow_runs, /task_runs and their state endpoints (Prefect 3.8 shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.commands.flow_runs import FlowRunFields
from runlog.commands.orchestration import ProposedState
from runlog.commands.task_runs import NewTaskRun
from runlog.schema.events import State, StateType


class FlowRunCreate(FlowRunFields, kw_only=True):
    pass  # the domain's FlowRunFields under Prefect's name (a docstring would join the OpenAPI document)


class FlowRunUpdate(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] | None = None
    labels: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None
    infrastructure_pid: str | None = None


class SetState(msgspec.Struct, kw_only=True):
    state: ProposedState
    force: bool = False


class OrchestrationResult(msgspec.Struct, kw_only=True):
    state: State | None
    status: str
    details: dict[str, Any]


class FlowRun(msgspec.Struct, kw_only=True):
    """Prefect's FlowRunResponse."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    flow_id: UUID
    state_id: UUID | None
    deployment_id: UUID | None
    deployment_version: str | None
    work_queue_id: UUID | None = None
    work_queue_name: str | None
    flow_version: str | None
    parameters: dict[str, Any]
    idempotency_key: str | None
    context: dict[str, Any]
    empirical_policy: dict[str, Any]
    tags: list[str]
    labels: dict[str, Any]
    parent_task_run_id: UUID | None
    state_type: StateType | None
    state_name: str | None
    run_count: int
    expected_start_time: datetime | None
    next_scheduled_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    total_run_time: float
    estimated_run_time: float
    estimated_start_time_delta: float
    auto_scheduled: bool = False
    infrastructure_document_id: UUID | None = None
    infrastructure_pid: str | None = None
    created_by: Any = None
    work_pool_id: UUID | None = None
    work_pool_name: str | None
    state: State | None
    job_variables: dict[str, Any]


class TaskRunCreate(NewTaskRun, kw_only=True):
    pass  # the domain's NewTaskRun under Prefect's name (a docstring would join the OpenAPI document)


class TaskRunUpdate(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str | None = None


class TaskRun(msgspec.Struct, kw_only=True):
    """Prefect's TaskRun."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    flow_run_id: UUID | None
    task_key: str
    dynamic_key: str
    cache_key: str | None
    cache_expiration: datetime | None
    task_version: str | None
    empirical_policy: dict[str, Any]
    tags: list[str]
    labels: dict[str, Any]
    state_id: UUID | None
    task_inputs: dict[str, Any]
    state_type: StateType | None
    state_name: str | None
    run_count: int
    flow_run_run_count: int
    expected_start_time: datetime | None
    next_scheduled_start_time: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    total_run_time: float
    estimated_run_time: float
    estimated_start_time_delta: float
    state: State | None
