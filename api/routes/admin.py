"""Health, version, settings and the small endpoints every Prefect client calls first."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from runlog.commands import csrf
from runlog.commands.errors import Unprocessable
from runlog.eventstore import mask_url

from .. import keys
from ..http import json_response
from ..openapi import documented
from ..settings import SETTINGS

routes = web.RouteTableDef()

PREFECT_SERVER_VERSION = "3.8.8"
"""What GET /admin/version answers: the 3.x Prefect server version whose API runlog speaks.
The client refuses a server of another major version, and warns about an older one."""


@routes.get("/health")
@documented(summary="Whether the server is up", response=bool)
async def health(request: web.Request) -> web.Response:
    return json_response(True)


@routes.get("/ready")
@documented(
    summary="Whether the server can reach its database", response=dict[str, str],
    errors={503: "The database is unavailable"},
)
async def ready(request: web.Request) -> web.Response:
    await request.config_dict[keys.STORE].head()  # raises StorageUnavailable -> 503
    return json_response({"message": "OK"})


@routes.get("/hello")
@documented(summary="A greeting", response=str)
async def hello(request: web.Request) -> web.Response:
    return json_response("👋")


@routes.get("/admin/version")
@documented(summary="The Prefect server version whose API runlog speaks", response=str)
async def version(request: web.Request) -> web.Response:
    return json_response(PREFECT_SERVER_VERSION)


@routes.get("/admin/settings")
@documented(summary="runlog's settings, database URLs masked", response=dict[str, Any])
async def settings(request: web.Request) -> web.Response:
    current = request.config_dict[keys.SETTINGS]
    values = {}
    for setting in SETTINGS:
        value = current.display(setting.name)
        values[setting.name] = mask_url(value) if isinstance(value, str) else value
    return json_response({
        "runlog": values, "home": str(current.home), "profile": current.profile,
        # Prefect's shape, for its web UI: without it the UI assumes analytics are on and sends
        # usage events from the browser to Prefect's analytics service. A runlog server does not.
        "server": {"analytics_enabled": False},
    })


@routes.get("/admin/storage")
@documented(summary="The default result storage block: none", response=dict[str, Any])
async def storage(request: web.Request) -> web.Response:
    return json_response({"default_result_storage_block_id": None})


@routes.get("/csrf-token")
@documented(
    summary="A CSRF token for a client (when RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED)",
    response=dict[str, Any], query={"client": str},
    errors={422: "CSRF protection is disabled, or no client was named"},
)
async def csrf_token(request: web.Request) -> web.Response:
    settings = request.config_dict[keys.SETTINGS]
    if not settings.server_api_csrf_protection_enabled:
        # Prefect's answer with CSRF protection disabled (its default); the client stops asking.
        return json_response({"detail": "CSRF protection is disabled."}, status=422)
    client = request.query.get("client")
    if not client:
        raise Unprocessable("query parameter 'client' is required")
    if len(client) > csrf.MAX_CLIENT_LENGTH:
        raise Unprocessable(f"query parameter 'client' is longer than {csrf.MAX_CLIENT_LENGTH} characters")
    now = request.config_dict[keys.CLOCK]()
    key = await request.config_dict[keys.CSRF_KEYS].key(request.config_dict[keys.STORE])
    token = csrf.issue(key, client, now, settings.server_api_csrf_token_expiration)
    # Prefect's CsrfToken: an object with an id and timestamps, though nothing is stored here.
    return json_response({
        "id": str(uuid.uuid4()), "created": now, "updated": now,
        "token": token.token, "client": token.client, "expiration": token.expiration,
    })
