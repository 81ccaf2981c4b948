"""POST /flow_runs/history, /task_runs/history and /flow_runs/lateness: runs over time, in
buckets by state, as Prefect 3.8 answers them (bucket maths in projections/history.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from runlog.projections.history import HistoryRangeError, StateTally, Window, interval_us, to_datetime, window
from runlog.projections.tables import us

from .. import keys
from ..http import Unprocessable, decode_body, json_response
from ..openapi import documented
from ..queries import history as queries
from ..schemas import filters as f
from ..schemas.history import FlowRunHistoryRequest, HistoryInterval, HistoryState, TaskRunHistoryRequest

routes = web.RouteTableDef()

POSITION_HEADER = "X-Runlog-Log-Position"
SOURCE_HEADER = "X-Runlog-History-Source"

_RANGE_ERRORS = {422: "The interval is under one second, or the range ends after the latest representable time"}


def _window(body: TaskRunHistoryRequest) -> Window:
    try:
        interval = interval_us(body.history_interval_seconds)
        return window(us(body.history_start), us(body.history_end), interval)  # type: ignore[arg-type]
    except HistoryRangeError as exc:
        raise Unprocessable(str(exc)) from None


def _answer(win: Window, buckets: list[list[StateTally]]) -> list[HistoryInterval]:
    answer = []
    for index, tallies in enumerate(buckets):
        begin, end = win.bounds(index)
        states = [
            HistoryState(
                state_type=t.state_type, state_name=t.state_name, count_runs=t.count_runs,  # type: ignore[arg-type]
                sum_estimated_run_time=t.sum_estimated_run_time, sum_estimated_lateness=t.sum_estimated_lateness,
            )
            for t in tallies
        ]
        answer.append(HistoryInterval(interval_start=to_datetime(begin), interval_end=to_datetime(end), states=states))
    return answer


async def _history(
    request: web.Request, kind: type[TaskRunHistoryRequest],
    read: Callable[[Any, Any, Window, datetime], Awaitable[queries.History]], filters: Callable[[Any], Any],
) -> web.Response:
    body = await decode_body(request, kind)
    win = _window(body)
    history = await read(request.config_dict[keys.STORE], filters(body), win, request.config_dict[keys.CLOCK]())
    response = json_response(_answer(win, history.buckets))
    # Which log position the answer reflects, and whether the pre-aggregated projection (which
    # may lag the log, README "Run history") or the runs tables answered.
    response.headers[POSITION_HEADER] = str(history.position)
    response.headers[SOURCE_HEADER] = history.source
    return response


@routes.post("/flow_runs/history")
@documented(
    summary="Flow runs per time bucket, counted under their current state", request=FlowRunHistoryRequest,
    response=list[HistoryInterval], errors=_RANGE_ERRORS,
)
async def flow_run_history(request: web.Request) -> web.Response:
    return await _history(request, FlowRunHistoryRequest, queries.flow_run_history, lambda body: f.FlowRunCountRequest(
        flows=body.flows, flow_runs=body.flow_runs, task_runs=body.task_runs, deployments=body.deployments,
        work_pools=body.work_pools, work_pool_queues=body.work_queues,
    ))


@routes.post("/task_runs/history")
@documented(
    summary="Task runs per time bucket, counted under their current state", request=TaskRunHistoryRequest,
    response=list[HistoryInterval], errors=_RANGE_ERRORS,
)
async def task_run_history(request: web.Request) -> web.Response:
    return await _history(request, TaskRunHistoryRequest, queries.task_run_history, lambda body: f.TaskRunCountRequest(
        flows=body.flows, flow_runs=body.flow_runs, task_runs=body.task_runs, deployments=body.deployments,
    ))


@routes.post("/flow_runs/lateness")
@documented(
    summary="The average lateness of flow runs, in seconds (null when none match)", request=f.FlowRunCountRequest,
    request_required=False, response=float | None,
)
async def average_flow_run_lateness(request: web.Request) -> web.Response:
    body = await decode_body(request, f.FlowRunCountRequest, default=f.FlowRunCountRequest())
    store, now = request.config_dict[keys.STORE], request.config_dict[keys.CLOCK]()
    return json_response(await queries.average_lateness(store, body, now))
