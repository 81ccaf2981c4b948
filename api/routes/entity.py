"""Routes that flows, flow runs and task runs declare alike, written once as small tables.

PATCH and DELETE of /{kind}/{id} run an entity command (commands/entities.py) and answer 204,
or 404 when there is no such entity; a run's set_state and its state history are the same for
flow runs and task runs. Each registration names its handlers as the module that calls it would
(``update_flow_run``, ``set_task_run_state``...), in that module: the OpenAPI operationId and tag.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.commands.orchestration import Decision, Status
from runlog.eventstore import EventStore
from runlog.schema.events import State

from .. import keys
from ..at import AT_QUERY, at_position, not_yet, requested_moment, shown_at
from ..http import decode_body, json_response, no_content, path_uuid, present, query_uuid
from ..openapi import documented
from ..queries.runs import state_by_id
from ..schemas.runs import OrchestrationResult, SetState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def write_context(config: Mapping[Any, Any]) -> dict[str, Any]:
    """What entity commands take from the app (``request.config_dict``): the view cache and the clock.

    A handler reads ``request.config_dict`` once: aiohttp builds it anew on every access."""
    return {"cache": config[keys.VIEW_CACHE], "clock": config[keys.CLOCK]}


async def write_or_404(
    request: web.Request, command: Callable[..., Awaitable[bool]], label: str, entity_id: UUID, *args: Any
) -> web.Response:
    """``command(store, entity_id, *args)``: 204, or 404 when there is no such entity."""
    config = request.config_dict
    found = await command(config[keys.STORE], entity_id, *args, **write_context(config))
    return no_content(found, f"{label} {entity_id} not found")


def named(handler: Handler, name: str, module: str) -> Handler:
    """A handler made by a table, named as if written in ``module``: the name is its OpenAPI
    operationId and the module its tag."""
    handler.__name__ = handler.__qualname__ = name
    handler.__module__ = module
    return handler


def patch_and_delete(
    routes: web.RouteTableDef, module: str, kind: str, label: str, *, update: Callable[..., Awaitable[bool]], body: type,
    delete: Callable[..., Awaitable[bool]], summaries: tuple[str, str],
    before_delete: Callable[[web.Request, UUID], None] | None = None,
) -> None:
    """PATCH /{kind}/{id} (``update(store, id, fields sent)``) and DELETE /{kind}/{id} (``delete(store, id)``)."""
    errors = {404: f"{label} not found"}
    name = kind.removesuffix("s")

    async def patch(request: web.Request) -> web.Response:
        entity_id = path_uuid(request)
        fields = msgspec.to_builtins(await decode_body(request, body))
        return await write_or_404(request, update, label, entity_id, fields)

    async def remove(request: web.Request) -> web.Response:
        entity_id = path_uuid(request)
        if before_delete is not None:
            before_delete(request, entity_id)
        return await write_or_404(request, delete, label, entity_id)

    routes.patch(f"/{kind}/{{id}}")(documented(summary=summaries[0], request=body, status=204, errors=errors)(
        named(patch, f"update_{name}", module)
    ))
    routes.delete(f"/{kind}/{{id}}")(documented(summary=summaries[1], status=204, errors=errors)(
        named(remove, f"delete_{name}", module)
    ))


def orchestration_result(view: Any, decision: Decision) -> OrchestrationResult:
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


def run_routes(
    routes: web.RouteTableDef, module: str, kind: str, label: str, *, read: Callable[[EventStore, UUID], Awaitable[Any]],
    shape: Callable[[Any, datetime], Any], response: type, update: tuple[Callable[..., Awaitable[bool]], type, str],
    delete: tuple[Callable[..., Awaitable[bool]], str], set_state: Callable[..., Awaitable[Any]],
    states: Callable[..., Awaitable[list[State]]],
    set_state_options: Callable[[Mapping[Any, Any]], dict[str, Any]] | None = None,
    read_at: Callable[[EventStore, UUID, int], Awaitable[Any]] | None = None,
) -> None:
    """A run's routes: GET /{kind}/{id} (``read``, answered as ``shape(view, now)``), PATCH and
    DELETE (``update``: command, body, summary; ``delete``: command, summary; see
    patch_and_delete), POST /{kind}/{id}/set_state, and its states: GET /{run}_states/?{run}_id=
    and /{run}_states/{id}. With ``read_at`` (store, id, position), GET /{kind}/{id} and the
    states listing take ``?at=`` (api/at.py) and answer as the log was up to that position."""
    run = kind.removesuffix("s")  # flow_run, task_run
    a_run = label.lower()
    (update_command, body, update_summary), (delete_command, delete_summary) = update, delete
    patch_and_delete(
        routes, module, kind, label, update=update_command, body=body, delete=delete_command,
        summaries=(update_summary, delete_summary),
    )

    async def read_one(request: web.Request) -> web.Response:
        run_id = path_uuid(request)
        moment = await requested_moment(request) if read_at is not None else None
        if moment is not None and read_at is not None:
            then = present(await read_at(request.config_dict[keys.STORE], run_id, moment.position),
                           not_yet(f"{label} {run_id}", moment))
            now = shown_at(request, moment)
            return at_position(json_response(shape(then, now)), moment)
        view = present(await read(request.config_dict[keys.STORE], run_id), f"{label} {run_id} not found")
        return json_response(shape(view, request.config_dict[keys.CLOCK]()))

    async def propose(request: web.Request) -> web.Response:
        run_id = path_uuid(request)
        body = await decode_body(request, SetState)
        config = request.config_dict
        outcome = await set_state(
            config[keys.STORE], run_id, body.state, force=body.force, **write_context(config),
            **(set_state_options(config) if set_state_options is not None else {}),
        )
        view, decision = present(outcome, f"{label} {run_id} not found")
        return json_response(orchestration_result(view, decision), status=201 if decision.state is not None else 200)

    async def history(request: web.Request) -> web.Response:
        run_id = query_uuid(request, f"{run}_id")
        moment = await requested_moment(request) if read_at is not None else None
        if moment is not None:
            found = await states(request.config_dict[keys.STORE], run_id, moment.position)
            return at_position(json_response(found), moment)
        return json_response(await states(request.config_dict[keys.STORE], run_id))

    async def one_state(request: web.Request) -> web.Response:
        state_id = path_uuid(request)
        state = await state_by_id(request.config_dict[keys.STORE], state_id)
        return json_response(present(state, f"{label} state {state_id} not found"))

    routes.get(f"/{kind}/{{id}}")(documented(
        summary=f"Read a {a_run}" + (" (?at=: as it was at a log position or time)" if read_at else ""),
        response=response, errors={404: f"{label} not found", **({422: "A bad 'at'"} if read_at else {})},
        query=AT_QUERY if read_at is not None else None,
    )(named(read_one, f"read_{run}", module)))
    routes.post(f"/{kind}/{{id}}/set_state")(documented(
        summary=f"Propose a state for a {a_run}; 201 when a state was written", request=SetState,
        response=OrchestrationResult, status=(201, 200), errors={404: f"{label} not found"},
    )(named(propose, f"set_{run}_state", module)))
    routes.get(f"/{run}_states/")(documented(
        summary=f"A {a_run}'s states, oldest first", response=list[State],
        query={f"{run}_id": UUID, **(AT_QUERY if read_at is not None else {})},
    )(named(history, f"read_{run}_states", module)))
    # A state's id is the id of the event that recorded it.
    routes.get(f"/{run}_states/{{id}}")(documented(
        summary=f"Read a {a_run} state", response=State, errors={404: "State not found"},
    )(named(one_state, f"read_{run}_state", module)))

