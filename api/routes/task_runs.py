"""/task_runs and /task_run_states: create, read and orchestrate task runs."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.projections.runs import TaskRunView, estimated_run_time, estimated_start_time_delta
from runlog.schema.events import State

from runlog.commands import task_runs as commands
from runlog.commands.task_runs import TASK_POLICY

from .. import keys
from ..http import NotFound, decode_body, empty_response, json_response, path_uuid, query_uuid
from ..openapi import documented
from ..queries import runs as queries
from ..schemas.runs import OrchestrationResult, SetState, TaskRun, TaskRunCreate, TaskRunUpdate
from .flow_runs import orchestration_response, state_response

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


@routes.get("/task_runs/{id}")
@documented(summary="Read a task run", response=TaskRun, errors={404: "Task run not found"})
async def read_task_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    view = await queries.get_task_run(request.config_dict[keys.STORE], run_id)
    if view is None:
        raise NotFound(f"Task run {run_id} not found")
    return json_response(to_task_run(view, request.config_dict[keys.CLOCK]()))


@routes.patch("/task_runs/{id}")
@documented(summary="Rename a task run", request=TaskRunUpdate, status=204, errors={404: "Task run not found"})
async def update_task_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, TaskRunUpdate)
    if not await commands.update(
        request.config_dict[keys.STORE], run_id, msgspec.to_builtins(body), cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Task run {run_id} not found")
    return empty_response()


@routes.delete("/task_runs/{id}")
@documented(summary="Delete a task run", status=204, errors={404: "Task run not found"})
async def delete_task_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    if not await commands.delete(
        request.config_dict[keys.STORE], run_id, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Task run {run_id} not found")
    return empty_response()


@routes.post("/task_runs/{id}/set_state")
@documented(
    summary="Propose a state for a task run; 201 when a state was written", request=SetState,
    response=OrchestrationResult, status=(201, 200), errors={404: "Task run not found"},
)
async def set_task_run_state(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, SetState)
    outcome = await commands.set_state(
        request.config_dict[keys.STORE], run_id, body.state, force=body.force, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    )
    return orchestration_response(outcome, f"Task run {run_id} not found")


@routes.get("/task_run_states/")
@documented(summary="A task run's states, oldest first", query={"task_run_id": UUID}, response=list[State])
async def read_task_run_states(request: web.Request) -> web.Response:
    run_id = query_uuid(request, "task_run_id")
    return json_response(await queries.task_run_states(request.config_dict[keys.STORE], run_id))


@routes.get("/task_run_states/{id}")
@documented(summary="Read a task run state", response=State, errors={404: "State not found"})
async def read_task_run_state(request: web.Request) -> web.Response:
    return await state_response(request, "Task run state")
