"""Real HTTP receivers on 127.0.0.1 for the notifier's tests, answering as each test scripts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..servers import serve_app

Answer = Callable[["Request"], web.StreamResponse | None]


@dataclass
class Request:
    delivery_id: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records every request; ``answer`` decides each response (200 "ok" when it returns None).

    ``stall`` holds every answer until it is set, for a receiver that hangs."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    answer: Answer = lambda _request: None
    stall: asyncio.Event | None = None

    @property
    def delivery_ids(self) -> list[str]:
        return [r.delivery_id for r in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Request(request.headers.get("webhook-id", ""), await request.json(), dict(request.headers))
        self.requests.append(seen)
        if self.stall is not None:
            await self.stall.wait()
        return self.answer(seen) or web.Response(text="ok")


@contextlib.asynccontextmanager
async def receiver(answer: Answer | None = None) -> AsyncIterator[Receiver]:
    got = Receiver()
    if answer is not None:
        got.answer = answer
    app = web.Application()
    app.router.add_post("/hook", got.handle)
    async with serve_app(app) as origin:
        got.url = f"{origin}/hook"
        try:
            yield got
        finally:
            if got.stall is not None:
                got.stall.set()  # let a stalled handler end, or the server's cleanup waits for it


def status(code: int, text: str = "", **headers: str) -> web.Response:
    return web.Response(status=code, text=text, headers=headers)
