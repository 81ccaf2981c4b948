"""Bodies of the run history routes and the UI's summaries (Prefect 3.8 shapes):
/flow_runs/history, /task_runs/history, /flow_runs/lateness and /ui/...

As Prefect's, the history bodies name the work queue filter ``work_queues`` (``/flow_runs/count``
names it ``work_pool_queues``), and accept only ``history_interval_seconds`` for the interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from runlog.schema.events import StateType

from .filters import (
    DeploymentFilter, FlowFilter, FlowRunFilter, FlowRunSort, TaskRunFilter, WorkPoolFilter, WorkQueueFilter,
)


class TaskRunHistoryRequest(msgspec.Struct, kw_only=True):
    history_start: datetime
    history_end: datetime
    history_interval_seconds: float
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None


class FlowRunHistoryRequest(TaskRunHistoryRequest, kw_only=True):
    work_pools: WorkPoolFilter | None = None
    work_queues: WorkQueueFilter | None = None


class HistoryState(msgspec.Struct, kw_only=True):
    """Prefect's HistoryResponseState; the sums are seconds."""

    state_type: StateType
    state_name: str
    count_runs: int
    sum_estimated_run_time: float
    sum_estimated_lateness: float


class HistoryInterval(msgspec.Struct, kw_only=True):
    """Prefect's HistoryResponse: one bucket."""

    interval_start: datetime
    interval_end: datetime
    states: list[HistoryState]


# -- /ui/... ------------------------------------------------------------------------------------


UI_HISTORY_LIMIT = 1000


class UiFlowRunHistoryRequest(msgspec.Struct, kw_only=True):
    sort: FlowRunSort = "EXPECTED_START_TIME_DESC"
    # v1's runs page sends "limit": null; Prefect's server (FastAPI) takes a null body field as
    # absent, so the default applies.
    limit: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = UI_HISTORY_LIMIT
    offset: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None
    work_pools: WorkPoolFilter | None = None


class SimpleFlowRun(msgspec.Struct, kw_only=True):
    """A point of the UI's scatter of runs: durations in seconds."""

    id: UUID
    state_type: StateType | None
    timestamp: datetime | None  # the start time, or the expected start time if it has not started
    duration: float
    lateness: float


class DashboardCountsRequest(msgspec.Struct, kw_only=True):
    task_runs: TaskRunFilter  # its start_time.after_ is required (checked by the route)
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    deployments: DeploymentFilter | None = None
    work_pools: WorkPoolFilter | None = None
    work_queues: WorkQueueFilter | None = None


class TaskRunCount(msgspec.Struct, kw_only=True):
    completed: int
    failed: int


class FlowIds(msgspec.Struct, kw_only=True):
    # Prefect declares at most 200 but does not enforce it; neither does runlog.
    flow_ids: list[UUID]


class FlowRunIds(msgspec.Struct, kw_only=True):
    flow_run_ids: list[UUID]


class SimpleNextFlowRun(msgspec.Struct, kw_only=True):
    id: UUID
    flow_id: UUID
    name: str
    state_name: str
    state_type: StateType
    next_scheduled_start_time: datetime
