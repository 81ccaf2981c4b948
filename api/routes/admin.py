"""Health, version, settings and the small endpoints every Prefect client calls first."""

from __future__ import annotations

from aiohttp import web

from eventstore import mask_url

from .. import keys
from ..http import json_response
from ..settings import SETTINGS

routes = web.RouteTableDef()

PREFECT_SERVER_VERSION = "3.8.8"
"""What GET /admin/version answers: the 3.x Prefect server version whose API runlog speaks.
The client refuses a server of another major version, and warns about an older one."""


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response(True)


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    await request.config_dict[keys.STORE].head()  # raises StorageUnavailable -> 503
    return json_response({"message": "OK"})


@routes.get("/hello")
async def hello(request: web.Request) -> web.Response:
    return json_response("👋")


@routes.get("/admin/version")
async def version(request: web.Request) -> web.Response:
    return json_response(PREFECT_SERVER_VERSION)


@routes.get("/admin/settings")
async def settings(request: web.Request) -> web.Response:
    current = request.config_dict[keys.SETTINGS]
    values = {}
    for setting in SETTINGS:
        value = current.display(setting.name)
        values[setting.name] = mask_url(value) if isinstance(value, str) else value
    return json_response({"runlog": values, "home": str(current.home), "profile": current.profile})


@routes.get("/admin/storage")
async def storage(request: web.Request) -> web.Response:
    return json_response({"default_result_storage_block_id": None})


@routes.get("/csrf-token")
async def csrf_token(request: web.Request) -> web.Response:
    # Prefect's answer with CSRF protection disabled (its default); the client stops asking.
    return json_response({"detail": "CSRF protection is disabled."}, status=422)
