"""Bodies of /work_pools, /work_queues and the workers' routes, with Prefect 3.8's names,
limits and defaults (prefect/server/schemas/actions.py, responses.py, filters.py).

As in Prefect, create and update bodies forbid unknown fields. An update tells a field sent as
``null`` from one not sent (msgspec's UNSET).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from .filters import Limit, NonNegative, Operator, WorkPoolFilter, WorkQueueFilter, _Filter, _OperatorFilter
from .runs import FlowRun

# Prefect's Name: none of / % & > <, not empty. A pool's name must also hold more than blanks
# and quotes (Prefect's non_emptyish; checked by the route).
Name = Annotated[str, msgspec.Meta(pattern=r"^[^/%&><]+$")]
NonEmptyishName = Name
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
PoolStatus = Literal["READY", "NOT_READY", "PAUSED"]
WorkerStatus = Literal["ONLINE", "OFFLINE"]


class StorageConfiguration(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    bundle_upload_step: dict[str, Any] | None = None
    bundle_execution_step: dict[str, Any] | None = None
    default_result_storage_block_id: UUID | None = None


class WorkPoolCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: NonEmptyishName
    description: str | None = None
    type: str = "prefect-agent"
    base_job_template: dict[str, Any] = msgspec.field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: NonNegativeInt | None = None
    storage_configuration: StorageConfiguration = msgspec.field(default_factory=StorageConfiguration)


class WorkPoolUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    is_paused: bool | None | msgspec.UnsetType = msgspec.UNSET
    base_job_template: dict[str, Any] | None | msgspec.UnsetType = msgspec.UNSET
    concurrency_limit: NonNegativeInt | None | msgspec.UnsetType = msgspec.UNSET
    storage_configuration: StorageConfiguration | None | msgspec.UnsetType = msgspec.UNSET


class WorkPool(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    description: str | None
    type: str
    base_job_template: dict[str, Any]
    is_paused: bool
    concurrency_limit: int | None
    status: PoolStatus | None
    default_queue_id: UUID
    storage_configuration: StorageConfiguration
    active_slots: int | None = None


class WorkQueueCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: NonNegativeInt | None = None
    priority: PositiveInt | None = None
    filter: Any = None  # deprecated in Prefect; accepted and ignored
    work_pool_name: str | None = None
    """Only on POST /work_queues/ (Prefect's WorkQueueCreate there): the pool, else the default one."""


class WorkQueueUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Name | None | msgspec.UnsetType = msgspec.UNSET
    description: str | None | msgspec.UnsetType = msgspec.UNSET
    is_paused: bool | msgspec.UnsetType = msgspec.UNSET
    concurrency_limit: NonNegativeInt | None | msgspec.UnsetType = msgspec.UNSET
    priority: PositiveInt | None | msgspec.UnsetType = msgspec.UNSET
    last_polled: datetime | None | msgspec.UnsetType = msgspec.UNSET
    filter: Any = msgspec.UNSET


class WorkQueueCore(msgspec.Struct, kw_only=True):
    """Prefect's schemas.core.WorkQueue: a queue without its pool's name or its status (what
    /deployments/{id}/work_queue_check answers)."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    description: str | None
    is_paused: bool
    concurrency_limit: int | None
    priority: int
    work_pool_id: UUID
    filter: Any = None
    last_polled: datetime | None


class WorkQueue(WorkQueueCore, kw_only=True):
    """Prefect's WorkQueueResponse: the queue with its pool's name and its status."""

    work_pool_name: str | None
    status: PoolStatus | None
    active_slots: int | None = None


class WorkQueueHealthPolicy(msgspec.Struct, kw_only=True):
    maximum_late_runs: int | None = 0
    maximum_seconds_since_last_polled: int | None = 60


class WorkQueueStatusDetail(msgspec.Struct, kw_only=True):
    healthy: bool
    late_runs_count: int = 0
    last_polled: datetime | None = None
    health_check_policy: WorkQueueHealthPolicy


class Worker(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    work_pool_id: UUID
    last_heartbeat_time: datetime | None
    heartbeat_interval_seconds: int | None
    status: WorkerStatus


class WorkerHeartbeat(msgspec.Struct, kw_only=True):
    name: str
    heartbeat_interval_seconds: int | None = None
    return_id: bool = False


class WorkerFilterStatus(_Filter, kw_only=True):
    any_: list[WorkerStatus] | None = None
    not_any_: list[WorkerStatus] | None = None


class WorkerFilterLastHeartbeatTime(_Filter, kw_only=True):
    before_: datetime | None = None
    after_: datetime | None = None


class WorkerFilter(_OperatorFilter, kw_only=True):
    last_heartbeat_time: WorkerFilterLastHeartbeatTime | None = None
    status: WorkerFilterStatus | None = None


class WorkPoolCountRequest(msgspec.Struct, kw_only=True):
    work_pools: WorkPoolFilter | None = None


class WorkPoolFilterRequest(WorkPoolCountRequest, kw_only=True):
    limit: Limit | None = None
    offset: NonNegative | None = None
    sort: None = None


class WorkQueueFilterRequest(msgspec.Struct, kw_only=True):
    work_queues: WorkQueueFilter | None = None
    limit: Limit | None = None
    offset: NonNegative | None = None
    sort: None = None


class WorkerFilterRequest(msgspec.Struct, kw_only=True):
    workers: WorkerFilter | None = None
    limit: Limit | None = None
    offset: NonNegative | None = None
    sort: None = None


class ScheduledRunsRequest(msgspec.Struct, kw_only=True):
    work_queue_names: list[str] | None = None
    scheduled_before: datetime | None = None
    scheduled_after: datetime | None = None
    limit: Limit | None = None


class WorkQueueRunsRequest(msgspec.Struct, kw_only=True):
    scheduled_before: datetime | None = None
    limit: Limit | None = None
    agent_id: UUID | None = None


class WorkerFlowRun(msgspec.Struct, kw_only=True):
    work_pool_id: UUID
    work_queue_id: UUID
    flow_run: FlowRun


__all__ = [
    "Operator", "ScheduledRunsRequest", "StorageConfiguration", "WorkPool", "WorkPoolCountRequest", "WorkPoolCreate",
    "WorkPoolFilterRequest", "WorkPoolUpdate", "WorkQueue", "WorkQueueCreate", "WorkQueueFilterRequest",
    "WorkQueueRunsRequest", "WorkQueueStatusDetail", "WorkQueueUpdate", "Worker", "WorkerFilterRequest", "WorkerFlowRun",
    "WorkerHeartbeat",
]
