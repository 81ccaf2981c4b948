"""The auth string, CSRF tokens and security headers (api/security.py) on the real server.

What Prefect 3.8.8 leaves open with an auth string set (its health and ready probes, the UI's
bundle and /ui-settings, a websocket's upgrade, authenticated by its first message) stays open;
everything else under /api, /metrics and /runlog answers Prefect's bare 401.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import aiohttp
import httpx
import pytest

from runlog.api.commands.server import AUTH_ON, NO_AUTH_WARNING, banner
from runlog.api.security import content_security_policy

from ..servers import runlog_server, serve, server_env
from .conftest import START, TIME_BASED_SERVICES_OFF

AUTH = "admin:pässwörd-42"  # not ASCII: the credentials are compared as bytes
UNAUTHORIZED = {"exception_message": "Unauthorized"}


def basic(auth_string: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}


GOOD = basic(AUTH)


async def answer(session: aiohttp.ClientSession, method: str, url: str, **kwargs) -> tuple[int, bytes, dict]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.read(), dict(response.headers)


@pytest.fixture
async def locked(env, clock):
    """A served runlog with an auth string."""
    async with serve({**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_SERVER_API_AUTH_STRING": AUTH}, clock=clock) as running:
        yield running


# -- the auth string on HTTP -----------------------------------------------------------------------


async def test_with_an_auth_string_the_api_needs_it_and_every_wrong_one_gets_the_same_bare_401(locked) -> None:
    session, api = locked.session, locked.base
    flow = {"name": "secured"}
    wrong = [
        {},  # no credentials
        basic("admin:wrong"),
        basic("admin"),
        basic(AUTH + " "),
        {"Authorization": "Bearer " + AUTH},
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic"},
        {"Authorization": base64.b64encode(AUTH.encode()).decode()},  # no scheme
    ]
    answers = [await answer(session, "POST", api + "/flows/", json=flow, headers=h) for h in wrong]
    for status, body, headers in answers:
        assert status == 401 and json.loads(body) == UNAUTHORIZED
        assert "WWW-Authenticate" not in headers  # the UI shows its own login page instead
    assert len({body for _, body, _ in answers}) == 1  # nothing says which part was wrong
    # Nothing was created by the refused requests.
    status, body, _ = await answer(session, "POST", api + "/flows/filter", json={}, headers=GOOD)
    assert status == 200 and json.loads(body) == []

    status, body, _ = await answer(session, "POST", api + "/flows/", json=flow, headers=GOOD)
    assert status == 201 and json.loads(body)["name"] == "secured"
    # The scheme's name is case-insensitive (RFC 9110); the credentials are not.
    lower = {"Authorization": GOOD["Authorization"].replace("Basic", "basic")}
    status, body, _ = await answer(session, "POST", api + "/flows/filter", json={}, headers=lower)
    assert status == 200 and [f["name"] for f in json.loads(body)] == ["secured"]


async def test_paths_under_api_that_match_no_route_are_401_too_so_routes_do_not_show(locked) -> None:
    session, api = locked.session, locked.base
    assert (await answer(session, "GET", api + "/no-such-thing"))[0] == 401
    assert (await answer(session, "PATCH", api + "/flows/filter"))[0] == 401  # a 405 with credentials
    assert (await answer(session, "GET", api + "/no-such-thing", headers=GOOD))[0] == 404
    assert (await answer(session, "PATCH", api + "/flows/filter", headers=GOOD))[0] == 405


async def test_health_and_ready_stay_open_for_probes_as_prefect_leaves_them(locked) -> None:
    session, api = locked.session, locked.base
    assert (await answer(session, "GET", api + "/health"))[:2] == (200, b"true")
    status, body, _ = await answer(session, "GET", api + "/ready")
    assert status == 200 and json.loads(body) == {"message": "OK"}
    # Only those two paths, only read: not a path that ends like them, not another method.
    assert (await answer(session, "GET", api + "/admin/version"))[0] == 401
    assert (await answer(session, "GET", api + "/variables/name/health"))[0] == 401
    assert (await answer(session, "POST", api + "/health"))[0] == 401


async def test_metrics_and_runlog_pages_need_it_and_ask_the_browser_for_it(locked) -> None:
    session = locked.session
    origin = locked.base.removesuffix("/api")
    for path in ("/metrics", "/runlog/", "/runlog/log"):
        status, body, headers = await answer(session, "GET", origin + path)
        assert status == 401 and json.loads(body) == UNAUTHORIZED, path
        assert headers["WWW-Authenticate"] == 'Basic realm="runlog", charset="UTF-8"'
    status, body, _ = await answer(session, "GET", origin + "/metrics", headers=GOOD)
    assert status == 200 and b"runlog_" in body


async def test_a_websocket_upgrade_header_does_not_open_an_http_route(locked) -> None:
    """Only websocket routes skip the HTTP check (their handshake checks the token)."""
    session, api = locked.session, locked.base
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()}
    assert (await answer(session, "GET", api + "/admin/version", headers=upgrade))[0] == 401
    # A websocket route asked without an upgrade is an HTTP request like any other.
    assert (await answer(session, "GET", api + "/events/in"))[0] == 401


async def test_without_an_auth_string_nothing_asks_for_one(server) -> None:
    status, body, _ = await answer(server.session, "POST", server.base + "/flows/filter", json={})
    assert status == 200 and json.loads(body) == []


# -- the auth string on websockets -----------------------------------------------------------------


async def handshake(session, url: str, message: object, **kwargs) -> tuple[object, int | None, str | None]:
    """What the server answers a Prefect handshake with: its first message (or None), and the
    close code and reason if it closes."""
    async with session.ws_connect(url, protocols=("prefect",), **kwargs) as ws:
        await ws.send_json(message)
        first = await ws.receive(timeout=30)
        reply = json.loads(first.data) if first.type is aiohttp.WSMsgType.TEXT else None
        if reply == {"type": "auth_success"}:
            return reply, None, None
        closing = first if first.type is aiohttp.WSMsgType.CLOSE else await ws.receive(timeout=30)
        assert closing.type is aiohttp.WSMsgType.CLOSE, closing
        return reply, closing.data, closing.extra


async def test_the_events_websocket_takes_the_auth_string_as_its_handshake_token(locked) -> None:
    session = locked.session
    url = locked.base.replace("http", "ws", 1) + "/events/in"
    assert await handshake(session, url, {"type": "auth", "token": AUTH}) == ({"type": "auth_success"}, None, None)
    reply, code, reason = await handshake(session, url, {"type": "auth", "token": "admin:wrong"})
    assert reply == {"type": "auth_failure", "reason": "Invalid token"} and (code, reason) == (1008, "Invalid token")
    reply, code, reason = await handshake(session, url, {"type": "auth", "token": None})
    assert (code, reason) == (1008, "Auth required but no token provided")
    # Credentials on the upgrade (Prefect's events client sends them; so does a browser that
    # was given them) stand for the token.
    assert await handshake(session, url, {"type": "auth", "token": None}, headers=GOOD) == (
        {"type": "auth_success"}, None, None)
    reply, code, _ = await handshake(session, url, {"type": "auth", "token": None}, headers=basic("admin:no"))
    assert code == 1008


async def test_a_websocket_without_prefects_subprotocol_is_refused_when_an_auth_string_is_set(locked) -> None:
    url = locked.base.replace("http", "ws", 1) + "/events/out"
    async with locked.session.ws_connect(url) as ws:  # no subprotocol: Prefect's legacy mode
        closing = await ws.receive(timeout=30)
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.PROTOCOL_ERROR


async def test_the_worker_channel_takes_the_token_and_refuses_a_wrong_one_with_prefects_reason(locked) -> None:
    url = locked.base.replace("http", "ws", 1) + "/work_pools/pool/workers/connect"
    reply, code, reason = await handshake(locked.session, url, {"type": "auth", "token": "nope:nope"})
    assert (code, reason) == (1008, "authentication_failed")
    assert await handshake(locked.session, url, {"type": "auth", "token": AUTH}) == ({"type": "auth_success"}, None, None)


# -- CSRF ----------------------------------------------------------------------------------------


@pytest.fixture
def csrf_env(env) -> dict[str, str]:
    return {**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED": "true",
            "RUNLOG_SERVER_API_CSRF_TOKEN_EXPIRATION": "30m"}


async def test_with_csrf_disabled_the_token_endpoint_says_so_and_writes_need_none(server) -> None:
    status, body, _ = await answer(server.session, "GET", server.base + "/csrf-token?client=abc")
    assert status == 422 and json.loads(body) == {"detail": "CSRF protection is disabled."}
    assert (await answer(server.session, "POST", server.base + "/flows/", json={"name": "f"}))[0] == 201


async def test_with_csrf_enabled_writes_need_a_token_of_their_client_until_it_expires(csrf_env, clock) -> None:
    async with serve(csrf_env, clock=clock) as running:
        session, api = running.session, running.base
        client = str(uuid.uuid4())
        status, body, _ = await answer(session, "GET", api + f"/csrf-token?client={client}")
        assert status == 200
        token = json.loads(body)
        assert token["client"] == client and set(token) == {"id", "created", "updated", "token", "client", "expiration"}
        assert token["expiration"].startswith((START + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"))

        def headers(token_value: str | None = token["token"], client_id: str | None = client) -> dict[str, str]:
            found = {"Prefect-Csrf-Token": token_value, "Prefect-Csrf-Client": client_id}
            return {k: v for k, v in found.items() if v is not None}

        async def post(hdrs: dict[str, str], name: str = "f") -> tuple[int, object]:
            status, body, _ = await answer(session, "POST", api + "/flows/", json={"name": name}, headers=hdrs)
            return status, json.loads(body) if body else None

        assert await post({}) == (403, {"detail": "Missing CSRF token."})
        assert await post(headers(client_id=None)) == (403, {"detail": "Missing client identifier."})
        invalid = (403, {"detail": "Invalid CSRF token or client identifier."})
        assert await post(headers(client_id=str(uuid.uuid4()))) == invalid  # another client's
        assert await post(headers(token_value=token["token"][:-1] + "x")) == invalid
        assert await post(headers(token_value="garbage")) == invalid
        assert (await post(headers()))[0] == 201
        # Reads need no token.
        assert (await answer(session, "GET", api + "/admin/version"))[0] == 200

        # A second server process on the same database accepts the token the first issued.
        async with serve(csrf_env, clock=clock) as other:
            status, _, _ = await answer(other.session, "POST", other.base + "/flows/", json={"name": "g"},
                                        headers=headers())
            assert status == 201

        clock.advance(seconds=30 * 60 - 1)
        assert (await post(headers(), "h"))[0] == 201
        clock.advance(seconds=1)
        assert await post(headers(), "i") == invalid

        status, body, _ = await answer(session, "GET", api + "/csrf-token")
        assert status == 422 and "client" in json.loads(body)["detail"]


async def test_runlog_pages_refuse_writes_a_browser_says_come_from_another_site(server) -> None:
    origin = server.base.removesuffix("/api")
    url = origin + f"/runlog/actions/deliveries/{uuid.uuid4()}/retry"  # the notifications page's button
    refused = [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
    ]
    for headers in refused:
        status, body, _ = await answer(server.session, "POST", url, headers=headers)
        assert status == 403 and "cross-site" in json.loads(body)["detail"], headers
    host = origin.removeprefix("http://")
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": f"http://{host}"}, {}):
        status, _, _ = await answer(server.session, "POST", url, headers=headers)
        assert status == 404, headers  # past the check, to the handler: no such delivery


# -- headers and the banner ----------------------------------------------------------------------


async def test_pages_get_security_headers_and_the_api_gets_nosniff(server) -> None:
    origin = server.base.removesuffix("/api")
    for path in ("/runlog/", "/metrics"):
        _, _, headers = await answer(server.session, "GET", origin + path)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy
    _, _, headers = await answer(server.session, "GET", server.base + "/health")
    assert headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" not in headers
    # Prefect's UI (here its SPA fallback's page) may build functions at run time (pixi.js).
    _, _, headers = await answer(server.session, "GET", origin + "/dashboard", headers={"Accept": "text/html"})
    assert "script-src 'self' 'unsafe-eval';" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def test_the_policy_lets_the_ui_call_an_api_configured_on_another_origin() -> None:
    policy = content_security_policy("https://api.example.com:8443/api")
    (connect,) = [d for d in policy.split("; ") if d.startswith("connect-src")]
    assert connect == ("connect-src 'self' https://sr-client-cfg.amplitude.com https://api.example.com:8443 "
                       "wss://api.example.com:8443")
    assert "connect-src 'self' https://sr-client-cfg.amplitude.com;" in content_security_policy(None)


def test_the_policy_lets_the_ui_show_the_built_in_block_types_logos() -> None:
    (images,) = [d for d in content_security_policy(None).split("; ") if d.startswith("img-src")]
    assert images == "img-src 'self' data: blob: https://cdn.sanity.io https://raw.githubusercontent.com"


def test_the_banner_warns_about_all_interfaces_only_without_an_auth_string() -> None:
    assert NO_AUTH_WARNING in banner("0.0.0.0", 4200)
    assert "RUNLOG_SERVER_API_AUTH_STRING" in NO_AUTH_WARNING
    protected = banner("0.0.0.0", 4200, auth=True)
    assert NO_AUTH_WARNING not in protected and protected[-1] == AUTH_ON
    assert banner("127.0.0.1", 4200, auth=True)[-1] == AUTH_ON


def test_server_start_on_all_interfaces_with_an_auth_string_says_so_and_asks_for_it(tmp_path, sqlite_url) -> None:
    env = server_env(tmp_path, sqlite_url, RUNLOG_SERVER_API_AUTH_STRING=AUTH)
    with runlog_server(env, tmp_path / "server.log", "--host", "0.0.0.0") as running:
        lines = running.output().splitlines()
        assert httpx.get(running.url + "/health", timeout=30).status_code == 200
        refused = httpx.post(running.url + "/flows/filter", json={}, timeout=30)
        assert refused.status_code == 401 and refused.json() == UNAUTHORIZED
        allowed = httpx.post(running.url + "/flows/filter", json={}, headers=GOOD, timeout=30)
        assert allowed.status_code == 200
        assert running.stop() == 0
    assert AUTH_ON in lines and NO_AUTH_WARNING not in lines
    assert AUTH not in running.output() and "pässwörd" not in running.output()
