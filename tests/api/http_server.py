"""The real runlog app served on a free 127.0.0.1 port, with a client session pointed at it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from runlog.api.app import create_app
from runlog.commands.clock import Clock, system_clock
from runlog.api.settings import load_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, base: str, session: aiohttp.ClientSession, app: web.Application) -> None:
        self.base = base  # e.g. http://127.0.0.1:PORT/api
        self.session = session
        self.app = app

    async def request(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            body = await response.read()
            if response.content_type == "application/json" and body:
                return response.status, await response.json()
            return response.status, body.decode() if body else None


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], *, clock: Clock = system_clock) -> AsyncIterator[Server]:
    settings = load_settings(env=env)
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Server(f"http://127.0.0.1:{port}/api", session, app)
    finally:
        await runner.cleanup()
