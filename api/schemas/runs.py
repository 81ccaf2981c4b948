"""Bodies of /flow_runs, /task_runs and their state endpoints (Prefect 3.8 shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema.events import State, StateType

from runlog.commands.orchestration import ProposedState

DEFAULT_POLICY = {
    "max_retries": 0, "retry_delay_seconds": 0.0, "retries": None, "retry_delay": None,
    "pause_keys": [], "resuming": False, "retry_type": None,
}


class FlowRunCreate(msgspec.Struct, kw_only=True):
    flow_id: UUID
    name: str | None = None
    state: ProposedState | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    parent_task_run_id: UUID | None = None
    idempotency_key: str | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | None = None
    deployment_id: UUID | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None


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


class TaskRunCreate(msgspec.Struct, kw_only=True):
    task_key: str
    dynamic_key: str
    name: str | None = None
    flow_run_id: UUID | None = None
    id: UUID | None = None
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    task_version: str | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | None = None
    task_inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    state: ProposedState | None = None


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
