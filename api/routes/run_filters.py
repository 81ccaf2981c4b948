"""POST /flow_runs/filter, /count, /paginate and the same for /task_runs: querying run history,
newest first unless asked otherwise (Prefect's ID_DESC)."""

from __future__ import annotations

from aiohttp import web

from ..queries import run_filters as queries
from ..schemas import filters as f
from ..schemas.runs import FlowRun, TaskRun
from .flow_runs import to_flow_run
from .listing import listing_routes
from .task_runs import to_task_run

routes = web.RouteTableDef()

listing_routes(
    routes, __name__, "/flow_runs", "flow_runs", queries.FLOW_RUNS, to_flow_run, sort="ID_DESC",
    filter=(f.FlowRunFilterRequest, FlowRun, "List flow runs"), count=(f.FlowRunCountRequest, "Count flow runs"),
    paginate=(f.FlowRunPaginateRequest, "A page of flow runs"),
)
listing_routes(
    routes, __name__, "/task_runs", "task_runs", queries.TASK_RUNS, to_task_run, sort="ID_DESC",
    filter=(f.TaskRunFilterRequest, TaskRun, "List task runs"), count=(f.TaskRunCountRequest, "Count task runs"),
    paginate=(f.TaskRunPaginateRequest, "A page of task runs"),
)
