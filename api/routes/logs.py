"""/logs: store run log lines (POST /logs/) and read them back (POST /logs/filter)."""

from __future__ import annotations

from aiohttp import web

from runlog.commands import run_logs as service

from .. import keys
from ..http import decode_body, json_response
from ..openapi import documented
from ..queries import logs as queries
from ..schemas.logs import Log, LogCreate, LogFilterRequest

routes = web.RouteTableDef()


@routes.post("/logs/")
@documented(summary="Store log lines", request=list[LogCreate], response=None, status=201)
async def create_logs(request: web.Request) -> web.Response:
    logs = await decode_body(request, list[LogCreate], nul=True)  # NUL becomes U+FFFD (commands/run_logs.py)
    await service.create_logs(request.config_dict[keys.STORE], logs, clock=request.config_dict[keys.CLOCK])
    return json_response(None, status=201)


@routes.post("/logs/filter")
@documented(summary="Read log lines", request=LogFilterRequest, request_required=False, response=list[Log])
async def read_logs(request: web.Request) -> web.Response:
    body = await decode_body(request, LogFilterRequest, default=LogFilterRequest())
    logs = await queries.read_logs(
        request.config_dict[keys.STORE], body.logs, limit=body.limit, offset=body.offset, sort=body.sort
    )
    return json_response(logs)
