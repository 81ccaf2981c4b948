"""Prefect's web UI served by runlog, over a socket: /ui-settings, the v1/v2 choice, the bundle's
files with the base path put in, the SPA fallback, caching headers and gzip, and that the UI never
answers for /api, /metrics or /runlog. The browser's view of it is in tests/ui."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import aiohttp
import pytest

from runlog.api.prefect_ui import MARKER, PLACEHOLDER, installed_sources

from ..servers import runlog_server, serve, server_env
from .conftest import TIME_BASED_SERVICES_OFF

pytestmark = pytest.mark.skipif(
    not installed_sources(), reason="the prefect package (the test extra brings it) ships the UI's bundles",
)

PAGE = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
"""What a browser sends when it loads a page."""


def origin(server) -> str:  # type: ignore[no-untyped-def]
    return server.base.removesuffix("/api")


async def get(server, path: str, **kwargs) -> tuple[aiohttp.ClientResponse, bytes]:  # type: ignore[no-untyped-def]
    kwargs.setdefault("allow_redirects", False)
    async with server.session.get(origin(server) + path, **kwargs) as response:
        return response, await response.read()


def asset_of(index: bytes, prefix: str) -> str:
    """The path of the main script that INDEX loads, which starts with PREFIX."""
    found = re.search(rb'<script type="module" crossorigin src="([^"]+)"', index)
    assert found, index[:500]
    path = found[1].decode()
    assert path.startswith(prefix + "assets/"), path
    return path


async def test_ui_settings_name_the_api_the_browser_reached_and_both_uis(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env}) as server:
        response, body = await get(server, "/ui-settings")
        assert response.status == 200
        assert await response.json() == {
            "api_url": f"{server.base}",  # http://127.0.0.1:PORT/api: the address this request used
            "csrf_enabled": False,
            "auth": None,
            "flags": [],
            "default_ui": "v2",
            "available_uis": ["v1", "v2"],
            "v1_base_url": "/",
            "v2_base_url": "/v2",
        }


async def test_ui_settings_api_url_is_the_configured_one(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_UI_API_URL": "https://runlog.example/api"}) as server:
        response, _ = await get(server, "/ui-settings")
        assert (await response.json())["api_url"] == "https://runlog.example/api"


async def test_root_redirects_a_browser_to_v2_unless_the_cookie_asks_for_v1(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env}) as server:
        response, _ = await get(server, "/?x=1", headers=PAGE)
        assert (response.status, response.headers["Location"]) == (307, "/v2/?x=1")

        response, body = await get(server, "/", headers={**PAGE, "Cookie": "prefect_ui_version=v1"})
        assert response.status == 200 and response.content_type == "text/html"
        asset_of(body, "/")  # v1's index.html, its placeholder replaced by the empty base
        assert PLACEHOLDER not in body

        response, body = await get(server, "/v2/", headers=PAGE)
        assert response.status == 200
        asset_of(body, "/v2/")
        assert PLACEHOLDER not in body


async def test_client_side_routes_get_their_bundles_index_and_other_misses_a_404(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env}) as server:
        _, v2_index = await get(server, "/v2/", headers=PAGE)
        response, body = await get(server, "/v2/runs/flow-run/0b9a0a54-7d1b-4d44-9a4a-1b6c8c1f8e42", headers=PAGE)
        assert (response.status, body) == (200, v2_index)

        # A v1 route is served as v1 directly, whatever the default (as Prefect does).
        response, body = await get(server, "/runs", headers=PAGE)
        assert response.status == 200
        asset_of(body, "/")

        # Not a page load (a script asking for a file that is not there): 404, not index.html.
        response, body = await get(server, "/v2/assets/no-such-file.js", headers={"Accept": "*/*"})
        assert response.status == 404


async def test_assets_have_caching_headers_gzip_and_answer_304_when_unchanged(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env}) as server:
        _, index = await get(server, "/v2/", headers=PAGE)
        script = asset_of(index, "/v2/")
        response, plain = await get(server, script, headers={"Accept-Encoding": "identity"}, auto_decompress=False)
        assert response.status == 200
        assert response.content_type in ("application/javascript", "text/javascript")
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Content-Encoding" not in response.headers
        etag = response.headers["ETag"]

        response, packed = await get(server, script, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        assert response.headers["Content-Encoding"] == "gzip"
        assert len(packed) < len(plain) and gzip.decompress(packed) == plain

        response, body = await get(server, script, headers={"If-None-Match": etag})
        assert (response.status, body) == (304, b"")

        response, _ = await get(server, "/v2/", headers=PAGE)
        assert response.headers["Cache-Control"] == "no-cache"  # it names the current assets


async def test_the_ui_never_answers_for_runlogs_own_paths(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_METRICS_ENABLED": "false"}) as server:
        for path in ("/api/no-such-route", "/api", "/metrics", "/runlog/no-such-page", "/runlog/log/nothing"):
            response, body = await get(server, path, headers=PAGE)
            assert response.status == 404, path
            assert response.content_type == "application/json" and b"detail" in body, path
        response, body = await get(server, "/api/health", headers=PAGE)
        assert (response.status, body) == (200, b"true")


async def test_ui_enabled_false_serves_no_page(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_UI_ENABLED": "false"}) as server:
        for path in ("/", "/ui-settings", "/v2/", "/runs"):
            response, _ = await get(server, path, headers=PAGE)
            assert response.status == 404, path
        assert not (Path(env["RUNLOG_HOME"]) / "ui").exists()


async def test_serve_base_moves_the_ui_and_its_copy_is_made_for_it(env) -> None:
    async with serve({**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_UI_SERVE_BASE": "/prefect/"}) as server:
        response, _ = await get(server, "/prefect", headers=PAGE)
        assert (response.status, response.headers["Location"]) == (307, "/prefect/v2/")
        response, settings = await get(server, "/prefect/ui-settings")
        assert (await response.json())["v1_base_url"] == "/prefect"
        assert (await response.json())["v2_base_url"] == "/prefect/v2"
        response, body = await get(server, "/prefect/v2/", headers=PAGE)
        script = asset_of(body, "/prefect/v2/")
        response, _ = await get(server, script)
        assert response.status == 200
        response, _ = await get(server, "/", headers=PAGE)
        assert response.status == 404  # outside the base
    copy = Path(env["RUNLOG_HOME"]) / "ui" / "v2"
    assert (copy / MARKER).read_text().endswith(":/prefect/v2")
    assert b"/prefect/v2/assets/" in (copy / "index.html").read_bytes()


@pytest.mark.slow
def test_server_start_banner_says_where_the_dashboard_is(tmp_path, store_url) -> None:
    env = server_env(tmp_path, store_url)
    with runlog_server(env, tmp_path / "server.log") as running:
        assert f"Dashboard: http://127.0.0.1:{running.port}/\n" in running.output()
        assert (tmp_path / "runlog" / "ui" / "v2" / MARKER).is_file()  # copied before serving


@pytest.mark.slow
def test_server_start_banner_says_how_to_install_the_ui_when_it_is_missing(tmp_path, store_url) -> None:
    # A prefect package without the UI's bundles, found first on the path.
    fake = tmp_path / "site" / "prefect"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = server_env(tmp_path, store_url, PYTHONPATH=str(tmp_path / "site"))
    with runlog_server(env, tmp_path / "server.log") as running:
        assert "Dashboard: not installed; `pip install 'runlog[ui]'` adds Prefect's UI\n" in running.output()


async def test_admin_settings_tell_the_ui_that_analytics_are_off(env) -> None:
    # Without server.analytics_enabled the v2 UI assumes true and posts usage events from the
    # browser to Prefect's analytics service.
    async with serve({**TIME_BASED_SERVICES_OFF, **env}) as server:
        status, body = await server.request("GET", "/admin/settings")
        assert status == 200 and body["server"] == {"analytics_enabled": False}  # type: ignore[index]


def test_the_banner_line_names_the_serve_base_or_says_the_ui_is_off(tmp_path) -> None:
    from runlog.api.prefect_ui import banner_line
    from runlog.api.settings import load_settings

    home = {"RUNLOG_HOME": str(tmp_path)}
    assert banner_line(load_settings(env=home), "http://127.0.0.1:4200") == "Dashboard: http://127.0.0.1:4200/"
    moved = load_settings(env=home | {"RUNLOG_UI_SERVE_BASE": "prefect/"})
    assert banner_line(moved, "http://127.0.0.1:4200") == "Dashboard: http://127.0.0.1:4200/prefect"
    off = load_settings(env=home | {"RUNLOG_UI_ENABLED": "false"})
    assert banner_line(off, "http://127.0.0.1:4200") == "Dashboard: off (RUNLOG_UI_ENABLED=false)"


async def test_runlogs_pages_link_the_dashboard_at_its_serve_base_and_not_when_it_is_off(env) -> None:
    link = re.compile(r'<a href="([^"]*)">Prefect UI</a>')
    for extra, expected in (({}, ["/"]), ({"RUNLOG_UI_SERVE_BASE": "/prefect/"}, ["/prefect"]),
                            ({"RUNLOG_UI_ENABLED": "false"}, [])):
        async with serve({**TIME_BASED_SERVICES_OFF, **env, **extra}) as server:
            for path in ("/runlog/", "/runlog/log", "/runlog/projections"):
                response, body = await get(server, path, headers=PAGE)
                assert response.status == 200, path
                assert link.findall(body.decode()) == expected, (extra, path)
            for target in expected:  # where the link leads: the UI (a redirect to v2 at first)
                response, _ = await get(server, target, headers=PAGE)
                assert response.status == 307 and response.headers["Location"] == target.rstrip("/") + "/v2/"
