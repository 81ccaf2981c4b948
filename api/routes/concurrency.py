"""/concurrency_limits (v1 tag limits) and /v2/concurrency_limits (limits and leases).

As in Prefect 3.8, a tag limit is a v2 limit named "tag:<tag>"; the v1 endpoints show it in
the v1 shape, whose active_slots are the task runs holding one of its leases.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from aiohttp import web

from runlog.commands import concurrency as commands
from runlog.commands.concurrency import TAG_PREFIX
from runlog.eventstore import EventStore
from runlog.projections.concurrency import LimitView
from runlog.projections.time_travel import limit_at, limit_by_name_at
from runlog.schema import events as catalogue

from .. import keys
from ..at import AT_QUERY, at_position, not_yet, requested_moment, shown_at
from ..http import decode_body, empty_response, json_response
from ..openapi import documented
from ..schemas.concurrency import (
    DecrementWithLease,
    IncrementWithLease,
    LeaseGranted,
    Limit,
    LimitCreate,
    LimitUpdate,
    MinimalLimit,
    Pagination,
    RenewLease,
    TagLimit,
    TagLimitCreate,
    TagLimitReset,
)

routes = web.RouteTableDef()

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit, for filters that name no limit."""


def _detail(status: int, detail: str, **headers: str) -> web.Response:
    response = json_response({"detail": detail}, status=status)
    response.headers.update(headers)
    return response


def _not_found(detail: str) -> web.Response:
    return _detail(404, detail)


def _unprocessable(detail: str) -> web.Response:
    return _detail(422, detail)


def _store(request: web.Request) -> EventStore:
    return request.config_dict[keys.STORE]


def _is_uuid(raw: str) -> bool:
    try:
        UUID(raw)
    except ValueError:
        return False
    return True


def _uuid(request: web.Request, name: str) -> UUID | None:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        return None


def to_tag_limit(view: LimitView, now: datetime) -> TagLimit:
    holders = [
        lease.holder.id for lease in view.held(now) if lease.holder is not None and lease.holder.type == "task_run"
    ]
    return TagLimit(
        id=view.id, created=view.created, updated=view.updated, tag=view.name.removeprefix(TAG_PREFIX),
        concurrency_limit=view.limit, active_slots=holders,
    )


def to_limit(view: LimitView, now: datetime) -> Limit:
    return Limit(
        id=view.id, created=view.created, updated=view.updated, active=view.active, name=view.name,
        limit=view.limit, active_slots=view.active_slots(now), denied_slots=0,
        slot_decay_per_second=view.slot_decay_per_second,
        avg_slot_occupancy_seconds=view.avg_slot_occupancy_seconds,
    )


def _now(request: web.Request) -> datetime:
    return request.config_dict[keys.CLOCK]()


def _page(views: list[LimitView], body: Pagination) -> list[LimitView]:
    limit = DEFAULT_LIMIT if body.limit is None else body.limit
    return views[body.offset : body.offset + limit]


# -- v1: tag limits -----------------------------------------------------------------------------

TAG_NOT_FOUND = "Concurrency limit not found"


async def _tag_limit(request: web.Request) -> LimitView | None:
    return await commands.read_limit_by_name(request.config_dict[keys.STORE], TAG_PREFIX + request.match_info["tag"])


@routes.post("/concurrency_limits/")
@documented(
    summary="Create or update a tag concurrency limit", request=TagLimitCreate, response=TagLimit,
    status=(201, 200), errors={503: "The limit is busy; retry after Retry-After"},
)
async def create_tag_limit(request: web.Request) -> web.Response:
    body = await decode_body(request, TagLimitCreate)
    view, created = await commands.upsert_limit(
        request.config_dict[keys.STORE], TAG_PREFIX + body.tag, body.concurrency_limit, clock=request.config_dict[keys.CLOCK]
    )
    return json_response(to_tag_limit(view, _now(request)), status=201 if created else 200)


@routes.post("/concurrency_limits/filter")
@documented(
    summary="List tag concurrency limits", request=Pagination, request_required=False,
    response=list[TagLimit],
)
async def filter_tag_limits(request: web.Request) -> web.Response:
    body = await decode_body(request, Pagination, default=Pagination())
    views = [v for v in await commands.list_limits(request.config_dict[keys.STORE]) if v.name.startswith(TAG_PREFIX)]
    now = _now(request)
    return json_response([to_tag_limit(v, now) for v in _page(views, body)])


@routes.get("/concurrency_limits/tag/{tag}")
@documented(
    summary="Read a tag concurrency limit (?at=: as it was at a log position or time)", response=TagLimit,
    errors={404: "Concurrency limit not found", 422: "A bad 'at'"}, query=AT_QUERY,
)
async def read_tag_limit(request: web.Request) -> web.Response:
    moment = await requested_moment(request)
    if moment is not None:
        then = await limit_by_name_at(_store(request), TAG_PREFIX + request.match_info["tag"], moment.position)
        if then is None:
            return _not_found(not_yet(TAG_NOT_FOUND, moment))
        return at_position(json_response(to_tag_limit(then, shown_at(request, moment))), moment)
    view = await _tag_limit(request)
    if view is None:
        return _not_found(TAG_NOT_FOUND)
    return json_response(to_tag_limit(view, _now(request)))


@routes.delete("/concurrency_limits/tag/{tag}")
@documented(
    summary="Delete a tag concurrency limit", response=None,
    errors={404: "Concurrency limit not found", 503: "The limit is busy; retry after Retry-After"},
)
async def delete_tag_limit(request: web.Request) -> web.Response:
    view = await _tag_limit(request)
    if view is None or not await commands.delete_limit(request.config_dict[keys.STORE], view.id, clock=request.config_dict[keys.CLOCK]):
        return _not_found(TAG_NOT_FOUND)
    return json_response(None)


@routes.post("/concurrency_limits/tag/{tag}/reset")
@documented(
    summary="Reset a tag concurrency limit's slots", request=TagLimitReset, request_required=False,
    response=None,
    errors={404: "Concurrency limit not found", 503: "The limit is busy; retry after Retry-After"},
)
async def reset_tag_limit(request: web.Request) -> web.Response:
    body = await decode_body(request, TagLimitReset, default=TagLimitReset())
    view = await _tag_limit(request)
    if view is None or not await commands.reset_limit(
        request.config_dict[keys.STORE], view.id, body.slot_override or [], clock=request.config_dict[keys.CLOCK]
    ):
        return _not_found(TAG_NOT_FOUND)
    return json_response(None)


@routes.get("/concurrency_limits/{id}")
@documented(
    summary="Read a tag concurrency limit by id (?at=: as it was at a log position or time)", response=TagLimit,
    errors={404: "Concurrency limit not found", 422: "A bad 'at'"}, query=AT_QUERY,
)
async def read_tag_limit_by_id(request: web.Request) -> web.Response:
    limit_id = _uuid(request, "id")
    moment = await requested_moment(request)
    if moment is not None:
        then = None if limit_id is None else await limit_at(_store(request), limit_id, moment.position)
        if then is None or not then.name.startswith(TAG_PREFIX):
            return _not_found(not_yet(TAG_NOT_FOUND, moment))
        return at_position(json_response(to_tag_limit(then, shown_at(request, moment))), moment)
    view = None if limit_id is None else await commands.read_limit(request.config_dict[keys.STORE], limit_id)
    if view is None or not view.name.startswith(TAG_PREFIX):
        return _not_found(TAG_NOT_FOUND)
    return json_response(to_tag_limit(view, _now(request)))


@routes.delete("/concurrency_limits/{id}")
@documented(
    summary="Delete a concurrency limit by id", response=None,
    errors={404: "Concurrency limit not found", 503: "The limit is busy; retry after Retry-After"},
)
async def delete_limit_by_id(request: web.Request) -> web.Response:
    # Prefect's v1 delete by id removes whatever v2 limit has that id, tag or not.
    limit_id = _uuid(request, "id")
    if limit_id is None or not await commands.delete_limit(request.config_dict[keys.STORE], limit_id, clock=request.config_dict[keys.CLOCK]):
        return _not_found(TAG_NOT_FOUND)
    return json_response(None)


# -- v2: leases (registered before /{id_or_name}) -----------------------------------------------


@routes.post("/v2/concurrency_limits/increment-with-lease")
@documented(
    summary="Take slots of concurrency limits under a lease", request=IncrementWithLease,
    response=LeaseGranted,
    errors={
        422: "The request cannot be granted as asked: more slots than a limit has, or rate_limit mode on "
        "limits without slot decay, or on limits with it (runlog does not rate-limit yet)",
        423: "No free slot; retry after Retry-After",
    },
)
async def increment_with_lease(request: web.Request) -> web.Response:
    body = await decode_body(request, IncrementWithLease)
    holder = None if body.holder is None else catalogue.ConcurrencyLeaseHolder(type=body.holder.type, id=body.holder.id)
    outcome = await commands.acquire(
        request.config_dict[keys.STORE], body.names, body.slots, lease_duration=body.lease_duration,
        holder=holder, mode=body.mode, clock=request.config_dict[keys.CLOCK]
    )
    if isinstance(outcome, commands.Locked):
        # The client sleeps float(Retry-After) and asks again; without the header it crashes.
        detail = f"Locked: concurrency limit {outcome.limit.name!r} has no free slot"
        return _detail(423, detail, **{"Retry-After": str(outcome.retry_after)})
    granted = LeaseGranted(
        lease_id=outcome.lease_id,
        limits=[MinimalLimit(id=v.id, name=v.name, limit=v.limit) for v in outcome.limits],
    )
    return json_response(granted)


@routes.post("/v2/concurrency_limits/decrement-with-lease")
@documented(
    summary="Release a lease's slots", request=DecrementWithLease, status=204,
    errors={503: "The limit is busy; retry after Retry-After"},
)
async def decrement_with_lease(request: web.Request) -> web.Response:
    body = await decode_body(request, DecrementWithLease)
    await commands.release(request.config_dict[keys.STORE], body.lease_id, clock=request.config_dict[keys.CLOCK])
    return empty_response()


@routes.post("/v2/concurrency_limits/leases/{lease_id}/renew")
@documented(
    summary="Renew a lease", request=RenewLease, request_required=False, status=204,
    errors={410: "No such lease: expired or revoked", 503: "The limit is busy; retry after Retry-After"},
)
async def renew_lease(request: web.Request) -> web.Response:
    lease_id = _uuid(request, "lease_id")
    if lease_id is None:
        return _unprocessable(f"path parameter 'lease_id' is not a valid UUID: {request.match_info['lease_id']!r}")
    body = await decode_body(request, RenewLease, default=RenewLease())
    renewed = await commands.renew(request.config_dict[keys.STORE], lease_id, body.lease_duration, clock=request.config_dict[keys.CLOCK])
    if not renewed:
        return _detail(410, "Lease not found - it may have expired or been revoked")
    return empty_response()


# -- v2: limits ---------------------------------------------------------------------------------

LIMIT_NOT_FOUND = "Concurrency Limit not found"


async def _limit_id(request: web.Request) -> UUID | None:
    """The id named by {id_or_name}: a UUID is an id, anything else a name (None: no such)."""
    raw = request.match_info["id_or_name"]
    try:
        return UUID(raw)
    except ValueError:
        view = await commands.read_limit_by_name(request.config_dict[keys.STORE], raw)
        return None if view is None else view.id


@routes.post("/v2/concurrency_limits/")
@documented(
    summary="Create a concurrency limit", request=LimitCreate, response=Limit, status=201,
    errors={409: "A limit with that name exists", 503: "The limit is busy; retry after Retry-After"},
)
async def create_limit(request: web.Request) -> web.Response:
    body = await decode_body(request, LimitCreate)
    view = await commands.create_limit(
        request.config_dict[keys.STORE], body.name, body.limit, active=body.active,
        slot_decay_per_second=body.slot_decay_per_second, clock=request.config_dict[keys.CLOCK]
    )
    return json_response(to_limit(view, _now(request)), status=201)


@routes.post("/v2/concurrency_limits/filter")
@documented(
    summary="List concurrency limits", request=Pagination, request_required=False, response=list[Limit],
)
async def filter_limits(request: web.Request) -> web.Response:
    body = await decode_body(request, Pagination, default=Pagination())
    views = await commands.list_limits(request.config_dict[keys.STORE])
    now = _now(request)
    return json_response([to_limit(v, now) for v in _page(views, body)])


@routes.get("/v2/concurrency_limits/{id_or_name}")
@documented(
    summary="Read a concurrency limit by id or name (?at=: as it was at a log position or time)", response=Limit,
    errors={404: "Concurrency limit not found", 422: "A bad 'at'"}, query=AT_QUERY,
)
async def read_limit(request: web.Request) -> web.Response:
    moment = await requested_moment(request)
    if moment is not None:
        raw = request.match_info["id_or_name"]
        then = await (limit_at(_store(request), UUID(raw), moment.position) if _is_uuid(raw)
                      else limit_by_name_at(_store(request), raw, moment.position))
        if then is None:
            return _not_found(not_yet(LIMIT_NOT_FOUND, moment))
        return at_position(json_response(to_limit(then, shown_at(request, moment))), moment)
    limit_id = await _limit_id(request)
    view = None if limit_id is None else await commands.read_limit(request.config_dict[keys.STORE], limit_id)
    if view is None:
        return _not_found(LIMIT_NOT_FOUND)
    return json_response(to_limit(view, _now(request)))


@routes.patch("/v2/concurrency_limits/{id_or_name}")
@documented(
    summary="Update a concurrency limit", request=LimitUpdate, status=204,
    errors={404: "Concurrency limit not found", 503: "The limit is busy; retry after Retry-After"},
)
async def update_limit(request: web.Request) -> web.Response:
    body = await decode_body(request, LimitUpdate)
    store = request.config_dict[keys.STORE]
    limit_id = await _limit_id(request)
    current = None if limit_id is None else await commands.read_limit(store, limit_id)
    if limit_id is None or current is None:
        return _not_found(LIMIT_NOT_FOUND)
    if body.name is not None and body.name != current.name:
        # A limit's id and stream are derived from its name (that is what keeps names unique).
        return _unprocessable("renaming a concurrency limit is not supported; create one with the new name")
    updated = await commands.update_limit(
        store, limit_id, limit=body.limit, active=body.active, slot_decay_per_second=body.slot_decay_per_second, clock=request.config_dict[keys.CLOCK]
    )
    if updated is None:
        return _not_found(LIMIT_NOT_FOUND)
    return empty_response()


@routes.delete("/v2/concurrency_limits/{id_or_name}")
@documented(
    summary="Delete a concurrency limit", status=204,
    errors={404: "Concurrency limit not found", 503: "The limit is busy; retry after Retry-After"},
)
async def delete_limit(request: web.Request) -> web.Response:
    limit_id = await _limit_id(request)
    if limit_id is None or not await commands.delete_limit(request.config_dict[keys.STORE], limit_id, clock=request.config_dict[keys.CLOCK]):
        return _not_found(LIMIT_NOT_FOUND)
    return empty_response()
