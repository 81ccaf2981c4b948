"""Errors and limits over a real socket on both backends.

A client mistake gets a 4xx in Prefect's ``{"detail": ...}`` shape (422 naming the offending
field, 404 for an unknown id or path, 413 for a body over the limit), an unreachable database a
503 with Retry-After, and nothing a client can send gets a 500 or stops the server serving.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec
import pytest
from aiohttp import web

from runlog.api import app as app_module
from runlog.api import keys
from runlog.commands.client_events import resource_stream
from runlog.eventstore import parse_database_url
from runlog.eventstore.sqlite import SqliteStore

from runlog.commands.clock import ManualClock
from ..servers import until
from ..tcpproxy import TcpProxy
from ..servers import Server, serve

MAX_BODY = 8192
"""RUNLOG_SERVER_MAX_BODY_SIZE in these tests: small, so a 413 needs only a small body."""

JSON = {"Content-Type": "application/json"}


def env_for(tmp_path, database_url: str) -> dict[str, str]:
    return {
        "RUNLOG_HOME": str(tmp_path),
        "RUNLOG_DATABASE_URL": database_url,
        "RUNLOG_SERVER_MAX_BODY_SIZE": str(MAX_BODY),
    }


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return env_for(tmp_path, store_url)


@pytest.fixture
async def server(env) -> AsyncIterator[Server]:
    async with serve(env) as running:
        yield running


async def send(server: Server, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, decoded body, headers); ``raw`` is sent as is, else ``body`` as JSON if given."""
    kwargs: dict[str, Any] = {}
    if raw is not None:
        kwargs["data"] = raw
        kwargs["headers"] = {**JSON, **(headers or {})}
    elif body is not None:
        kwargs["json"] = body
    async with server.session.request(method, server.base + path, **kwargs) as response:
        data = await response.read()
        decoded = msgspec.json.decode(data) if response.content_type == "application/json" and data else data
        return response.status, decoded, response.headers


async def new_flow(server: Server, name: str | None = None) -> str:
    status, flow = await server.request("POST", "/flows/", json={"name": name or f"flow-{uuid.uuid4().hex[:8]}"})
    assert status == 201, flow
    return flow["id"]


async def new_flow_run(server: Server, state: dict | None = None) -> dict:
    body: dict[str, Any] = {"flow_id": await new_flow(server)}
    if state is not None:
        body["state"] = state
    status, run = await server.request("POST", "/flow_runs/", json=body)
    assert status == 201, run
    return run


async def new_task_run(server: Server, flow_run_id: str) -> dict:
    body = {"task_key": "k", "dynamic_key": uuid.uuid4().hex, "flow_run_id": flow_run_id}
    status, task = await server.request("POST", "/task_runs/", json=body)
    assert status == 201, task
    return task


async def assert_still_serving(server: Server) -> None:
    """A request that writes and one that reads both work: the server is not wedged."""
    run = await new_flow_run(server)
    status, read = await server.request("GET", f"/flow_runs/{run['id']}")
    assert status == 200 and read["id"] == run["id"]


def assert_detail(status: int, body: Any, expected_status: int, *, contains: str | None = None) -> None:
    assert status == expected_status, (status, body)
    assert isinstance(body, dict) and set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if contains is not None:
        assert contains in body["detail"], body


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


# -- 422: malformed and mistyped bodies -----------------------------------------------------------


async def test_mistyped_fields_get_422_naming_the_field_path(server) -> None:
    run = await new_flow_run(server)
    task = await new_task_run(server, run["id"])
    flow_id = run["flow_id"]
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/flow_runs/", {"flow_id": "nope"}, "$.flow_id"),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "tags": "not-a-list"}, "$.tags"),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "tags": ["ok", 3]}, "$.tags[1]"),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "parameters": [1, 2]}, "$.parameters"),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "state": {"type": "BOGUS"}}, "$.state.type"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "BOGUS"}}, "$.state.type"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING", "timestamp": "soon"}},
         "$.state.timestamp"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING"}, "force": "yes"}, "$.force"),
        ("PATCH", f"/flow_runs/{run['id']}", {"tags": [None]}, "$.tags[0]"),
        ("POST", "/flows/", {"name": 7}, "$.name"),
        ("POST", "/task_runs/", {"task_key": "k", "dynamic_key": "0", "flow_run_id": "nope"}, "$.flow_run_id"),
        ("POST", f"/task_runs/{task['id']}/set_state", {"state": {"type": "BOGUS"}}, "$.state.type"),
        ("POST", "/logs/", [{"name": "n", "level": "high", "message": "m", "timestamp": iso_now()}], "$[0].level"),
        ("POST", "/flow_runs/filter", {"limit": "ten"}, "$.limit"),
    ]
    for method, path, body, field in cases:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 422, contains=field)
    await assert_still_serving(server)


async def test_a_missing_required_field_gets_422_naming_it(server) -> None:
    run = await new_flow_run(server)
    for method, path, body, field in [
        ("POST", "/flow_runs/", {}, "flow_id"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"force": True}, "state"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {}}, "$.state"),
        ("POST", "/flows/", {"tags": []}, "name"),
    ]:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 422, contains=field)


async def test_a_body_that_is_not_json_gets_422(server) -> None:
    run = await new_flow_run(server)
    for path in ("/flow_runs/", f"/flow_runs/{run['id']}/set_state", "/flows/", "/logs/", "/task_runs/"):
        for raw in (b"this is not json", b"{", b'{"flow_id": }', b"", b"\xef\xbb\xbf{}"):
            status, answer, _ = await send(server, "POST", path, raw=raw)
            assert_detail(status, answer, 422)
    await assert_still_serving(server)


async def test_a_body_that_is_not_utf8_or_nests_too_deep_gets_422(server) -> None:
    """Decoding errors other than msgspec's own (bad UTF-8, runaway nesting) are still 422s."""
    run = await new_flow_run(server)
    for raw in (b'{"name": "\xff\xfe"}', b'"\xed\xa0\x80"', b"[" * 2000, b'{"a":' * 1200):
        for path in ("/flow_runs/", f"/flow_runs/{run['id']}/set_state", "/flows/", "/logs/"):
            status, answer, _ = await send(server, "POST", path, raw=raw)
            assert_detail(status, answer, 422)
    await assert_still_serving(server)


async def test_an_id_in_the_path_that_is_not_a_uuid_gets_422(server) -> None:
    for method, path in [("GET", "/flow_runs/nope"), ("DELETE", "/flow_runs/nope"), ("GET", "/task_runs/12"),
                         ("GET", "/flows/x"), ("GET", "/flow_run_states/nope")]:
        status, answer, _ = await send(server, method, path)
        assert_detail(status, answer, 422, contains="UUID")


# -- 404: unknown ids and paths --------------------------------------------------------------------


async def test_unknown_ids_get_404_with_a_detail(server) -> None:
    missing = str(uuid.uuid4())
    running = {"state": {"type": "RUNNING"}}
    for method, path, body in [
        ("GET", f"/flow_runs/{missing}", None),
        ("PATCH", f"/flow_runs/{missing}", {"name": "renamed"}),
        ("PATCH", f"/flow_runs/{missing}/labels", {"a": "b"}),
        ("DELETE", f"/flow_runs/{missing}", None),
        ("POST", f"/flow_runs/{missing}/set_state", running),
        ("GET", f"/flow_run_states/{missing}", None),
        ("GET", f"/task_runs/{missing}", None),
        ("POST", f"/task_runs/{missing}/set_state", running),
        ("GET", f"/task_run_states/{missing}", None),
        ("GET", f"/flows/{missing}", None),
        ("DELETE", f"/flows/{missing}", None),
    ]:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 404, contains=missing)
    status, answer, _ = await send(server, "GET", "/flows/name/no-such-flow")
    assert_detail(status, answer, 404, contains="no-such-flow")


async def test_a_deleted_flow_run_is_404_afterwards(server) -> None:
    run = await new_flow_run(server)
    assert (await send(server, "DELETE", f"/flow_runs/{run['id']}"))[0] == 204
    for method, path, body in [
        ("GET", f"/flow_runs/{run['id']}", None),
        ("DELETE", f"/flow_runs/{run['id']}", None),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING"}}),
    ]:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 404, contains=run["id"])



async def test_unknown_ids_get_404_on_task_run_and_flow_updates(server) -> None:
    missing = str(uuid.uuid4())
    for method, path, body in [
        ("PATCH", f"/task_runs/{missing}", {"name": "renamed"}),
        ("DELETE", f"/task_runs/{missing}", None),
        ("PATCH", f"/flows/{missing}", {"tags": []}),
    ]:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 404, contains=missing)


async def test_unknown_paths_get_404_json_and_wrong_methods_405_json(server) -> None:
    root = server.base.removesuffix("/api")
    # "/" itself is the web UI's (tests/api/test_prefect_ui.py); "/nope" is no file of it and, asked
    # for by something other than a page load, no client-side route either.
    for url in (server.base + "/no/such/thing", server.base + "/flow_runs/x/y/z", root + "/nope", root + "/api"):
        async with server.session.get(url) as response:
            assert response.status == 404, url
            assert response.content_type == "application/json"
            assert set(await response.json()) == {"detail"}
    status, answer, headers = await send(server, "POST", "/health", {})
    assert_detail(status, answer, 405)
    assert "GET" in headers["Allow"].split(",")


# -- 413: bodies over the limit ------------------------------------------------------------------


async def test_a_body_over_the_limit_gets_413_with_a_json_detail(server) -> None:
    flow_id = await new_flow(server)
    big = {"flow_id": flow_id, "parameters": {"blob": "x" * MAX_BODY}}
    status, answer, _ = await send(server, "POST", "/flow_runs/", big)
    assert_detail(status, answer, 413, contains=str(MAX_BODY))

    lines = [{"name": "n", "level": 20, "message": "m" * 100, "timestamp": iso_now()}] * 100
    status, answer, _ = await send(server, "POST", "/logs/", lines)
    assert_detail(status, answer, 413, contains=str(MAX_BODY))

    # No Content-Length: the limit holds for a chunked body too.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}'

    async with server.session.post(server.base + "/flows/", data=chunks(), headers=JSON) as response:
        assert response.status == 413
        assert_detail(response.status, await response.json(), 413, contains=str(MAX_BODY))

    # Just under the limit is fine.
    fits = {"flow_id": flow_id, "parameters": {"blob": "x" * (MAX_BODY - 200)}}
    status, answer, _ = await send(server, "POST", "/flow_runs/", fits)
    assert status == 201, answer
    await assert_still_serving(server)


# -- 503: the database is unavailable ----------------------------------------------------------


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def assert_unavailable(server: Server, requests: list[tuple[str, str, Any]]) -> None:
    for method, path, body in requests:
        status, answer, headers = await send(server, method, path, body)
        assert_detail(status, answer, 503, contains="unavailable")
        assert int(headers["Retry-After"]) > 0, (method, path)


async def wait_until_ready(server: Server, timeout: float = 20.0) -> None:
    async def ready() -> bool:
        status, answer, _ = await send(server, "GET", "/ready")
        assert status in (200, 503), answer
        return status == 200

    await until(ready, timeout=timeout, interval=0.05, what="the server ready again")


@pytest.mark.postgres
async def test_postgres_going_away_gets_503_with_retry_after_and_the_same_server_recovers(tmp_path, pg_url) -> None:
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        async with serve(env_for(tmp_path, _via(pg_url, proxy.port))) as server:
            run = await new_flow_run(server)
            await proxy.cut()
            await assert_unavailable(server, [
                ("GET", "/ready", None),
                ("POST", "/flows/", {"name": "while-away"}),
                ("GET", f"/flow_runs/{run['id']}", None),
                ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING"}}),
                ("POST", "/flow_runs/filter", {}),
                ("POST", "/logs/", [{"name": "n", "level": 20, "message": "m", "timestamp": iso_now()}]),
            ])
            await proxy.start()  # the same port: the database is back
            await wait_until_ready(server)
            status, answer, _ = await send(server, "POST", f"/flow_runs/{run['id']}/set_state",
                                           {"state": {"type": "RUNNING"}})
            assert status == 201 and answer["status"] == "ACCEPT", answer
            status, read, _ = await send(server, "GET", f"/flow_runs/{run['id']}")
            assert status == 200 and read["state_type"] == "RUNNING"
            await assert_still_serving(server)
    finally:
        await proxy.cut()


async def test_a_sqlite_database_locked_by_another_process_gets_503_and_the_same_server_recovers(
    tmp_path, sqlite_url, monkeypatch
) -> None:
    """SQLite has no server to lose; its "unavailable" is a writer lock held past the busy timeout.

    Another connection holds the write lock (as another process would); the server's writer
    waits its busy timeout, shortened here from 10 s so the test is quick, then answers 503.
    """

    def quick_store(url: str, **kwargs: Any) -> SqliteStore:
        return SqliteStore(parse_database_url(url), busy_timeout=0.3, **kwargs)

    monkeypatch.setattr(app_module, "open_store", quick_store)
    async with serve(env_for(tmp_path, sqlite_url)) as server:
        run = await new_flow_run(server)
        # Another connection takes the write lock as another process would: from a thread, so
        # that this process's event loop (which is the server's) goes on while it waits for the
        # server's own write transactions to commit.
        other = sqlite3.connect(parse_database_url(sqlite_url).sqlite_path, isolation_level=None,
                                check_same_thread=False, timeout=60)
        try:
            await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
            await assert_unavailable(server, [
                ("POST", "/flows/", {"name": "while-locked"}),
                ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING"}}),
            ])
        finally:
            other.execute("ROLLBACK")
            other.close()
        status, answer, _ = await send(server, "POST", f"/flow_runs/{run['id']}/set_state",
                                       {"state": {"type": "RUNNING"}})
        assert status == 201 and answer["status"] == "ACCEPT", answer
        await assert_still_serving(server)


# -- text PostgreSQL cannot store --------------------------------------------------------------


NUL = "a\u0000b"


async def test_nul_characters_anywhere_never_get_a_5xx(server) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000; such a request is refused or stored, never a 500."""
    run = await new_flow_run(server)
    task = await new_task_run(server, run["id"])
    flow_id = run["flow_id"]
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/flows/", {"name": NUL}),
        ("POST", "/flows/", {"name": "ok-" + uuid.uuid4().hex, "tags": [NUL]}),
        ("POST", "/flows/", {"name": "ok-" + uuid.uuid4().hex, "labels": {NUL: NUL}}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "name": NUL}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "tags": [NUL]}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "parameters": {"x": NUL}}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "parameters": {NUL: 1}}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "idempotency_key": NUL}),
        ("POST", "/flow_runs/", {"flow_id": flow_id, "state": {"type": "PENDING", "message": NUL}}),
        ("PATCH", f"/flow_runs/{run['id']}", {"name": NUL, "tags": [NUL]}),
        ("PATCH", f"/flow_runs/{run['id']}/labels", {NUL: NUL}),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "PENDING", "name": NUL}}),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING", "message": NUL}}),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING", "data": {NUL: NUL}}}),
        ("POST", "/task_runs/", {"task_key": NUL, "dynamic_key": NUL, "name": NUL, "flow_run_id": run["id"]}),
        ("POST", f"/task_runs/{task['id']}/set_state", {"state": {"type": "RUNNING", "message": NUL}}),
        ("POST", "/logs/", [{"name": NUL, "level": 20, "message": NUL, "timestamp": iso_now(), "flow_run_id": run["id"]}]),
        ("POST", "/runlog/logs/import", [{"id": str(uuid.uuid4()), "name": NUL, "level": 20, "message": NUL,
                                          "timestamp": iso_now(), "flow_run_id": run["id"]}]),
        ("POST", "/flow_runs/filter", {"flow_runs": {"name": {"any_": [NUL]}}}),
        ("POST", "/flows/filter", {"flows": {"name": {"any_": [NUL], "like_": NUL}}}),
        ("POST", "/logs/filter", {"logs": {"text": {"query": NUL}}}),
        ("GET", "/flows/name/a%00b", None),
        ("POST", "/concurrency_limits/", {"tag": NUL, "concurrency_limit": 1}),
        ("POST", "/v2/concurrency_limits/", {"name": NUL, "limit": 1}),
        ("POST", "/events", [{"id": str(uuid.uuid4()), "occurred": iso_now(), "event": NUL,
                              "resource": {"prefect.resource.id": NUL}}]),
        ("POST", "/variables/", {"name": NUL, "value": 1}),
        ("POST", "/variables/", {"name": "nul-tags", "value": 1, "tags": [NUL]}),
        ("POST", "/variables/", {"name": "nul-value", "value": {NUL: [NUL]}}),
        ("PATCH", "/variables/name/nul-value", {"tags": [NUL], "value": NUL}),
        ("POST", "/variables/filter", {"variables": {"name": {"any_": [NUL], "like_": NUL}, "tags": {"all_": [NUL]}}}),
        ("GET", "/variables/name/a%00b", None),
        ("POST", "/artifacts/", {"key": NUL}),
        ("POST", "/artifacts/", {"key": "nul-type", "type": NUL}),
        ("POST", "/artifacts/", {"key": "nul-data", "description": NUL, "data": {NUL: NUL}, "metadata_": {NUL: NUL}}),
        ("POST", "/artifacts/filter", {"artifacts": {"key": {"any_": [NUL], "like_": NUL}, "type": {"any_": [NUL]}}}),
        ("POST", "/artifacts/latest/filter", {"artifacts": {"key": {"any_": [NUL]}, "type": {"not_any_": [NUL]}}}),
        ("GET", "/artifacts/a%00b/latest", None),
    ]
    for method, path, body in cases:
        status, answer, _ = await send(server, method, path, body)
        assert status < 500, (method, path, status, answer)
        if status >= 400:
            assert_detail(status, answer, status)
        await assert_still_serving(server)


async def test_lone_surrogates_anywhere_get_422(server) -> None:
    """A lone surrogate cannot be encoded as UTF-8, so it can be stored nowhere: 422, never a 500."""
    run = await new_flow_run(server)
    flow_id = run["flow_id"]
    lone = "\\ud800"  # as JSON escapes it
    cases = [
        ("/flows/", f'{{"name": "{lone}"}}'),
        ("/flow_runs/", f'{{"flow_id": "{flow_id}", "name": "x{lone}"}}'),
        ("/flow_runs/", f'{{"flow_id": "{flow_id}", "tags": ["\\udfff"]}}'),
        ("/flow_runs/", f'{{"flow_id": "{flow_id}", "parameters": {{"{lone}": 1}}}}'),
        (f"/flow_runs/{run['id']}/set_state", f'{{"state": {{"type": "RUNNING", "message": "{lone}"}}}}'),
        ("/logs/", f'[{{"name": "n", "level": 20, "message": "{lone}", "timestamp": "{iso_now()}"}}]'),
        ("/runlog/logs/import", f'[{{"id": "{uuid.uuid4()}", "name": "n", "level": 20, "message": "{lone}", '
                                f'"timestamp": "{iso_now()}"}}]'),
    ]
    for path, raw in cases:
        status, answer, _ = await send(server, "POST", path, raw=raw.encode())
        assert_detail(status, answer, 422)
        await assert_still_serving(server)


# -- fuzz: no POST endpoint answers a malformed body with a 5xx -----------------------------------


FUZZ_BODIES: list[bytes] = [
    b"", b" ", b"\n", b"null", b"true", b"0", b"-1", b"1e400", b"-1e400", b"1" * 400, b'"text"', b"[]", b"{}",
    b"[{}]", b"[null]", b"[[]]", b'{"": ""}', b"{", b"}", b"[", b'{"a":}', b"{'single': 'quotes'}", b"NaN",
    b"Infinity", b"\xef\xbb\xbf{}", b"\xff\xfe\x00", b'"\xed\xa0\x80"', b'"\\ud800"', b'{"name": "\\udfff"}',
    b"\x00", b'"\\u0000"', b"[" * 2000, b'{"a":' * 1200, b'{"a": 1} trailing', b'{"a": 1, "a": 2}',
    b'{"id": "not-a-uuid"}', b'{"state": null}', b'{"state": {"type": "BOGUS"}}',
    b'{"state": {"type": "RUNNING", "timestamp": "not a date"}}',
    b'{"state": {"type": "RUNNING", "timestamp": "9999-12-31T23:59:59-23:59"}}',
    b'{"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": "0001-01-01T00:00:00+23:59"}}}',
    b'{"limit": -1, "offset": -1}', b'{"limit": 1e20, "offset": 123456789012345678901234567890}',
    b'{"limit": "ten"}', b'{"sort": "SIDEWAYS"}', b'{"page": 0}', b'{"names": 5}',
    b'{"names": ["a"], "slots": 123456789012345678901234567890, "lease_duration": 1e308}',
    b'{"names": ["a"], "slots": -3, "mode": "neither"}',
    b'{"tag": "t", "concurrency_limit": 123456789012345678901234567890}',
    b'{"name": "n", "limit": 123456789012345678901234567890, "slot_decay_per_second": -1}',
    b'{"lease_id": "nope"}', b'{"lease_duration": -5}', b'{"slot_override": ["x"]}',
]


def fuzz_json_bodies(flow_id: str, run_id: str) -> list[Any]:
    """Bodies that decode, with extreme values in the fields the endpoints read."""
    huge = 2**70
    far_future, far_past = "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+00:00"
    return [
        {"flow_id": flow_id, "name": "x" * 4000},
        {"flow_id": flow_id, "parameters": {"n": huge, "f": 1e308, "deep": [[[[[[[[[[{}]]]]]]]]]]}},
        {"flow_id": flow_id, "state": {"type": "SCHEDULED", "timestamp": far_future,
                                       "state_details": {"scheduled_time": far_future}}},
        {"flow_id": flow_id, "state": {"type": "SCHEDULED", "timestamp": far_past,
                                       "state_details": {"scheduled_time": far_past}}},
        {"flow_id": flow_id, "empirical_policy": {"retries": huge, "retry_delay": -1}},
        {"flow_id": flow_id, "parent_task_run_id": run_id, "idempotency_key": ""},
        {"state": {"type": "RUNNING", "timestamp": far_future}},
        {"state": {"type": "RUNNING", "timestamp": far_past}},
        {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": far_future}}},
        {"state": {"type": "PAUSED", "state_details": {"pause_timeout": far_past, "pause_reschedule": True}}},
        {"state": {"type": "FAILED", "data": {"type": "x" * 100, "storage_key": huge}}, "force": True},
        {"task_key": "", "dynamic_key": "", "flow_run_id": run_id, "cache_expiration": far_past},
        {"task_key": "k", "dynamic_key": "d", "flow_run_id": str(uuid.uuid4()), "id": run_id},
        {"name": "", "tags": [""] * 50, "labels": {"": None}},
        {"flow_runs": {"name": {"any_": ["x" * 4000]}, "start_time": {"after_": far_future, "before_": far_past}}},
        {"flow_runs": {"expected_start_time": {"after_": far_past}}, "sort": "END_TIME_DESC", "limit": 0},
        {"logs": {"level": {"ge_": -(2**63), "le_": 2**63 - 1}, "timestamp": {"before_": far_past}}},
        {"logs": {"text": {"query": '"unbalanced -( OR'}}},
        {"page": huge, "limit": 200}, {"offset": 2**63 - 1, "limit": 200},
        {"names": ["x" * 4000], "slots": 1, "lease_duration": 1e-9},
        {"names": ["a"], "slots": 2**63 - 1, "mode": "rate_limit", "holder": {"type": "task_run", "id": run_id}},
        {"tag": "t", "concurrency_limit": 2**63 - 1}, {"name": "n", "limit": 2**63 - 1},
        [{"name": "n", "level": 2**63 - 1, "message": "m", "timestamp": far_future}],
        [{"name": "n", "level": -(2**63), "message": "m", "timestamp": far_past, "flow_run_id": run_id}],
        [{"id": str(uuid.uuid4()), "occurred": far_past, "event": "e", "resource": {"prefect.resource.id": "r"}}],
        [{"id": str(uuid.uuid4()), "occurred": far_future, "event": "", "resource": {}}],
        # One out-of-range number at a time, so no other field's 422 hides what it does.
        {"limit": huge}, {"limit": -1}, {"offset": huge}, {"offset": -1}, {"page": huge}, {"page": 2**62},
        {"tag": "t", "concurrency_limit": huge}, {"name": "n", "limit": huge},
        {"name": "n", "limit": 1, "active_slots": huge}, {"name": "n", "limit": 1, "denied_slots": huge},
        {"name": "n", "limit": 1, "slot_decay_per_second": 1e308},
        {"names": ["a"], "slots": huge}, {"names": ["t"], "slots": 2**62}, {"names": ["a"], "slots": 1, "lease_duration": 1e308},
        {"lease_id": str(uuid.uuid4()), "lease_duration": 1e308}, {"slot_override": [run_id] * 100},
        {"state": {"type": "RUNNING", "state_details": {"run_count": huge}}},
        {"infrastructure_pid": "x" * 2000, "name": "x" * 4000, "parameters": {"n": -huge}},
    ]


def body_endpoints(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of every route of the /api sub-app that takes a body, as registered."""
    endpoints = []
    for resource in app.router.resources():
        sub_app = getattr(resource, "_app", None)
        if not isinstance(sub_app, web.Application):
            continue
        for sub_resource in sub_app.router.resources():
            endpoints += [(route.method, sub_resource.canonical) for route in sub_resource
                          if route.method in ("POST", "PATCH", "PUT")]
    return endpoints


def fill_path(path: str, *, flow_run_id: str, task_run_id: str) -> str:
    path = path.removeprefix("/api")
    if path.startswith("/flow_runs/{id}"):
        path = path.replace("{id}", flow_run_id)
    elif path.startswith("/task_runs/{id}"):
        path = path.replace("{id}", task_run_id)
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + (str(uuid.uuid4()) if "id" in path[start:end] else "fuzz") + path[end + 1:]
    return path


@pytest.mark.slow
async def test_no_endpoint_answers_malformed_bodies_with_a_5xx(server) -> None:
    """Every POST (and PATCH) route found in the app's router, each sent a few dozen bad bodies."""
    endpoints = body_endpoints(server.app)
    assert ("POST", "/api/flow_runs/{id}/set_state") in endpoints and ("POST", "/api/logs/") in endpoints
    assert sum(method == "POST" for method, _ in endpoints) > 20
    run = await new_flow_run(server)
    task = await new_task_run(server, run["id"])
    encoded = [msgspec.json.encode(body) for body in fuzz_json_bodies(run["flow_id"], run["id"])]
    failures = []
    for method, endpoint in endpoints:
        path = fill_path(endpoint, flow_run_id=run["id"], task_run_id=task["id"])
        for raw in FUZZ_BODIES + encoded:
            try:
                status, answer, _ = await send(server, method, path, raw=raw)
            except aiohttp.ClientError as exc:
                failures.append((method, path, raw[:80], f"connection failed: {exc!r}"))
                continue
            if status >= 500:
                failures.append((method, path, raw[:80], status, answer))
            elif status >= 400 and not (isinstance(answer, dict) and "detail" in answer):
                failures.append((method, path, raw[:80], status, answer, "not Prefect's error shape"))
    assert not failures, "\n".join(map(repr, failures))
    await assert_still_serving(server)


async def test_an_events_frame_that_is_not_utf8_or_nests_too_deep_is_skipped_and_the_socket_stays_open(server) -> None:
    """/events/in skips a frame it cannot decode, whatever the reason, and keeps reading."""
    flow_run_id = uuid.uuid4()
    good = {"id": str(uuid.uuid4()), "occurred": iso_now(), "event": "prefect.flow-run.heartbeat",
            "resource": {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"}}
    url = server.base.replace("http", "ws") + "/events/in"
    async with server.session.ws_connect(url, protocols=("prefect",)) as ws:
        await ws.send_str('{"type": "auth", "token": null}')
        assert (await ws.receive_json(timeout=5)) == {"type": "auth_success"}
        for frame in (b'{"event": "\xff"}', b"[" * 2000, b'{"a":' * 1200):
            await ws.send_bytes(frame)
        await ws.send_str(msgspec.json.encode(good).decode())
        await ws.close()
        assert ws.close_code == aiohttp.WSCloseCode.OK  # the server did not drop the connection
    store = server.app[keys.STORE]
    stored = [r.id async for r in store.read_stream(resource_stream(good["resource"]["prefect.resource.id"]))]
    assert stored == [uuid.UUID(good["id"])]


async def test_an_auth_frame_that_is_not_utf8_is_refused_like_any_other_bad_auth(server) -> None:
    url = server.base.replace("http", "ws") + "/events/in"
    async with server.session.ws_connect(url, protocols=("prefect",)) as ws:
        await ws.send_bytes(b'{"type": "\xff"}')
        assert (await ws.receive_json(timeout=5)) == {"type": "auth_failure", "reason": "Expected 'auth' message"}
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.POLICY_VIOLATION


# -- what the API document says, the server does ----------------------------------------------


async def test_whole_number_floats_and_numeric_strings_are_ints_as_in_prefect(server) -> None:
    """Prefect validates bodies in pydantic's lax mode: 60.0 and "60" are the int 60."""
    status, limit, _ = await send(server, "POST", "/v2/concurrency_limits/",
                                  {"name": "lax", "limit": 60.0, "active_slots": 0.0, "denied_slots": "0"})
    assert status == 201 and limit["limit"] == 60, limit
    status, _, _ = await send(server, "PATCH", "/v2/concurrency_limits/lax", {"limit": 61.0})
    assert status == 204
    status, tag, _ = await send(server, "POST", "/concurrency_limits/", {"tag": "lax", "concurrency_limit": 3.0})
    assert status == 201 and tag["concurrency_limit"] == 3, tag
    for path in ("/flow_runs/filter", "/task_runs/filter", "/flows/filter", "/logs/filter", "/v2/concurrency_limits/filter"):
        status, answer, _ = await send(server, "POST", path, {"limit": 60.0, "offset": 0.0})
        assert status == 200, (path, answer)
    status, answer, _ = await send(server, "POST", "/v2/concurrency_limits/filter", {"limit": 1.5})
    assert_detail(status, answer, 422, contains="$.limit")
    status, answer, _ = await send(server, "POST", "/flow_runs/filter", {"limit": -1})
    assert_detail(status, answer, 422, contains="$.limit")
    status, answer, _ = await send(server, "POST", "/flows/filter", {"limit": -1})
    assert_detail(status, answer, 422, contains="$.limit")


async def test_a_body_of_only_whitespace_is_malformed_but_an_empty_one_is_no_filter(server) -> None:
    for path in ("/flow_runs/filter", "/flow_runs/count", "/flow_runs/paginate", "/task_runs/filter",
                 "/task_runs/count", "/flows/filter", "/flows/count", "/logs/filter", "/v2/concurrency_limits/filter"):
        for blank in (b" ", b"\n", b"\t \r\n"):
            status, answer, _ = await send(server, "POST", path, raw=blank)
            assert_detail(status, answer, 422, contains="truncated")
        status, answer, _ = await send(server, "POST", path, raw=b"")
        assert status == 200, (path, answer)


async def test_a_fixed_path_answers_405_with_its_own_methods_not_an_id_routes(server) -> None:
    for path in ("/flow_runs/filter", "/flow_runs/count", "/flow_runs/paginate", "/task_runs/filter",
                 "/task_runs/count", "/task_runs/paginate", "/flows/filter", "/flows/count",
                 "/concurrency_limits/filter", "/v2/concurrency_limits/filter",
                 "/v2/concurrency_limits/increment-with-lease", "/v2/concurrency_limits/decrement-with-lease"):
        for method in ("PATCH", "GET", "DELETE", "OPTIONS"):
            status, answer, headers = await send(server, method, path)
            assert_detail(status, answer, 405)
            assert headers["Allow"] == "POST", (method, path, headers["Allow"])
    status, answer, _ = await send(server, "PATCH", f"/flow_runs/{uuid.uuid4()}", {"name": "x"})
    assert_detail(status, answer, 404)  # the id routes themselves still answer


async def test_a_plain_get_of_the_events_websocket_is_a_400_saying_so(server) -> None:
    for path in ("/events/in", "/events/out"):
        status, answer, _ = await send(server, "GET", path)
        assert_detail(status, answer, 400, contains=f"{path} is a websocket")


async def test_a_header_with_a_nul_byte_is_a_400_logged_in_one_info_line(server, caplog) -> None:
    host, port = urlsplit(server.base).hostname, urlsplit(server.base).port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Probe: a\x00b\r\n\r\n")
    await writer.drain()
    with caplog.at_level("DEBUG", logger="aiohttp.server"):
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
    assert answer.split(b" ", 2)[1] == b"400", answer[:80]
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 1, records
    (record,) = records
    assert record.levelname == "INFO" and record.exc_info is None and record.exc_text is None
    assert "malformed_request" in record.getMessage() and "\n" not in record.getMessage()
    await assert_still_serving(server)


async def test_nul_in_any_string_is_refused_alike_on_both_backends_and_log_lines_are_kept(server) -> None:
    """PostgreSQL cannot hold U+0000 in text or JSON; SQLite could, so both refuse it alike (422
    naming where it is). Log lines keep it as U+FFFD; events are stored as sent."""
    run = await new_flow_run(server)
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/flows/", {"name": NUL}, "$.name"),
        ("POST", "/flow_runs/", {"flow_id": run["flow_id"], "parameters": {"x": [NUL]}}, "$.parameters.x[0]"),
        ("POST", "/flow_runs/", {"flow_id": run["flow_id"], "tags": [NUL]}, "$.tags[0]"),
        ("PATCH", f"/flow_runs/{run['id']}/labels", {NUL: 1}, "$"),
        ("POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": "RUNNING", "message": NUL}}, "$.state.message"),
        ("POST", "/flow_runs/filter", {"flow_runs": {"name": {"any_": [NUL]}}}, "$.flow_runs.name.any_[0]"),
        ("POST", "/logs/filter", {"logs": {"text": {"query": NUL}}}, "$.logs.text.query"),
        ("POST", "/v2/concurrency_limits/", {"name": NUL, "limit": 1}, "$.name"),
    ]
    for method, path, body, where in cases:
        status, answer, _ = await send(server, method, path, body)
        assert_detail(status, answer, 422, contains=f"NUL characters (\\u0000) - at `{where}`")
    # An escaped backslash before "u0000" is no NUL.
    status, flow, _ = await send(server, "POST", "/flows/", raw=b'{"name": "back\\\\u0000slash"}')
    assert status == 201 and flow["name"] == "back\\u0000slash", flow
    line = {"name": "n", "level": 20, "message": NUL, "timestamp": iso_now(), "flow_run_id": run["id"]}
    assert (await send(server, "POST", "/logs/", [line]))[0] == 201
    status, logs, _ = await send(server, "POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
    assert status == 200 and [log["message"] for log in logs] == ["a\ufffdb"], logs


async def test_a_timestamp_without_an_offset_is_utc_as_prefect_reads_it(env) -> None:
    # The server's clock stands before the times sent, whatever today's date: the run is
    # scheduled in its future, as the test means it to be.
    async with serve(env, clock=ManualClock(datetime(2025, 12, 31, tzinfo=UTC))) as server:
        await _timestamps_without_offsets_are_utc(server)


async def _timestamps_without_offsets_are_utc(server: Server) -> None:
    scheduled = {"type": "SCHEDULED", "state_details": {"scheduled_time": "2026-01-02T03:04:05"}}
    run = await new_flow_run(server, state=scheduled)
    assert run["expected_start_time"] == "2026-01-02T03:04:05Z", run
    pending = {"type": "PENDING", "timestamp": "2026-01-01T00:00:00"}
    status, result, _ = await send(server, "POST", f"/flow_runs/{run['id']}/set_state", {"state": pending})
    assert status == 201 and result["state"]["timestamp"] == "2026-01-01T00:00:00Z", result
    status, runs, _ = await send(server, "POST", "/flow_runs/filter",
                                 {"flow_runs": {"expected_start_time": {"after_": "2026-01-02T03:04:05"}}})
    assert status == 200 and [r["id"] for r in runs] == [run["id"]]


async def test_a_deleted_task_run_can_be_created_again(server) -> None:
    # Its keys are free again: the new task run is a new run (a new id and stream), as in Prefect.
    run = await new_flow_run(server)
    body = {"task_key": "k", "dynamic_key": "again", "flow_run_id": run["id"]}
    status, first, _ = await send(server, "POST", "/task_runs/", body)
    assert status == 201
    assert (await send(server, "DELETE", f"/task_runs/{first['id']}"))[0] == 204
    status, second, _ = await send(server, "POST", "/task_runs/", body)
    assert status == 201 and second["id"] != first["id"] and second["state_type"] == "PENDING", second
    status, again, _ = await send(server, "POST", "/task_runs/", body)
    assert status == 200 and again["id"] == second["id"]


async def test_rate_limit_mode_on_names_without_a_limit_is_granted_as_in_prefect(server) -> None:
    body = {"names": ["no-such-limit"], "slots": 1, "mode": "rate_limit"}
    status, granted, _ = await send(server, "POST", "/v2/concurrency_limits/increment-with-lease", body)
    assert status == 200 and granted["limits"] == [], granted


async def test_an_imported_event_whose_payload_is_not_base64_is_a_422(server) -> None:
    line = {"stream_id": "s", "id": str(uuid.uuid4()), "type": "t", "data_base64": "!!!!"}
    status, answer, _ = await send(server, "POST", "/runlog/events/import", [line])
    assert_detail(status, answer, 422, contains="data_base64")
