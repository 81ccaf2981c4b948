"""POST /flow_runs/filter, /count, /paginate and the same for /task_runs: querying run history."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..http import decode_body, json_response
from ..openapi import documented
from ..queries import run_filters as queries
from ..schemas import filters as f
from ..schemas.runs import FlowRun, TaskRun
from .flow_runs import to_flow_run
from .task_runs import to_task_run

routes = web.RouteTableDef()


def _limit(value: int | None) -> int:
    """Prefect's LimitBody: null means the default, which is also the largest accepted value
    (the request types bound it)."""
    return queries.DEFAULT_LIMIT if value is None else value


def _pages(count: int, limit: int) -> int:
    return (count + limit - 1) // limit if limit > 0 else 0


@routes.post("/flow_runs/filter")
@documented(
    summary="List flow runs", request=f.FlowRunFilterRequest, request_required=False, response=list[FlowRun],
)
async def filter_flow_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.FlowRunFilterRequest, default=f.FlowRunFilterRequest())
    limit = _limit(body.limit)
    views = await queries.filter_flow_runs(
        request.config_dict[keys.STORE], body, sort=body.sort or "ID_DESC", limit=limit, offset=body.offset or 0
    )
    now = request.config_dict[keys.CLOCK]()
    return json_response([to_flow_run(v, now) for v in views])


@routes.post("/flow_runs/count")
@documented(
    summary="Count flow runs", request=f.FlowRunCountRequest, request_required=False, response=int,
)
async def count_flow_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.FlowRunCountRequest, default=f.FlowRunCountRequest())
    return json_response(await queries.count_flow_runs(request.config_dict[keys.STORE], body))


@routes.post("/flow_runs/paginate")
@documented(
    summary="A page of flow runs", request=f.FlowRunPaginateRequest, request_required=False, response=f.Page,
)
async def paginate_flow_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.FlowRunPaginateRequest, default=f.FlowRunPaginateRequest())
    limit, page = _limit(body.limit), body.page or 1
    # The page and the count come from one snapshot, so they always agree.
    views, count = await queries.paginate_flow_runs(
        request.config_dict[keys.STORE], body, sort=body.sort or "ID_DESC", limit=limit, offset=(page - 1) * limit
    )
    now = request.config_dict[keys.CLOCK]()
    results = [to_flow_run(v, now) for v in views]
    return json_response(f.Page(results=results, count=count, limit=limit, pages=_pages(count, limit), page=page))


@routes.post("/task_runs/filter")
@documented(
    summary="List task runs", request=f.TaskRunFilterRequest, request_required=False, response=list[TaskRun],
)
async def filter_task_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.TaskRunFilterRequest, default=f.TaskRunFilterRequest())
    limit = _limit(body.limit)
    views = await queries.filter_task_runs(
        request.config_dict[keys.STORE], body, sort=body.sort or "ID_DESC", limit=limit, offset=body.offset or 0
    )
    now = request.config_dict[keys.CLOCK]()
    return json_response([to_task_run(v, now) for v in views])


@routes.post("/task_runs/count")
@documented(
    summary="Count task runs", request=f.TaskRunCountRequest, request_required=False, response=int,
)
async def count_task_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.TaskRunCountRequest, default=f.TaskRunCountRequest())
    return json_response(await queries.count_task_runs(request.config_dict[keys.STORE], body))


@routes.post("/task_runs/paginate")
@documented(
    summary="A page of task runs", request=f.TaskRunPaginateRequest, request_required=False, response=f.Page,
)
async def paginate_task_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, f.TaskRunPaginateRequest, default=f.TaskRunPaginateRequest())
    limit, page = _limit(body.limit), body.page or 1
    # The page and the count come from one snapshot, so they always agree.
    views, count = await queries.paginate_task_runs(
        request.config_dict[keys.STORE], body, sort=body.sort or "ID_DESC", limit=limit, offset=(page - 1) * limit
    )
    now = request.config_dict[keys.CLOCK]()
    results = [to_task_run(v, now) for v in views]
    return json_response(f.Page(results=results, count=count, limit=limit, pages=_pages(count, limit), page=page))
