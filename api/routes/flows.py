"""/flows: register, read, list, count and delete flows."""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from runlog.commands import flows as flow_commands
from runlog.commands.flows import flow_id_for
from runlog.projections.flows import FlowView, decode_flow

from .. import keys
from ..http import decode_body, json_response, path_uuid, present
from ..openapi import documented
from ..queries import flows as queries
from ..schemas.flows import Flow, FlowCreate, FlowFilterRequest, FlowPaginateRequest, FlowUpdate
from .entity import patch_and_delete
from .listing import listing_routes, timeless

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
    return json_response(to_flow(present(view, f"Flow {flow_id} not found")))


@routes.get("/flows/name/{name}")
@documented(summary="Read a flow by name", response=Flow, errors={404: "Flow not found"})
async def read_flow_by_name(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    view = await queries.get(request.config_dict[keys.STORE], flow_id_for(name))
    return json_response(to_flow(present(view, f"Flow {name!r} not found")))


listing_routes(
    routes, __name__, "/flows", "flows", queries.FLOWS, timeless(to_flow), sort="NAME_ASC",
    filter=(FlowFilterRequest, Flow, "List flows"), count=(FlowFilterRequest, "Count flows"),
    paginate=(FlowPaginateRequest, "A page of flows and how many match"),
)


def _forget(request: web.Request, flow_id: UUID) -> None:
    request.config_dict[keys.KNOWN_FLOWS].discard(flow_id)  # before the runs go: none is created after


patch_and_delete(
    routes, __name__, "flows", "Flow", update=flow_commands.update, body=FlowUpdate, delete=flow_commands.delete,
    summaries=("Update a flow's tags or labels", "Delete a flow with its runs"), before_delete=_forget,
)


__all__ = ["routes", "decode_flow"]
