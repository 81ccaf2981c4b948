"""/automations: Prefect 3.8's automations (event triggers and their actions), with its routes
and status codes, plus runlog's mute (``/runlog/automations/{id}/mute``) and channel lookup
(``/runlog/channels/{name}``) used by ``runlog notification``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.commands import automations as commands
from runlog.notifier import templates
from runlog.projections.automations import AutomationView

from .. import keys
from ..http import NotFound, decode_body, empty_response, json_response, page_limit, path_uuid
from ..openapi import documented
from ..queries import automations as queries
from ..queries import channels
from ..schemas.automations import (
    Automation, AutomationCountRequest, AutomationCreate, AutomationFilterRequest, AutomationMute,
    AutomationPartialUpdate, AutomationUpdate, definition_of,
)

routes = web.RouteTableDef()
B = TypeVar("B")

NOT_FOUND = "Automation not found"
_INVALID = "A malformed body, a compound or sequence trigger, a deployment action, or a template that does not parse"


def to_automation(view: AutomationView) -> Automation:
    return Automation(
        id=view.id, created=view.created, updated=view.updated, name=view.name, description=view.description,
        enabled=view.enabled, tags=view.tags, trigger=view.trigger, actions=view.actions,
        actions_on_trigger=view.actions_on_trigger, actions_on_resolve=view.actions_on_resolve,
        muted_until=view.muted_until,
    )


@routes.post("/automations/")
@documented(summary="Create an automation", request=AutomationCreate, response=Automation, status=201,
            errors={422: _INVALID})
async def create_automation(request: web.Request) -> web.Response:
    body = await decode_body(request, AutomationCreate)
    view = await commands.create(
        request.config_dict[keys.STORE], definition_of(body), owner_resource=body.owner_resource,
        clock=request.config_dict[keys.CLOCK],
    )
    return json_response(to_automation(view), status=201)


@routes.post("/templates/validate")
@routes.post("/automations/templates/validate")  # the older path, which Prefect's v1 UI calls
@documented(summary="Validate a notification template", request=str, request_required=False, status=204,
            errors={422: "The template does not parse or breaks the sandbox's limits (body: {error: {line, message, source}})"})
async def validate_template(request: web.Request) -> web.Response:
    """Prefect's check of a subject or body as the wizard's fields are typed: 204 when the
    template is one that creating an automation accepts, else 422 with Prefect's ``error`` shape
    (not ``detail``), which the UI shows under the field.

    The body is the template as a JSON string, or (as FastAPI reads a body sent as anything but
    JSON) the template's own text: v1's UI posts it as text/plain."""
    media = request.headers.get("Content-Type", "application/json").partition(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        template = await decode_body(request, str, default="")
    else:
        template = (await request.read()).decode("utf-8", errors="replace")
    try:
        templates.check(template)
    except templates.TemplateInvalid as exc:
        return json_response({"error": {"line": exc.line, "message": exc.reason, "source": template}}, status=422)
    return empty_response()


@routes.post("/automations/filter")
@documented(summary="List automations", request=AutomationFilterRequest, request_required=False,
            response=list[Automation], errors={422: "A bad limit or filter"})
async def filter_automations(request: web.Request) -> web.Response:
    body = await decode_body(request, AutomationFilterRequest, default=AutomationFilterRequest())
    views = await queries.filter(
        request.config_dict[keys.STORE], body.automations, sort=body.sort or "NAME_ASC",
        limit=page_limit(body.limit, queries.DEFAULT_LIMIT), offset=body.offset or 0,
    )
    return json_response([to_automation(v) for v in views])


@routes.post("/automations/count")
@documented(summary="Count automations", request=AutomationCountRequest, request_required=False, response=int)
async def count_automations(request: web.Request) -> web.Response:
    body = await decode_body(request, AutomationCountRequest, default=AutomationCountRequest())
    return json_response(await queries.count(request.config_dict[keys.STORE], body.automations))


@routes.get("/automations/related-to/{resource_id}")
@documented(summary="Automations related to a resource", response=list[Automation])
async def automations_related_to(request: web.Request) -> web.Response:
    views = await queries.related_to(request.config_dict[keys.STORE], request.match_info["resource_id"])
    return json_response([to_automation(v) for v in views])


@routes.delete("/automations/owned-by/{resource_id}")
@documented(summary="Delete the automations a resource owns", status=202)
async def delete_automations_owned_by(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    for automation_id in await queries.owned_by(store, request.match_info["resource_id"]):
        await commands.delete(store, automation_id, clock=request.config_dict[keys.CLOCK])
    return empty_response(202)


@routes.get("/automations/{id}")
@documented(summary="Read an automation", response=Automation, errors={404: NOT_FOUND})
async def read_automation(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    if view is None:
        raise NotFound(NOT_FOUND)
    return json_response(to_automation(view))


def _found(found: bool) -> web.Response:
    if not found:
        raise NotFound(NOT_FOUND)
    return empty_response()


async def _change(request: web.Request, kind: type[B], command: Callable[..., Awaitable[bool]],
                  argument: Callable[[B], object]) -> web.Response:
    """Decode the body, run ``command(store, id, argument(body), clock=...)``: 204, or 404 for no automation."""
    automation_id = path_uuid(request)
    body = await decode_body(request, kind)
    return _found(await command(
        request.config_dict[keys.STORE], automation_id, argument(body), clock=request.config_dict[keys.CLOCK],
    ))


@routes.put("/automations/{id}")
@documented(summary="Replace an automation's definition", request=AutomationUpdate, status=204,
            errors={404: NOT_FOUND, 422: _INVALID})
async def update_automation(request: web.Request) -> web.Response:
    return await _change(request, AutomationUpdate, commands.replace, definition_of)


@routes.patch("/automations/{id}")
@documented(summary="Enable or disable an automation", request=AutomationPartialUpdate, status=204,
            errors={404: NOT_FOUND})
async def patch_automation(request: web.Request) -> web.Response:
    return await _change(request, AutomationPartialUpdate, commands.set_enabled, lambda body: body.enabled)


@routes.delete("/automations/{id}")
@documented(summary="Delete an automation", status=204, errors={404: NOT_FOUND})
async def delete_automation(request: web.Request) -> web.Response:
    return _found(await commands.delete(
        request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK],
    ))


@routes.put("/runlog/automations/{id}/mute")
@documented(summary="Mute an automation until a time (runlog's own)", request=AutomationMute, status=204,
            description="No action of the automation fires before `until`; `null` lifts the mute.",
            errors={404: NOT_FOUND})
async def mute_automation(request: web.Request) -> web.Response:
    return await _change(request, AutomationMute, commands.mute, lambda body: body.until)


class Channel(msgspec.Struct):
    id: UUID
    name: str
    block_type_slug: str


@routes.get("/runlog/channels/{name}")
@documented(summary="A notification channel (a notification block document) by name (runlog's own)",
            response=Channel, errors={404: "No notification block document has that name"})
async def read_channel(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    found = await channels.by_name(request.config_dict[keys.STORE], name)
    if found is None:
        raise NotFound(f"no notification channel is named {name!r}")
    return json_response(Channel(found.id, found.name, found.block_type_slug))


@routes.get("/runlog/channels/id/{id}")
@documented(summary="A notification channel by its block document id (runlog's own)",
            response=Channel, errors={404: "No block document has that id"})
async def read_channel_by_id(request: web.Request) -> web.Response:
    found = await channels.by_id(request.config_dict[keys.STORE], path_uuid(request))
    if found is None:
        raise NotFound("no channel has that id")
    return json_response(Channel(found.id, found.name, found.block_type_slug))
