"""POST /api/runlog/events/import and /api/runlog/logs/import: receive a log pushed from another runlog.

runlog's own extension (not part of Prefect's API), used by ``runlog events push``. The events
body is a JSON list of exported events (api/eventlines.py). They are appended in order, each to
its own stream, and keep their ids, so pushing the same events twice stores them once. The
logs body is a JSON list of exported log lines, which keep their ids in the same way.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from runlog.commands import run_logs as log_service

from .. import keys
from ..eventlines import ExportedEvent, as_new_event
from ..http import decode_body, json_response
from ..openapi import documented
from ..schemas.logs import ExportedLog

routes = web.RouteTableDef()


@routes.post("/runlog/events/import")
@documented(
    summary="Import events exported from another runlog (runlog events push)", request=list[ExportedEvent],
    response=dict[str, int],
)
async def import_events(request: web.Request) -> web.Response:
    events = await decode_body(request, list[ExportedEvent], nul=True)  # payloads are stored as they are
    store = request.config_dict[keys.STORE]
    head = await store.head()
    new_events = [as_new_event(e, n) for n, e in enumerate(events, start=1)]
    # Queued in order: the store's one writer commits them in this order, in few transactions.
    results = await asyncio.gather(*(store.append(e.stream_id, [n]) for e, n in zip(events, new_events, strict=True)))
    imported = sum(1 for (r,) in results if r.position > head)
    return json_response({"imported": imported, "skipped": len(results) - imported})


@routes.post("/runlog/logs/import")
@documented(
    summary="Import log lines exported from another runlog (runlog events push)", request=list[ExportedLog],
    response=dict[str, int],
)
async def import_logs(request: web.Request) -> web.Response:
    logs = await decode_body(request, list[ExportedLog])
    imported = await log_service.import_logs(
        request.config_dict[keys.STORE], logs, clock=request.config_dict[keys.CLOCK]
    )
    return json_response({"imported": imported, "skipped": len(logs) - imported})
