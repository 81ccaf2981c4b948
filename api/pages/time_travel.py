"""/runlog/time-travel/...: a flow run, a work pool or a concurrency limit as it was at each
event of its log, with a slider over those events.

The views are folded by projections/time_travel.py, the same folds the API's ``?at=`` answers
from. ``?at=`` takes a position or a time as there; ``fragment=1`` answers only the view, which
the slider's script swaps in, so the page works without script too (its list of events links
to each position).
"""

from __future__ import annotations

import bisect
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.projections import time_travel as travel
from runlog.projections.concurrency import limit_id_for, stream_of
from runlog.schema import streams

from .. import keys
from ..at import AT_QUERY, requested_moment, shown_at
from ..http import NotFound, path_uuid
from ..openapi import documented
from ..queries import event_log as queries
from .render import page

routes = web.RouteTableDef()

_QUERY = {**AT_QUERY, "fragment": str | None}
_ERRORS = {404: "nothing of that id or name in the log", 422: "a bad 'at'"}


async def _answer(request: web.Request, kind: str, title: str, stops: list[queries.Stop], fold) -> web.Response:  # type: ignore[no-untyped-def]
    """The page (or its fragment) at the stop ``?at=`` names, the last one by default."""
    store = request.config_dict[keys.STORE]
    moment = await requested_moment(request)
    positions = [s.position for s in stops]
    wanted = moment.position if moment is not None else positions[-1]
    index = bisect.bisect_right(positions, wanted) - 1  # -1: before its first event
    position = positions[index] if index >= 0 else wanted
    shown = await travel.resolve(store, str(position))
    view = await fold(position) if index >= 0 else None
    context: dict[str, Any] = dict(
        section="time-travel", kind=kind, title=title, stops=stops, index=index, position=position,
        moment=shown, view=view, now=shown_at(request, shown),
        raw=msgspec.to_builtins(view) if view is not None else None, path=request.path,
    )
    return page(request, "_moment.html" if request.query.get("fragment") else "time_travel.html", **context)


@routes.get("/runlog/time-travel/flow-run/{id}")
@documented(summary="A flow run at each event of its log (HTML)", query=_QUERY, errors=_ERRORS)
async def flow_run_page(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    store = request.config_dict[keys.STORE]
    stops = await queries.stream_positions(store, streams.flow_run(run_id))
    if not stops:
        raise NotFound(f"No flow run {run_id} in the log.")
    latest = await travel.flow_run_at(store, run_id, stops[-1].position)
    title = f"Flow run {latest.name}" if latest is not None else f"Flow run {run_id}"
    return await _answer(request, "flow-run", title, stops, lambda p: travel.flow_run_at(store, run_id, p))


@routes.get("/runlog/time-travel/work-pool/{name}")
@documented(summary="A work pool at each event of its log (HTML)", query=_QUERY, errors=_ERRORS)
async def work_pool_page(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    store = request.config_dict[keys.STORE]
    stops = await queries.pool_stops(store, name)
    if not stops:
        raise NotFound(f"No work pool named {name!r} in the log.")
    return await _answer(request, "work-pool", f"Work pool {name}", stops, lambda p: travel.pool_at(store, name, p))


@routes.get("/runlog/time-travel/concurrency-limit/{id_or_name}")
@documented(summary="A concurrency limit at each event of its log (HTML)", query=_QUERY, errors=_ERRORS)
async def limit_page(request: web.Request) -> web.Response:
    given = request.match_info["id_or_name"]
    try:
        limit_id = UUID(given)
    except ValueError:
        limit_id = limit_id_for(given)  # a limit's id is derived from its name
    store = request.config_dict[keys.STORE]
    stops = await queries.stream_positions(store, stream_of(limit_id))
    if not stops:
        raise NotFound(f"No concurrency limit {given!r} in the log.")
    latest = await travel.limit_at(store, limit_id, stops[-1].position)
    title = f"Concurrency limit {latest.name}" if latest is not None else f"Concurrency limit {given}"
    return await _answer(request, "concurrency-limit", title, stops, lambda p: travel.limit_at(store, limit_id, p))
