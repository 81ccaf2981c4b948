"""/variables: named JSON values shared by flows, with Prefect 3.8's routes and status codes."""

from __future__ import annotations

from aiohttp import web

from runlog.commands import variables as commands
from runlog.projections.variables import VariableView

from .. import keys
from ..http import decode_body, json_response, no_content, path_uuid, present, sent_fields
from ..openapi import documented
from ..queries import variables as queries
from ..schemas.variables import Variable, VariableCountRequest, VariableCreate, VariableFilterRequest, VariableUpdate
from .listing import listing_routes, timeless

routes = web.RouteTableDef()

NOT_FOUND = "Variable not found."


def to_variable(view: VariableView) -> Variable:
    return Variable(
        id=view.id, created=view.created, updated=view.updated, name=view.name, value=view.value, tags=view.tags
    )




listing_routes(
    routes, __name__, "/variables", "variables", queries.VARIABLES, timeless(to_variable), sort="NAME_ASC",
    filter=(VariableFilterRequest, Variable, "List variables"), count=(VariableCountRequest, "Count variables"),
    errors={422: "A bad limit or filter"},
)


@routes.post("/variables/")
@documented(
    summary="Create a variable", request=VariableCreate, response=Variable, status=201,
    errors={409: "A variable with that name exists", 422: "A bad name, or a value over 5,000 characters as JSON"},
)
async def create_variable(request: web.Request) -> web.Response:
    body = await decode_body(request, VariableCreate)
    view = await commands.create(
        request.config_dict[keys.STORE], body.name, body.value, body.tags, clock=request.config_dict[keys.CLOCK]
    )
    return json_response(to_variable(view), status=201)


@routes.get("/variables/{id}")
@documented(summary="Read a variable", response=Variable, errors={404: NOT_FOUND})
async def read_variable(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    return json_response(to_variable(present(view, NOT_FOUND)))


@routes.get("/variables/name/{name}")
@documented(summary="Read a variable by name", response=Variable, errors={404: NOT_FOUND})
async def read_variable_by_name(request: web.Request) -> web.Response:
    view = await queries.get_by_name(request.config_dict[keys.STORE], request.match_info["name"])
    return json_response(to_variable(present(view, NOT_FOUND)))


async def _update(request: web.Request, lookup: commands.Lookup) -> web.Response:
    body = await decode_body(request, VariableUpdate)
    view = await commands.update(
        request.config_dict[keys.STORE], lookup, sent_fields(body), clock=request.config_dict[keys.CLOCK]
    )
    return no_content(view is not None, NOT_FOUND)


_UPDATE_ERRORS = {404: NOT_FOUND, 409: "Renamed to another variable's name", 422: "A bad name, value or tags"}


@routes.patch("/variables/{id}")
@documented(summary="Update a variable's name, value or tags", request=VariableUpdate, status=204, errors=_UPDATE_ERRORS)
async def update_variable(request: web.Request) -> web.Response:
    return await _update(request, commands.by_id(path_uuid(request)))


@routes.patch("/variables/name/{name}")
@documented(
    summary="Update a variable, found by name", request=VariableUpdate, status=204, errors=_UPDATE_ERRORS
)
async def update_variable_by_name(request: web.Request) -> web.Response:
    return await _update(request, commands.by_name(request.match_info["name"]))


async def _delete(request: web.Request, lookup: commands.Lookup) -> web.Response:
    deleted = await commands.delete(request.config_dict[keys.STORE], lookup, clock=request.config_dict[keys.CLOCK])
    return no_content(deleted, NOT_FOUND)


@routes.delete("/variables/{id}")
@documented(summary="Delete a variable", status=204, errors={404: NOT_FOUND})
async def delete_variable(request: web.Request) -> web.Response:
    return await _delete(request, commands.by_id(path_uuid(request)))


@routes.delete("/variables/name/{name}")
@documented(summary="Delete a variable, found by name", status=204, errors={404: NOT_FOUND})
async def delete_variable_by_name(request: web.Request) -> web.Response:
    return await _delete(request, commands.by_name(request.match_info["name"]))
