"""How the runlog CLI reaches runs: over HTTP to RUNLOG_API_URL, or in-process (ephemeral mode).

In ephemeral mode the CLI serves the same app on a private loopback port for the length of
one command and talks to it over HTTP, so both modes share every line of query code and
answer identically; the only difference is the one line that says which mode is in use.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import aiohttp
import click
import yarl
from aiohttp import web

from runlog.eventstore import mask_url

from .errors import RunlogError
from .settings import Settings


def unauthorized_message(base: str) -> str:
    return (f"the server at {base} asks for credentials (401 Unauthorized): set RUNLOG_API_AUTH_STRING "
            "to its auth string (user:password)")


class ApiClient:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base.rstrip("/")
        self.session = session

    async def find(self, path: str) -> Any:
        """GET ``path``: the answer, or None when the server answers 404."""
        return await self.call("GET", path, missing_ok=True)

    async def call(self, method: str, path: str, body: Any = None, *, missing_ok: bool = False) -> Any:
        try:
            async with self.session.request(method, self.base + path, json=body) as response:
                payload = await response.json(content_type=None) if response.content_length != 0 else None
                if response.status == 401:
                    raise RunlogError(unauthorized_message(self.base))
                if response.status == 404 and missing_ok:
                    return None
                if response.status == 404:
                    detail = payload.get("detail") if isinstance(payload, dict) else None
                    raise RunlogError(detail or f"{path} not found")
                if response.status >= 400:
                    detail = payload.get("detail") if isinstance(payload, dict) else payload
                    raise RunlogError(f"the server answered {response.status} to {method} {path}: {detail}")
                return payload
        except aiohttp.ClientError as exc:
            raise RunlogError(f"cannot reach the runlog server at {self.base}: {exc}") from None


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ServerCredentials:
    """An aiohttp client middleware: what a runlog (or Prefect) server may ask of the CLI.

    The auth string (RUNLOG_API_AUTH_STRING) as HTTP Basic credentials on every request to the
    server's origin, never to another one a redirect may lead to; and, as Prefect's client does,
    a CSRF token on each write when the server issues them: fetched from /csrf-token before the
    first write and when it expires, fetched again once when the server calls it invalid, and
    not asked for again once the server says CSRF protection is disabled.
    """

    def __init__(self, base: str, auth_string: str | None) -> None:
        self.base = yarl.URL(base.rstrip("/"))
        self.authorization = (
            "Basic " + base64.b64encode(auth_string.encode()).decode() if auth_string else None
        )
        self.csrf_enabled = True
        self.client_id = str(uuid.uuid4())
        self._token: str | None = None
        self._expires: datetime | None = None

    async def __call__(self, request: aiohttp.ClientRequest, handler) -> aiohttp.ClientResponse:  # type: ignore[no-untyped-def]
        if request.url.origin() != self.base.origin():
            return await handler(request)
        if self.authorization:
            request.headers["Authorization"] = self.authorization
        if request.method not in UNSAFE_METHODS or not self.csrf_enabled:
            return await handler(request)
        await self._add_csrf_headers(request)
        response = await handler(request)
        if response.status == 403 and self.csrf_enabled and "Invalid CSRF token" in await response.text():
            self._token = None
            await self._add_csrf_headers(request)
            response = await handler(request)
        return response

    async def _add_csrf_headers(self, request: aiohttp.ClientRequest) -> None:
        if self._token is None or (self._expires is not None and datetime.now(timezone.utc) >= self._expires):
            headers = {"Authorization": self.authorization} if self.authorization else {}
            url = self.base.with_path(self.base.path + "/csrf-token").with_query(client=self.client_id)
            async with request.session.get(url, headers=headers, middlewares=()) as answer:
                text = await answer.text()
                if answer.status == 404 or (answer.status == 422 and "CSRF protection is disabled." in text):
                    self.csrf_enabled = False  # an older server, or one without CSRF protection
                    return
                if answer.status == 401:
                    raise RunlogError(unauthorized_message(str(self.base)))
                if answer.status != 200:
                    raise RunlogError(f"the server answered {answer.status} to GET /csrf-token: {text[:200]}")
                token = json.loads(text)
            self._token = token["token"]
            self._expires = datetime.fromisoformat(token["expiration"])
        assert self._token is not None
        request.headers["Prefect-Csrf-Token"] = self._token
        request.headers["Prefect-Csrf-Client"] = self.client_id


def open_session(base: str, auth_string: str | None, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A client session for the server whose API is at BASE, with its credentials (see above)."""
    return aiohttp.ClientSession(timeout=timeout, middlewares=(ServerCredentials(base, auth_string),))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, announce: bool = True) -> AsyncIterator[ApiClient]:
    """A client for the configured server, or for an in-process one on the local database."""
    timeout = aiohttp.ClientTimeout(total=60)
    if settings.api_url:
        async with open_session(settings.api_url, settings.api_auth_string, timeout) as session:
            yield ApiClient(settings.api_url, session)
        return
    if announce:
        click.echo(
            f"Ephemeral mode: no RUNLOG_API_URL set; using the local database {mask_url(settings.database_url)}.",
            err=True,
        )
    from .app import create_app

    runner = web.AppRunner(create_app(settings, standing=False), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        # The in-process server has this profile's server settings: its auth string included.
        base = f"http://127.0.0.1:{port}/api"
        async with open_session(base, settings.server_api_auth_string, timeout) as session:
            yield ApiClient(base, session)
    finally:
        await runner.cleanup()
