"""/runlog/projections: each read model's kind, version, checkpoint and lag, and a button that
verifies them against the log through the API (POST /api/admin/projections/verify)."""

from __future__ import annotations

from aiohttp import web

from runlog.projections.status import statuses

from .. import keys
from ..openapi import documented
from .render import page

routes = web.RouteTableDef()


@routes.get("/runlog/projections")
@documented(summary="runlog's page of projections: checkpoints, lag, verification (HTML)")
async def projections_page(request: web.Request) -> web.Response:
    found = await statuses(request.config_dict[keys.STORE])
    return page(request, "projections.html", section="projections", projections=found,
                head=found[0].head if found else 0)
