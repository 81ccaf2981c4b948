"""/deployments: create (Prefect's upsert by flow and name), read, update, delete, list, pause and
resume, schedules, a flow run from a deployment, and the scheduled runs that ``flow.serve()`` polls."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from runlog.commands import deployments as commands
from runlog.commands.deployment_concurrency import limit_name
from runlog.projections.concurrency import limit_id_for
from runlog.commands import deployment_status
from runlog.projections import work_pools as pool_reads
from runlog.projections.deployments import DeploymentView, ScheduleView
from runlog.projections.work_pools import WorkQueueView
from runlog.schema.events import StateType

from .. import keys, provenance
from ..http import decode_body, json_response, no_content, page_limit, path_uuid, present
from ..openapi import documented
from ..queries import deployments as queries
from ..queries.filtering import DEFAULT_LIMIT
from ..queries.run_filters import filter_flow_runs
from ..schemas import filters as f
from ..schemas.deployments import (
    Deployment, DeploymentCountRequest, DeploymentCreate, DeploymentFilterRequest, DeploymentFlowRunCreate,
    DeploymentPaginateRequest, DeploymentSchedule, DeploymentScheduleCreate, DeploymentScheduleUpdate,
    DeploymentUpdate, ScheduledRunsRequest, fields_sent,
)
from ..schemas.runs import FlowRun
from ..schemas.work_pools import WorkQueueCore
from .flow_runs import to_flow_run
from .listing import Shape, listing_routes, timeless

routes = web.RouteTableDef()

NOT_FOUND = "Deployment not found"
SCHEDULE_NOT_FOUND = "Schedule not found."


def to_schedule(view: ScheduleView) -> DeploymentSchedule:
    return DeploymentSchedule(
        id=view.id, created=view.created, updated=view.updated, deployment_id=view.deployment_id,
        schedule=view.schedule, active=view.active, max_scheduled_runs=view.max_scheduled_runs,
        parameters=view.parameters, slug=view.slug,
    )


def _global_limit(view: DeploymentView) -> dict[str, Any] | None:
    """The deployment's own limit (``deployment:<id>``) as Prefect's GlobalConcurrencyLimitResponse.

    Read from the deployment's row, so listings need no second read: ``active_slots`` is the
    limit's live count only through /v2/concurrency_limits/ (here it is 0).
    """
    if view.concurrency_limit is None:
        return None
    name = limit_name(view.id)
    return {
        "id": str(limit_id_for(name)), "created": view.created, "updated": view.updated, "active": True,
        "name": name, "limit": view.concurrency_limit, "active_slots": 0, "slot_decay_per_second": 0.0,
    }


def to_deployment(view: DeploymentView, queue: WorkQueueView | None = None, now: datetime | None = None) -> Deployment:
    """The answer for a deployment; ``queue`` is the work queue its runs go to (from its pool
    and queue names), whose polls make the deployment READY, as in Prefect."""
    last_polled = max((t for t in (view.last_polled, queue and queue.last_polled) if t is not None), default=None)
    return Deployment(
        id=view.id, created=view.created, updated=view.updated, name=view.name, version=view.version,
        description=view.description, flow_id=view.flow_id, paused=view.paused,
        # Prefect keeps the limit as a global concurrency limit and always answers concurrency_limit null.
        schedules=[to_schedule(s) for s in view.schedules], concurrency_limit=None,
        global_concurrency_limit=_global_limit(view), concurrency_options=view.concurrency_options,
        job_variables=view.job_variables, parameters=view.parameters, tags=view.tags, labels=view.labels,
        work_queue_name=view.work_queue_name, work_queue_id=queue.id if queue else None, last_polled=last_polled,
        parameter_openapi_schema=view.parameter_openapi_schema, path=view.path, pull_steps=view.pull_steps,
        entrypoint=view.entrypoint, storage_document_id=view.storage_document_id,
        infrastructure_document_id=view.infrastructure_document_id, created_by=None, updated_by=None,
        work_pool_name=view.work_pool_name,
        status=view.status,  # recorded by commands/deployment_status.py, as Prefect keeps it
        enforce_parameter_schema=view.enforce_parameter_schema,
    )


def _queue_key(view: DeploymentView) -> tuple[str, str] | None:
    if view.work_pool_name and view.work_queue_name:
        return view.work_pool_name, view.work_queue_name
    return None


async def answered(request: web.Request, views: list[DeploymentView]) -> Shape:
    """How a page of deployments is answered: each with its queue, read together."""
    keys_ = [key for view in views if (key := _queue_key(view)) is not None]
    queues = await pool_reads.queues_named(request.config_dict[keys.STORE], keys_)

    def shape(view: DeploymentView, now: datetime) -> Deployment:
        key = _queue_key(view)
        return to_deployment(view, queues.get(key) if key else None, now)

    return shape


async def deployment_answer(request: web.Request, view: DeploymentView) -> Deployment:
    shape = await answered(request, [view])
    return shape(view, request.config_dict[keys.CLOCK]())


listing_routes(
    routes, __name__, "/deployments", "deployments", queries.DEPLOYMENTS, timeless(to_deployment), sort="NAME_ASC",
    prepare=answered,
    filter=(DeploymentFilterRequest, Deployment, "List deployments"), count=(DeploymentCountRequest, "Count deployments"),
    paginate=(DeploymentPaginateRequest, "A page of deployments and how many match"),
    errors={422: "A bad limit or filter"},
)


@routes.post("/deployments/")
@documented(
    summary="Create a deployment, or update the one of that flow and name (201 when created)",
    request=DeploymentCreate, response=Deployment, status=(201, 200),
    errors={404: "The work pool named does not exist", 409: "The flow does not exist, or two schedules share a slug",
            422: "A bad schedule or setting"},
)
async def create_deployment(request: web.Request) -> web.Response:
    body = await decode_body(request, DeploymentCreate)
    view, created = await commands.upsert(
        request.config_dict[keys.STORE], body.flow_id, body.name, fields_sent(body), body.schedules,
        clock=request.config_dict[keys.CLOCK],
    )
    return json_response(await deployment_answer(request, view), status=201 if created else 200)


@routes.get("/deployments/{id}")
@documented(summary="Read a deployment", response=Deployment, errors={404: NOT_FOUND})
async def read_deployment(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    return json_response(await deployment_answer(request, present(view, NOT_FOUND)))


@routes.get("/deployments/name/{flow_name}/{deployment_name}")
@documented(summary="Read a deployment by its flow's name and its own", response=Deployment, errors={404: NOT_FOUND})
async def read_deployment_by_name(request: web.Request) -> web.Response:
    view = await queries.get_by_name(
        request.config_dict[keys.STORE], request.match_info["flow_name"], request.match_info["deployment_name"]
    )
    return json_response(await deployment_answer(request, present(view, NOT_FOUND)))


@routes.patch("/deployments/{id}")
@documented(
    summary="Update a deployment's settings (those sent) and schedules", request=DeploymentUpdate, status=204,
    errors={404: "No such deployment, or the work pool named does not exist", 409: "Two schedules share a slug",
            422: "A bad schedule or setting"},
)
async def update_deployment(request: web.Request) -> web.Response:
    deployment_id = path_uuid(request)
    body = await decode_body(request, DeploymentUpdate)
    schedules = None if body.schedules is msgspec.UNSET else body.schedules
    found = await commands.update(
        request.config_dict[keys.STORE], deployment_id, fields_sent(body), schedules,
        clock=request.config_dict[keys.CLOCK],
    )
    return no_content(found, "Deployment not found.")


@routes.delete("/deployments/{id}")
@documented(summary="Delete a deployment and its schedules", status=204, errors={404: NOT_FOUND})
async def delete_deployment(request: web.Request) -> web.Response:
    found = await commands.delete(
        request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK]
    )
    return no_content(found, NOT_FOUND)


async def _pause(request: web.Request, paused: bool) -> web.Response:
    found = await commands.set_paused(
        request.config_dict[keys.STORE], path_uuid(request), paused, clock=request.config_dict[keys.CLOCK]
    )
    present(True if found else None, NOT_FOUND)
    return json_response(None)  # Prefect answers 200 with a null body


@routes.post("/deployments/{id}/pause_deployment")
@documented(summary="Pause a deployment", response=None, errors={404: NOT_FOUND})
async def pause_deployment(request: web.Request) -> web.Response:
    return await _pause(request, True)


@routes.post("/deployments/{id}/resume_deployment")
@documented(summary="Resume a deployment", response=None, errors={404: NOT_FOUND})
async def resume_deployment(request: web.Request) -> web.Response:
    return await _pause(request, False)


@routes.get("/deployments/{id}/work_queue_check")
@documented(summary="The work queues that could pick up the deployment's runs (deprecated in Prefect)",
            response=list[WorkQueueCore], errors={404: NOT_FOUND})
async def work_queue_check(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    present(await queries.get(store, path_uuid(request)), NOT_FOUND)
    # Prefect matches the deployment against each queue's legacy filter (tags, deployment ids);
    # a work pool's queue has no filter, so every queue matches, as Prefect 3.8.8 answers.
    return json_response([
        WorkQueueCore(
            id=q.id, created=q.created, updated=q.updated, name=q.name, description=q.description,
            is_paused=q.is_paused, concurrency_limit=q.concurrency_limit, priority=q.priority,
            work_pool_id=q.work_pool_id, last_polled=q.last_polled,
        )
        for q in await pool_reads.get_all_queues(store)
    ])


@routes.get("/deployments/{id}/schedules")
@documented(summary="A deployment's schedules", response=list[DeploymentSchedule], errors={404: NOT_FOUND})
async def read_deployment_schedules(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    return json_response([to_schedule(s) for s in present(view, "Deployment not found.").schedules])


@routes.post("/deployments/{id}/schedules")
@documented(
    summary="Add schedules to a deployment", request=list[DeploymentScheduleCreate],
    response=list[DeploymentSchedule], status=201,
    errors={404: NOT_FOUND, 409: "A slug the deployment has", 422: "A bad schedule"},
)
async def create_deployment_schedules(request: web.Request) -> web.Response:
    deployment_id = path_uuid(request)
    schedules = await decode_body(request, list[DeploymentScheduleCreate])
    created = await commands.create_schedules(
        request.config_dict[keys.STORE], deployment_id, schedules, clock=request.config_dict[keys.CLOCK]
    )
    return json_response([to_schedule(s) for s in present(created, "Deployment not found.")], status=201)


def _schedule_id(request: web.Request) -> Any:
    return path_uuid(request, "schedule_id")


@routes.patch("/deployments/{id}/schedules/{schedule_id}")
@documented(
    summary="Update a deployment's schedule", request=DeploymentScheduleUpdate, status=204,
    errors={404: "No such deployment or schedule", 409: "A slug another schedule has", 422: "A bad schedule"},
)
async def update_deployment_schedule(request: web.Request) -> web.Response:
    deployment_id, schedule_id = path_uuid(request), _schedule_id(request)
    body = await decode_body(request, DeploymentScheduleUpdate)
    sent = [name for name in body.__struct_fields__ if getattr(body, name) is not msgspec.UNSET]
    values = {name: getattr(body, name) for name in sent}
    found = await commands.update_schedule(
        request.config_dict[keys.STORE], deployment_id, schedule_id, commands.NewSchedule(**values), sent,
        clock=request.config_dict[keys.CLOCK],
    )
    present(found, "Deployment not found.")
    return no_content(bool(found), SCHEDULE_NOT_FOUND)


@routes.delete("/deployments/{id}/schedules/{schedule_id}")
@documented(summary="Delete a deployment's schedule", status=204, errors={404: "No such deployment or schedule"})
async def delete_deployment_schedule(request: web.Request) -> web.Response:
    found = await commands.delete_schedule(
        request.config_dict[keys.STORE], path_uuid(request), _schedule_id(request),
        clock=request.config_dict[keys.CLOCK],
    )
    present(found, "Deployment not found.")
    return no_content(bool(found), SCHEDULE_NOT_FOUND)


@routes.post("/deployments/{id}/create_flow_run")
@documented(
    summary="Create a flow run of a deployment (Scheduled now unless a state is given)",
    request=DeploymentFlowRunCreate, response=FlowRun, status=(201, 200),
    errors={400: "A bad parameter template, or a work queue for a deployment in no pool", 404: NOT_FOUND,
            409: "Parameters the deployment's schema refuses", 422: "A bad body"},
)
async def create_flow_run_from_deployment(request: web.Request) -> web.Response:
    deployment_id = path_uuid(request)
    body = await decode_body(request, DeploymentFlowRunCreate)
    outcome = await commands.create_flow_run(
        request.config_dict[keys.STORE], deployment_id, body, cache=request.config_dict[keys.VIEW_CACHE],
        created_by=provenance.created_by(request), clock=request.config_dict[keys.CLOCK],
    )
    view, created = present(outcome, NOT_FOUND)
    return json_response(to_flow_run(view, request.config_dict[keys.CLOCK]()), status=201 if created else 200)


@routes.post("/deployments/get_scheduled_flow_runs")
@documented(
    summary="The Scheduled runs of these deployments due before a time, soonest first (what a runner polls)",
    request=ScheduledRunsRequest, response=list[FlowRun], errors={422: "A bad body"},
)
async def get_scheduled_flow_runs(request: web.Request) -> web.Response:
    body = await decode_body(request, ScheduledRunsRequest)
    # The runs' own deployment_id, as Prefect filters, not the deployments filter (an EXISTS
    # over deployments): with it the (deployment_id, state_type, next_scheduled_start_time)
    # index of migration 0018 answers from the deployments' Scheduled runs alone.
    query = f.FlowRunFilterRequest(
        flow_runs=f.FlowRunFilter(
            deployment_id=f.FlowRunFilterDeploymentId(any_=body.deployment_ids),
            next_scheduled_start_time=f.TimeFilter(before_=body.scheduled_before),
            state=f.FlowRunFilterState(type=f.FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
        ),
    )
    views = await filter_flow_runs(
        request.config_dict[keys.STORE], query, sort="NEXT_SCHEDULED_START_TIME_ASC",
        limit=page_limit(body.limit, DEFAULT_LIMIT), offset=0,
    )
    clock = request.config_dict[keys.CLOCK]
    # As Prefect's mark_deployments_ready: a runner's poll makes its deployments READY.
    await deployment_status.deployments_polled(request.config_dict[keys.STORE], body.deployment_ids, clock=clock)
    now = clock()
    return json_response([to_flow_run(view, now) for view in views])
