"""A real HTTP receiver on 127.0.0.1 that records every request and answers from a script.

    async with receiver() as r:
        r.script((429, {"Retry-After": "2"}, b""), STALL, CLOSE, (200, {}, b"ok"))
        ... send to r.url ...
        assert r.seen[0].path == "/services/..."

A step is (status, headers, body), where body may be a function of the request seen (to echo
it back); STALL answers only when the test ends; CLOSE drops the connection without answering;
ENDLESS streams a body that never ends;
CUT answers 200 and drops the connection halfway through the body it announced; SLOW_JSON
answers 200 with a JSON body (``{"id": "42", ...}``) sent in pieces. Once the script runs out, every request gets ``default``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.servers import serve_app

STALL, CLOSE, ENDLESS, CUT, SLOW_JSON = "stall", "close", "endless", "cut", "slow-json"


@dataclass
class Seen:
    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.url = ""
        self.seen: list[Seen] = []
        self.default: Any = (200, {}, b"ok")
        self._plan: deque[Any] = deque()
        self._release = asyncio.Event()

    def script(self, *steps: Any) -> None:
        self._plan.extend(steps)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, request.raw_path.partition("?")[0], dict(request.query), CIMultiDict(request.headers), await request.read())
        self.seen.append(seen)
        step = self._plan.popleft() if self._plan else self.default
        if step == STALL:
            await self._release.wait()
            return web.Response(text="late")
        if step == CLOSE:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if step == ENDLESS:
            resp = web.StreamResponse()
            await resp.prepare(request)
            chunk = b"x" * 65536
            with contextlib.suppress(ConnectionError):
                while not self._release.is_set():
                    await resp.write(chunk)
            return resp
        if step == CUT:
            resp = web.StreamResponse(headers={"Content-Length": "1000"})
            await resp.prepare(request)
            await resp.write(b"partial")
            assert request.transport is not None
            request.transport.close()
            return resp
        if step == SLOW_JSON:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for piece in (b'{"pad": "', b"p" * 20000, b'", ', b'"id": "42"}'):
                await resp.write(piece)
                await asyncio.sleep(0)  # let each piece reach the client on its own
            return resp
        status, headers, body = step
        body = body(seen) if callable(body) else body
        return web.Response(status=status, headers=headers, body=body)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", r.handle)
    async with serve_app(app) as origin:
        r.url = origin
        try:
            yield r
        finally:
            r._release.set()  # stalled handlers answer now, so the server can stop
