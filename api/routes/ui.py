"""The summaries Prefect 3.8's web UI asks for under /ui/: the scatter of recent flow runs, task run
counts (by state, and the dashboard's 20 buckets of finished runs), and per-flow or per-run
counts and next runs. Same answers as Prefect's for the same runs."""

from __future__ import annotations

import msgspec
from aiohttp import web

from runlog.projections.history import TERMINAL_TYPES
from runlog.projections.runs import estimated_run_time, estimated_start_time_delta
from runlog.projections.tables import from_us

from .. import keys
from ..http import Unprocessable, decode_body, json_response
from ..openapi import documented
from ..queries import history as queries
from ..queries.run_filters import FLOW_RUNS
from ..schemas import filters as f
from ..schemas.history import (
    UI_HISTORY_LIMIT, DashboardCountsRequest, FlowIds, FlowRunIds, SimpleFlowRun, SimpleNextFlowRun, TaskRunCount,
    UiFlowRunHistoryRequest,
)

routes = web.RouteTableDef()

# Prefect's CountByState: every state type, in its order, 0 when none.
COUNT_BY_STATE_KEYS = (
    "COMPLETED", "PENDING", "RUNNING", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING", "SCHEDULED",
)


@routes.post("/ui/flow_runs/history")
@documented(
    summary="Recent flow runs as points: time, state, duration and lateness", request=UiFlowRunHistoryRequest,
    request_required=False, response=list[SimpleFlowRun],
)
async def read_flow_run_history(request: web.Request) -> web.Response:
    body = await decode_body(request, UiFlowRunHistoryRequest, default=UiFlowRunHistoryRequest())
    filters = f.FlowRunCountRequest(
        flows=body.flows, flow_runs=body.flow_runs, task_runs=body.task_runs, deployments=body.deployments,
        work_pools=body.work_pools,
    )
    views = await FLOW_RUNS.page(
        request.config_dict[keys.STORE], filters, sort=body.sort,
        limit=UI_HISTORY_LIMIT if body.limit is None else body.limit, offset=body.offset,
    )
    now = request.config_dict[keys.CLOCK]()
    return json_response([
        SimpleFlowRun(
            id=v.id, state_type=v.state.type if v.state else None, timestamp=v.start_time or v.expected_start_time,
            duration=estimated_run_time(v, now), lateness=estimated_start_time_delta(v, now),
        )
        for v in views
    ])


@routes.post("/ui/flow_runs/count-task-runs")
@documented(
    summary="The number of task runs of each flow run (subflow runs' parent tasks not counted)",
    request=FlowRunIds, response=dict[str, int],
)
async def count_task_runs_by_flow_run(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowRunIds)
    return json_response(await queries.task_run_counts(request.config_dict[keys.STORE], body.flow_run_ids))


@routes.post("/ui/flows/count-deployments")
@documented(summary="The number of deployments of each flow", request=FlowIds, response=dict[str, int])
async def count_deployments_by_flow(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowIds)
    return json_response(await queries.deployment_counts(request.config_dict[keys.STORE], body.flow_ids))


@routes.post("/ui/flows/next-runs")
@documented(
    summary="Each flow's Scheduled run due soonest, or null", request=FlowIds,
    response=dict[str, SimpleNextFlowRun | None],
)
async def next_runs_by_flow(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowIds)
    found = await queries.next_runs(request.config_dict[keys.STORE], body.flow_ids)
    return json_response({
        flow_id: None if row is None else SimpleNextFlowRun(
            id=row[0], flow_id=flow_id, name=row[1], state_name=row[2], state_type=row[3],
            next_scheduled_start_time=from_us(row[4]),
        )
        for flow_id, row in found.items()
    })


@routes.post("/ui/task_runs/count")
@documented(
    summary="The number of task runs in each state type", request=f.TaskRunCountRequest, request_required=False,
    response=dict[str, int],
)
async def read_task_run_counts_by_state(request: web.Request) -> web.Response:
    body = await decode_body(request, f.TaskRunCountRequest, default=f.TaskRunCountRequest())
    counts = await queries.task_run_counts_by_state(request.config_dict[keys.STORE], body)
    return json_response({key: counts.get(key, 0) for key in COUNT_BY_STATE_KEYS})


_FINISHED = f.TaskRunFilterState(type=f.TaskRunFilterStateType(any_=sorted(TERMINAL_TYPES)))  # type: ignore[arg-type]


@routes.post("/ui/task_runs/dashboard/counts")
@documented(
    summary="Finished task runs in 20 buckets of start time: completed (with Cancelled), failed (with Crashed)",
    request=DashboardCountsRequest, response=list[TaskRunCount],
    errors={422: "task_runs.start_time.after_ is missing"},
)
async def read_dashboard_task_run_counts(request: web.Request) -> web.Response:
    body = await decode_body(request, DashboardCountsRequest)
    times = body.task_runs.start_time
    if times is None or times.after_ is None:
        raise Unprocessable("task_runs.start_time.after_ is required")
    # As Prefect: only finished runs count, whatever state filter the client sent.
    body = msgspec.structs.replace(body, task_runs=msgspec.structs.replace(body.task_runs, state=_FINISHED))
    counts = await queries.dashboard_counts(request.config_dict[keys.STORE], body, request.config_dict[keys.CLOCK]())
    return json_response([TaskRunCount(completed=c, failed=x) for c, x in counts])
