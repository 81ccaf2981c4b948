"""/flow_runs and /flow_run_states: create, read, update, delete and orchestrate flow runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from runlog.commands import flow_runs as commands
from runlog.commands.flow_runs import DEFAULT_POLICY
from runlog.projections.runs import FlowRunView, estimated_run_time, estimated_start_time_delta
from runlog.projections.time_travel import flow_run_at

from .. import keys, provenance
from ..http import decode_body, json_response, path_uuid
from ..openapi import documented
from ..queries import runs as queries
from ..schemas.runs import FlowRun, FlowRunCreate, FlowRunUpdate
from .entity import run_routes, write_or_404

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
        work_pool_name=view.work_pool_name, work_queue_id=view.work_queue_id, work_pool_id=view.work_pool_id,
        state=state, job_variables=view.job_variables,
        infrastructure_pid=view.infrastructure_pid, auto_scheduled=view.auto_scheduled, created_by=view.created_by,
    )


@routes.post("/flow_runs/")
@documented(
    summary="Create a flow run; 200 with the existing one for a known idempotency key", request=FlowRunCreate,
    response=FlowRun, status=(201, 200),
    errors={409: "The flow or the parent task run does not exist", 422: "A bad body, or one setting auto_scheduled or created_by"},
)
async def create_flow_run(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowRunCreate)
    await provenance.refuse_server_only_fields(request)
    new = commands.NewFlowRun(**msgspec.structs.asdict(body), created_by=provenance.created_by(request))
    config = request.config_dict  # aiohttp builds it anew on every access: read once
    clock = config[keys.CLOCK]
    view, created = await commands.create(
        config[keys.STORE], new, cache=config[keys.VIEW_CACHE], clock=clock, known_flows=config[keys.KNOWN_FLOWS],
    )
    return json_response(to_flow_run(view, clock()), status=201 if created else 200)


@routes.patch("/flow_runs/{id}/labels")
@documented(
    summary="Merge labels into a flow run's", request=dict[str, Any], status=204,
    errors={404: "Flow run not found"},
)
async def update_flow_run_labels(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    labels = await decode_body(request, dict[str, Any])
    return await write_or_404(request, commands.update_labels, "Flow run", run_id, labels)


run_routes(
    routes, __name__, "flow_runs", "Flow run", read=queries.get_flow_run, shape=to_flow_run, response=FlowRun,
    update=(commands.update, FlowRunUpdate, "Update a flow run"),
    delete=(commands.delete, "Delete a flow run and its task runs"),
    set_state=commands.set_state, states=queries.flow_run_states, read_at=flow_run_at,
    set_state_options=lambda config: {
        "slot_wait_seconds": config[keys.SETTINGS].deployments_concurrency_slot_wait_seconds,
    },
)
