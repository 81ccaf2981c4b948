"""/flows: register, read, list, count and delete flows."""

from __future__ import annotations

import msgspec
from aiohttp import web

from runlog.projections.flows import FlowView, decode_flow

from runlog.commands import flows as flow_commands
from runlog.commands.flows import flow_id_for

from .. import keys
from ..http import NotFound, decode_body, empty_response, json_response, path_uuid
from ..openapi import documented
from ..queries import flows as queries
from ..schemas.flows import Flow, FlowCreate, FlowFilterRequest, FlowUpdate

routes = web.RouteTableDef()

def to_flow(view: FlowView) -> Flow:
    return Flow(id=view.id, created=view.created, updated=view.updated, name=view.name, tags=view.tags, labels=view.labels)


@routes.post("/flows/")
@documented(
    summary="Register a flow; 200 with the existing one if the name is taken", request=FlowCreate,
    response=Flow, status=(201, 200),
)
async def create_flow(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowCreate)
    view, created = await flow_commands.register(
        request.config_dict[keys.STORE], body.name, body.tags, body.labels, clock=request.config_dict[keys.CLOCK]
    )
    return json_response(to_flow(view), status=201 if created else 200)


@routes.get("/flows/{id}")
@documented(summary="Read a flow", response=Flow, errors={404: "Flow not found"})
async def read_flow(request: web.Request) -> web.Response:
    flow_id = path_uuid(request)
    view = await queries.get(request.config_dict[keys.STORE], flow_id)
    if view is None:
        raise NotFound(f"Flow {flow_id} not found")
    return json_response(to_flow(view))


@routes.get("/flows/name/{name}")
@documented(summary="Read a flow by name", response=Flow, errors={404: "Flow not found"})
async def read_flow_by_name(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    view = await queries.get(request.config_dict[keys.STORE], flow_id_for(name))
    if view is None:
        raise NotFound(f"Flow {name!r} not found")
    return json_response(to_flow(view))


@routes.post("/flows/filter")
@documented(summary="List flows", request=FlowFilterRequest, request_required=False, response=list[Flow])
async def filter_flows(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowFilterRequest, default=FlowFilterRequest())
    if body.limit is None:  # Prefect's default, also the largest page
        body = msgspec.structs.replace(body, limit=queries.DEFAULT_LIMIT)
    views = await queries.filter(request.config_dict[keys.STORE], body)
    return json_response([to_flow(v) for v in views])


@routes.post("/flows/count")
@documented(summary="Count flows", request=FlowFilterRequest, request_required=False, response=int)
async def count_flows(request: web.Request) -> web.Response:
    body = await decode_body(request, FlowFilterRequest, default=FlowFilterRequest())
    return json_response(await queries.count(request.config_dict[keys.STORE], body))


@routes.patch("/flows/{id}")
@documented(summary="Update a flow's tags or labels", request=FlowUpdate, status=204, errors={404: "Flow not found"})
async def update_flow(request: web.Request) -> web.Response:
    flow_id = path_uuid(request)
    body = await decode_body(request, FlowUpdate)
    changes = msgspec.to_builtins(body)
    if not await flow_commands.update(request.config_dict[keys.STORE], flow_id, changes, clock=request.config_dict[keys.CLOCK]):
        raise NotFound(f"Flow {flow_id} not found")
    return empty_response()


@routes.delete("/flows/{id}")
@documented(summary="Delete a flow with its runs", status=204, errors={404: "Flow not found"})
async def delete_flow(request: web.Request) -> web.Response:
    flow_id = path_uuid(request)
    request.config_dict[keys.KNOWN_FLOWS].discard(flow_id)  # before the runs go: none is created after
    if not await flow_commands.delete(
        request.config_dict[keys.STORE], flow_id, cache=request.config_dict[keys.VIEW_CACHE],
        clock=request.config_dict[keys.CLOCK],
    ):
        raise NotFound(f"Flow {flow_id} not found")
    return empty_response()


__all__ = ["routes", "decode_flow"]
