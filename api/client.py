"""How the runlog CLI reaches runs: over HTTP to RUNLOG_API_URL, or in-process (ephemeral mode).

In ephemeral mode the CLI serves the same app on a private loopback port for the length of
one command and talks to it over HTTP, so both modes share every line of query code and
answer identically; the only difference is the one line that says which mode is in use.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import click
from aiohttp import web

from runlog.eventstore import mask_url

from .errors import RunlogError
from .settings import Settings


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def connect(settings: Settings, *, announce: bool = True) -> AsyncIterator[ApiClient]:
    """A client for the configured server, or for an in-process one on the local database."""
    timeout = aiohttp.ClientTimeout(total=60)
    if settings.api_url:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield ApiClient(settings.api_url, session)
        return
    if announce:
        click.echo(
            f"Ephemeral mode: no RUNLOG_API_URL set; using the local database {mask_url(settings.database_url)}.",
            err=True,
        )
    from .app import create_app

    runner = web.AppRunner(create_app(settings, send_notifications=False), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            yield ApiClient(f"http://127.0.0.1:{port}/api", session)
    finally:
        await runner.cleanup()
