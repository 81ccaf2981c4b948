"""/runlog/log: the event log, newest first, by stream and type, and a websocket that follows it.

The page is keyed by position (``?before=N``: the events below N). On the newest page the
browser opens ``/runlog/log/live?after=N`` and the server sends each new matching event as a
row already rendered by the page's own template, so there is one rendering of an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlencode

import structlog
from aiohttp import WSMsgType, web

from runlog.eventstore import StorageUnavailable, StoreClosed

from .. import keys
from ..http import BadRequest, Unprocessable, query_int
from ..openapi import documented
from ..queries import event_log as queries
from .render import page, render

routes = web.RouteTableDef()

log = structlog.get_logger("runlog.api.pages")

HEARTBEAT_SECONDS = 30.0
_QUERY = {"stream": str | None, "type": str | None, "before": int | None, "limit": int | None}
_LIVE_QUERY = {"stream": str | None, "type": str | None, "after": int | None}



def _text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    if "\x00" in value:
        raise Unprocessable(f"query parameter {name!r} holds U+0000")
    return value or None


def _url(**params: object) -> str:
    kept = {k: v for k, v in params.items() if v is not None}
    return "/runlog/log" + (f"?{urlencode(kept)}" if kept else "")


@routes.get("/runlog/log")
@documented(summary="runlog's page of the event log (HTML)", query=_QUERY,
            description="Newest first; `before` pages back by position, `stream` and `type` filter exactly.",
            errors={422: "a bad position or limit"})
async def log_page(request: web.Request) -> web.Response:
    stream, type_ = _text(request, "stream"), _text(request, "type")
    before = query_int(request, "before", 1, 2**62)
    limit = query_int(request, "limit", 1, queries.MAX_LIMIT, queries.DEFAULT_LIMIT)
    store = request.config_dict[keys.STORE]
    live = before is None
    # The newest page shows the log up to the head read first, and its websocket follows from
    # that head: an event appended meanwhile is sent by the socket, not shown twice or missed.
    head = await store.head() if live else None
    upto = head + 1 if head is not None else before
    events = await queries.page(store, stream=stream, type_=type_, before=upto, limit=limit)
    newest = head if head is not None else (events[0].position if events else before - 1)
    older = _url(stream=stream, type=type_, before=events[-1].position,
                 limit=limit if limit != queries.DEFAULT_LIMIT else None) if len(events) == limit else None
    return page(
        request, "log.html", section="log", events=events, stream=stream, type=type_, before=before, live=live,
        newest=newest, older_url=older, newest_url=_url(stream=stream, type=type_), types=queries.event_types(),
    )


@routes.get("/runlog/log/live")
@documented(summary="Follow the event log: each new event as a rendered row (websocket)", query=_LIVE_QUERY,
            status=101, errors={400: "Not a websocket upgrade request", 422: "a bad position"})
async def log_live(request: web.Request) -> web.StreamResponse:
    stream, type_ = _text(request, "stream"), _text(request, "type")
    after = query_int(request, "after", 0, 2**62, 0)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    if not ws.can_prepare(request).ok:
        raise BadRequest("/runlog/log/live is a websocket: open it with a websocket upgrade")
    await ws.prepare(request)
    request.config_dict[keys.WEBSOCKETS].add(ws)  # closed on shutdown with the others
    follow = asyncio.create_task(_follow(ws, request.config_dict[keys.STORE], after, stream, type_))
    try:
        async for message in ws:  # reading answers pings and notices the browser leaving
            if message.type is WSMsgType.ERROR:
                break
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
    return ws


async def _follow(ws: web.WebSocketResponse, store, after: int, stream: str | None, type_: str | None) -> None:  # type: ignore[no-untyped-def]
    try:
        async for record in store.subscribe(after=after):
            if (stream is not None and record.stream_id != stream) or (type_ is not None and record.type != type_):
                continue
            event = queries.logged(record.position, record.stream_id, record.version, record.id, record.type,
                                   record.data, record.recorded_at)
            await ws.send_json({"position": event.position, "html": render("_event_row.html", e=event)})
    except (ConnectionError, StoreClosed, StorageUnavailable) as exc:
        log.info("log_live_stopped", reason=str(exc) or type(exc).__name__)
        with contextlib.suppress(ConnectionError):
            await ws.close(code=1011 if isinstance(exc, StorageUnavailable) else 1001)
