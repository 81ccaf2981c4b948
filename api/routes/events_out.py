"""The event feed, Prefect's way: /events/filter, /events/filter/next, /events/count-by and /events/out.

Reads come from the event feed projection (projections/event_feed.py). The websocket sends the
backfill from it, then follows the log itself (store.subscribe) and derives each new record
with the same derivation, so live events do not wait for the projection's next round.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from datetime import timedelta

import msgspec
import structlog
from aiohttp import WSMsgType, web

from runlog.eventstore import StorageUnavailable, StoreClosed
from runlog.projections.checkpoints import checkpoint
from runlog.projections.event_feed import NAME as FEED
from runlog.projections.prefect_events import Derivation

from .. import keys
from ..http import decode_body, json_response
from ..openapi import documented
from ..queries import events as queries
from ..queries.event_matching import includes
from ..schemas.event_filters import (
    Countable, EventCount, EventCountRequest, EventFilter, EventFilterRequest, EventPage,
)
from .events import prefect_socket, websocket

routes = web.RouteTableDef()

log = structlog.get_logger("runlog.api.events")

MAXIMUM_BACKFILL = timedelta(minutes=15)
"""Prefect's PREFECT_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL: how far back /events/out looks."""
BACKFILL_PAGE = 250
"""Prefect's PREFECT_EVENTS_WEBSOCKET_BACKFILL_PAGE_SIZE."""
PROTOCOL_ERROR = 1002
_COUNTABLES = frozenset(Countable.__args__)  # type: ignore[attr-defined]
_encoder = msgspec.json.Encoder()


def _page(request: web.Request, page: queries.Page) -> web.Response:
    next_page = None
    if page.token is not None:
        token = base64.b64encode(page.token.encode()).decode()
        next_page = f"{request.url.origin()}/api/events/filter/next?page-token={token}"
    return json_response({"events": page.events, "total": page.total, "next_page": next_page})


@routes.post("/events/filter")
@documented(
    summary="Read events (Prefect's event feed)", request=EventFilterRequest, request_required=False,
    response=EventPage, errors={422: "A bad filter or limit"},
)
async def read_events(request: web.Request) -> web.Response:
    """The first page of events matching the filter (newest first by default) and the next page's URL."""
    body = await decode_body(request, EventFilterRequest, default=EventFilterRequest())
    flt = queries.with_defaults(body.filter, request.config_dict[keys.CLOCK]())
    page = await queries.query(request.config_dict[keys.STORE], flt, size=body.limit)
    return _page(request, page)


@routes.get("/events/filter/next")
@documented(
    summary="Read the next page of events", response=EventPage, query={"page-token": str},
    errors={403: "A page token this server did not make"},
)
async def read_events_page(request: web.Request) -> web.Response:
    try:
        token = base64.b64decode(request.query.get("page-token", ""), validate=True).decode()
        if not token:
            raise ValueError("empty")
        flt, size, offset = queries.from_token(token)
    except (ValueError, UnicodeDecodeError, queries.InvalidToken):
        return json_response({"detail": "Forbidden"}, status=403)
    page = await queries.query(request.config_dict[keys.STORE], flt, size=size, offset=offset)
    return _page(request, page)


@routes.post("/events/count-by/{countable}")
@documented(
    summary="Count events by time, event name or resource", request=EventCountRequest, response=list[EventCount],
    errors={422: "A bad countable, filter or time interval"},
)
async def count_events(request: web.Request) -> web.Response:
    countable = request.match_info["countable"]
    if countable not in _COUNTABLES:
        return json_response({"detail": f"countable must be one of {', '.join(sorted(_COUNTABLES))}"}, status=422)
    body = await decode_body(request, EventCountRequest)
    now = request.config_dict[keys.CLOCK]()
    flt = queries.with_defaults(body.filter, now)
    try:
        counts = await queries.count_by(
            request.config_dict[keys.STORE], flt, countable, time_unit=body.time_unit,
            interval=body.time_interval, now=now,
        )
    except queries.InvalidCount as exc:
        return json_response({"detail": str(exc)}, status=422)
    return json_response(counts)


@routes.get("/events/out")
@websocket("Stream events over a websocket (Prefect's /events/out)")
async def stream_events_out(request: web.Request) -> web.StreamResponse:
    ws = await prefect_socket(request)
    if ws.closed:
        return ws
    flt, backfill = await _filter_message(ws)
    if flt is None:
        return ws
    store = request.config_dict[keys.STORE]
    # As in Prefect, the filter looks back at most MAXIMUM_BACKFILL, for the backfill and the
    # live events alike; with no upper bound sent, live events have none.
    now = request.config_dict[keys.CLOCK]()
    since = max(flt.occurred.since or now - MAXIMUM_BACKFILL, now - MAXIMUM_BACKFILL)
    flt = msgspec.structs.replace(flt, occurred=msgspec.structs.replace(flt.occurred, since=since))
    # Follow the log from where the feed has got to before the backfill is read, so that no
    # event falls between the two; an event in both is sent once (by id), as Prefect does.
    after = await checkpoint(store, FEED)
    sent: set[object] = set()
    if backfill:
        backfill_filter = msgspec.structs.replace(queries.with_defaults(flt, now), order="ASC")
        offset = 0
        while True:
            page = await queries.query(store, backfill_filter, size=BACKFILL_PAGE, offset=offset)
            for event in page.events:
                sent.add(event.id)
                await ws.send_str(_encoder.encode({"type": "event", "event": event}).decode())
            if page.token is None:
                break
            offset += BACKFILL_PAGE
    live = asyncio.create_task(_follow(ws, store, after, flt, sent))
    try:
        # Reading is what answers the client's pings and notices it going; what it sends is ignored.
        async for _message in ws:
            pass
    finally:
        live.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await live
    return ws


async def _follow(ws: web.WebSocketResponse, store, after: int, flt: EventFilter, sent: set[object]) -> None:  # type: ignore[no-untyped-def]
    """Send every new matching event, derived from the log as it grows."""
    derivation = Derivation(store)
    try:
        async for record in store.subscribe(after=after):
            try:
                derived = await derivation.events_of(record)
            except msgspec.DecodeError:  # a payload a newer runlog wrote: it shows nothing here
                continue
            for event in derived:
                if event.id in sent:
                    sent.discard(event.id)
                elif includes(flt, event):
                    await ws.send_str(_encoder.encode({"type": "event", "event": event}).decode())
    except (ConnectionError, StoreClosed, StorageUnavailable) as exc:
        log.info("events_out_stopped", reason=str(exc) or type(exc).__name__)
        with contextlib.suppress(ConnectionError):
            await ws.close(code=1011 if isinstance(exc, StorageUnavailable) else 1001)


async def _filter_message(ws: web.WebSocketResponse) -> tuple[EventFilter | None, bool]:
    """Prefect's second message: ``{"type": "filter", "filter": {...}, "backfill": true}``."""
    message = await ws.receive()
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None, False
    try:
        body = msgspec.json.decode(message.data)
        if not isinstance(body, dict) or body.get("type") != "filter":
            await ws.close(code=PROTOCOL_ERROR, message=b"Expected 'filter' message")
            return None, False
        flt = queries.in_utc(msgspec.convert(body.get("filter") or {}, EventFilter, strict=False))
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError) as exc:
        await ws.close(code=PROTOCOL_ERROR, message=f"Invalid filter: {exc}"[:120].encode())
        return None, False
    return flt, bool(body.get("backfill", True))


__all__ = ["routes"]
