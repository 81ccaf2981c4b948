"""/task_runs and /task_run_states: create, read and orchestrate task runs."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from runlog.commands import task_runs as commands
from runlog.commands.task_runs import TASK_POLICY
from runlog.projections.runs import TaskRunView, estimated_run_time, estimated_start_time_delta

from .. import keys
from ..http import decode_body, json_response
from ..openapi import documented
from ..queries import runs as queries
from ..schemas.runs import TaskRun, TaskRunCreate, TaskRunUpdate
from .entity import run_routes

routes = web.RouteTableDef()


def to_task_run(view: TaskRunView, now: datetime) -> TaskRun:
    state = view.state
    return TaskRun(
        id=view.id, created=view.created, updated=view.updated, name=view.name, flow_run_id=view.flow_run_id,
        task_key=view.task_key, dynamic_key=view.dynamic_key, cache_key=view.cache_key,
        cache_expiration=view.cache_expiration, task_version=view.task_version,
        empirical_policy={**TASK_POLICY, **view.empirical_policy}, tags=view.tags, labels=view.labels,
        state_id=state.id if state else None, task_inputs=view.task_inputs,
        state_type=state.type if state else None, state_name=state.name if state else None,
        run_count=view.run_count, flow_run_run_count=view.flow_run_run_count,
        expected_start_time=view.expected_start_time, next_scheduled_start_time=view.next_scheduled_start_time,
        start_time=view.start_time, end_time=view.end_time, total_run_time=view.total_run_time,
        estimated_run_time=estimated_run_time(view, now),
        estimated_start_time_delta=estimated_start_time_delta(view, now), state=state,
    )


@routes.post("/task_runs/")
@documented(
    summary="Create a task run; 200 with the existing one if it exists", request=TaskRunCreate,
    response=TaskRun, status=(201, 200),
    errors={409: "The flow run does not exist, or the id is that of a deleted task run"},
)
async def create_task_run(request: web.Request) -> web.Response:
    body = await decode_body(request, TaskRunCreate)
    view, created = await commands.create(request.config_dict[keys.STORE], body, clock=request.config_dict[keys.CLOCK])
    return json_response(to_task_run(view, request.config_dict[keys.CLOCK]()), status=201 if created else 200)


run_routes(
    routes, __name__, "task_runs", "Task run", read=queries.get_task_run, shape=to_task_run, response=TaskRun,
    update=(commands.update, TaskRunUpdate, "Rename a task run"), delete=(commands.delete, "Delete a task run"),
    set_state=commands.set_state, states=queries.task_run_states,
)
