"""/flow_runs and /flow_run_states: create, read, update, delete and orchestrate flow runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.projections.runs import FlowRunView, estimated_run_time, estimated_start_time_delta
from runlog.schema.events import State

from runlog.commands import flow_runs as commands
from runlog.commands.flow_runs import DEFAULT_POLICY
from runlog.commands.orchestration import Decision, Status

from .. import keys
from ..http import NotFound, decode_body, empty_response, json_response, path_uuid, query_uuid
from ..openapi import documented
from ..queries import runs as queries
from ..schemas.runs import FlowRun, FlowRunCreate, FlowRunUpdate, OrchestrationResult, SetState

routes = web.RouteTableDef()


def to_flow_run(view: FlowRunView, now: datetime) -> FlowRun:
    state = view.state
    return FlowRun(
        id=view.id, created=view.created, updated=view.updated, name=view.name, flow_id=view.flow_id,
        state_id=state.id if state else None, deployment_id=view.deployment_id,
        deployment_version=view.deployment_version, work_queue_name=view.work_queue_name,
        flow_version=view.flow_version, parameters=view.parameters, idempotency_key=view.idempotency_key,
        context=view.context, empirical_policy={**DEFAULT_POLICY, **view.empirical_policy}, tags=view.tags,
        labels=view.labels, parent_task_run_id=view.parent_task_run_id,
        state_type=state.type if state else None, state_name=state.name if state else None,
        run_count=view.run_count, expected_start_time=view.expected_start_time,
        next_scheduled_start_time=view.next_scheduled_start_time, start_time=view.start_time,
        end_time=view.end_time, total_run_time=view.total_run_time,
        estimated_run_time=estimated_run_time(view, now),
        estimated_start_time_delta=estimated_start_time_delta(view, now),
        work_pool_name=view.work_pool_name, state=state, job_variables=view.job_variables,
        infrastructure_pid=view.infrastructure_pid,
    )


def orchestration_result(view: FlowRunView | Any, decision: Decision) -> OrchestrationResult:
    details: dict[str, Any]
    if decision.status is Status.ACCEPT:
        details = {"type": "accept_details"}
    elif decision.status is Status.REJECT:
        details = {"type": "reject_details", "reason": decision.reason}
    elif decision.status is Status.WAIT:
        details = {"type": "wait_details", "delay_seconds": decision.delay_seconds or 0, "reason": decision.reason}
    else:
        details = {"type": "abort_details", "reason": decision.reason}
    return OrchestrationResult(state=decision.state or view.state, status=decision.status.value, details=details)


def orchestration_response(outcome: tuple[Any, Decision] | None, missing: str) -> web.Response:
    """A set_state answer: 201 when a state was written, 200 when not; 404 for no run."""
    if outcome is None:
        raise NotFound(missing)
    view, decision = outcome
    return json_response(orchestration_result(view, decision), status=201 if decision.state is not None else 200)


async def state_response(request: web.Request, label: str) -> web.Response:
    """GET /{flow,task}_run_states/{id}: a state by its id (its event's id)."""
    state_id = path_uuid(request)
    state = await queries.state_by_id(request.config_dict[keys.STORE], state_id)
    if state is None:
        raise NotFound(f"{label} {state_id} not found")
    return json_response(state)


@routes.post("/flow_runs/")
@documented(
    summary="Create a flow run; 200 with the existing one for a known idempotency key", request=FlowRunCreate,
    response=FlowRun, status=(201, 200), errors={409: "The flow or the parent task run does not exist"},
)
async def create_flow_run(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowRunCreate)
    view, created = await commands.create(
        request.config_dict[keys.STORE], body, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK], known_flows=request.config_dict[keys.KNOWN_FLOWS],
    )
    return json_response(to_flow_run(view, request.config_dict[keys.CLOCK]()), status=201 if created else 200)


@routes.get("/flow_runs/{id}")
@documented(summary="Read a flow run", response=FlowRun, errors={404: "Flow run not found"})
async def read_flow_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    view = await queries.get_flow_run(request.config_dict[keys.STORE], run_id)
    if view is None:
        raise NotFound(f"Flow run {run_id} not found")
    return json_response(to_flow_run(view, request.config_dict[keys.CLOCK]()))


@routes.patch("/flow_runs/{id}")
@documented(
    summary="Update a flow run", request=FlowRunUpdate, status=204, errors={404: "Flow run not found"},
)
async def update_flow_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, FlowRunUpdate)
    if not await commands.update(
        request.config_dict[keys.STORE], run_id, msgspec.to_builtins(body), cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Flow run {run_id} not found")
    return empty_response()


@routes.patch("/flow_runs/{id}/labels")
@documented(
    summary="Merge labels into a flow run's", request=dict[str, Any], status=204,
    errors={404: "Flow run not found"},
)
async def update_flow_run_labels(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    labels = await decode_body(request, dict[str, Any])
    if not await commands.update_labels(
        request.config_dict[keys.STORE], run_id, labels, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Flow run {run_id} not found")
    return empty_response()


@routes.delete("/flow_runs/{id}")
@documented(summary="Delete a flow run and its task runs", status=204, errors={404: "Flow run not found"})
async def delete_flow_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    if not await commands.delete(
        request.config_dict[keys.STORE], run_id, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Flow run {run_id} not found")
    return empty_response()


@routes.post("/flow_runs/{id}/set_state")
@documented(
    summary="Propose a state for a flow run; 201 when a state was written", request=SetState,
    response=OrchestrationResult, status=(201, 200), errors={404: "Flow run not found"},
)
async def set_flow_run_state(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, SetState)
    outcome = await commands.set_state(
        request.config_dict[keys.STORE], run_id, body.state, force=body.force, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    )
    return orchestration_response(outcome, f"Flow run {run_id} not found")


@routes.get("/flow_run_states/")
@documented(summary="A flow run's states, oldest first", query={"flow_run_id": UUID}, response=list[State])
async def read_flow_run_states(request: web.Request) -> web.Response:
    run_id = query_uuid(request, "flow_run_id")
    return json_response(await queries.flow_run_states(request.config_dict[keys.STORE], run_id))


@routes.get("/flow_run_states/{id}")
@documented(summary="Read a flow run state", response=State, errors={404: "State not found"})
async def read_flow_run_state(request: web.Request) -> web.Response:
    return await state_response(request, "Flow run state")
