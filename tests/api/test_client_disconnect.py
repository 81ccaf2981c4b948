"""A client that closes its connection mid-request is its own doing: logged at INFO with 499
and ``client_disconnected``, never as an ``unhandled_error`` 500, and the server carries on."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import structlog

from runlog.api.logging import configure_logging

from ..servers import serve


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def parsed(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def request_line(stream: io.StringIO, path: str) -> dict:
    """The request line for PATH, once the server has written it (it does when the handler ends)."""
    deadline = time.monotonic() + 30
    while True:
        found = [line for line in parsed(stream) if line["event"] == "request" and line["path"] == path]
        if found:
            (line,) = found
            return line
        assert time.monotonic() < deadline, stream.getvalue()
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("path", ["/api/flows/", "/api/flow_runs/filter", "/api/runlog/events/import"])
async def test_a_client_closing_mid_body_is_logged_as_a_disconnect_at_info_not_as_a_500(
    tmp_path, store_url, log_lines, path
):
    env = {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}
    async with serve(env) as server:
        url = urlsplit(server.base)
        # A real client over a real socket: it promises 1,000 bytes of body, sends a few, and
        # closes its connection while the handler is reading the rest.
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n".encode() + b'{"name": "half'
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        line = await request_line(log_lines, path)
        assert line["status"] == 499 and line["client_disconnected"] is True and line["level"] == "info"
        lines = parsed(log_lines)
        assert not [entry for entry in lines if entry["event"] == "unhandled_error"], lines
        assert {entry["level"] for entry in lines} <= {"info", "debug"}, lines  # no warning, no error
        # And the server goes on serving.
        status, flow = await server.request("POST", "/flows/", json={"name": "after-the-disconnect"})
        assert status == 201 and flow["name"] == "after-the-disconnect"
