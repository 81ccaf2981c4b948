"""Prefect's web UI, served by runlog as Prefect 3.8.8's server serves it.

The ``prefect`` package (``pip install 'runlog[ui]'``) ships two static bundles: v1 in
``prefect/server/ui`` and v2 in ``prefect/server/ui-v2``. Their files hold a placeholder for the
path they are served under; a copy of each, with the placeholder replaced, is made under
``$RUNLOG_HOME/ui`` (once per prefect version and serve base: a marker file says which).

What a browser gets, as from Prefect's server:
- ``{base}/ui-settings``: the API URL the UI must call, whether it must log in (``auth``) and
  fetch CSRF tokens, and the UIs available.
- v2 under ``{base}/v2``, v1 under ``{base}``. An HTML navigation to ``{base}/`` is redirected to
  v2 unless the ``prefect_ui_version`` cookie asks for v1.
- A file of the bundle if there is one, else (for an HTML navigation only: the UI's client-side
  routes) the bundle's index.html; anything else is a 404.

It is a check inside the app's one middleware (api/middleware.py's ``edge``) that acts only on
requests no route matched and that are outside the paths runlog keeps for itself (/api,
/metrics, /runlog), so the UI can never shadow those. The bundle is
found without importing prefect (which takes seconds) and copied on the first request that needs
it, or by ``runlog server start`` before it serves, so apps that never serve a page pay nothing.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib.metadata
import importlib.util
import mimetypes
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import structlog
from aiohttp import web

log = structlog.get_logger("runlog.api")

UIVersion = Literal["v1", "v2"]
PLACEHOLDER = b"/PREFECT_UI_SERVE_BASE_REPLACE_PLACEHOLDER"
MARKER = "UI_SERVE_BASE"
"""The file in a prepared copy that names what it was made for (prefect version and base)."""
VERSION_COOKIE = "prefect_ui_version"
DEFAULT_UI: UIVersion = "v2"  # Prefect 3.8.8's server.ui.v2_enabled defaults to true
SOURCES: dict[UIVersion, tuple[str, ...]] = {"v1": ("server", "ui"), "v2": ("server", "ui-v2")}
RESERVED = ("/api", "/metrics", "/runlog")
"""runlog's own paths: never answered by the UI, whatever the serve base."""
INSTALL_HINT = "pip install 'runlog[ui]'"

# Compressing what is already compressed gains nothing; Starlette's GZipMiddleware, which Prefect
# uses, skips bodies under 500 bytes.
_GZIP_MIN_BYTES = 500
_INCOMPRESSIBLE = ("image/png", "image/jpeg", "image/gif", "image/webp", "font/woff", "font/woff2")


# -- paths -------------------------------------------------------------------------------------


def normalize_base(raw: str) -> str:
    """``/``, or a path with a leading and no trailing slash."""
    base = "/" + raw.strip().strip("/")
    return base


def base_urls(serve_base: str) -> tuple[str, str]:
    """(v1's base, v2's base) for RUNLOG_UI_SERVE_BASE, as Prefect derives them: v2 lives at
    ``{base}/v2``; a base that itself ends in /v2 names v2's, and v1's is its parent."""
    base = normalize_base(serve_base)
    if base == "/v2":
        return "/", base
    if base.endswith("/v2"):
        return base[: -len("/v2")] or "/", base
    return base, join(base, "v2")


def join(base: str, suffix: str) -> str:
    suffix = "/" + suffix.lstrip("/")
    return suffix if base == "/" else base + suffix


def under(path: str, base: str) -> str | None:
    """PATH relative to BASE (starting with /), or None when it is not under it."""
    if base == "/":
        return path or "/"
    if path == base or path.startswith(base + "/"):
        return path[len(base):] or "/"
    return None


def reserved(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RESERVED)


def is_html_navigation(request: web.Request) -> bool:
    """Whether a browser is loading a page (Prefect's test for its redirect)."""
    if request.method not in ("GET", "HEAD"):
        return False
    if request.headers.get("Sec-Fetch-Mode") == "navigate" or request.headers.get("Sec-Fetch-Dest") in (
        "document", "iframe",
    ):
        return True
    return "text/html" in request.headers.get("Accept", "").lower()


def accepts_html(request: web.Request) -> bool:
    """Whether the request accepts HTML (with a quality above 0): what earns index.html for a
    path that is not a file of the bundle (FastAPI's frontend fallback, which Prefect uses)."""
    for item in request.headers.get("Accept", "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() not in ("text/html", "application/xhtml+xml"):
            continue
        quality = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) != 0:
                return True
        except ValueError:
            return True
    return False


# -- the bundles -------------------------------------------------------------------------------


def prefect_package_dir() -> Path | None:
    """Where the installed prefect package is, found without importing it."""
    try:
        spec = importlib.util.find_spec("prefect")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def installed_sources() -> dict[UIVersion, Path]:
    """The bundles the installed prefect package ships (empty when it is not installed)."""
    package = prefect_package_dir()
    if package is None:
        return {}
    found: dict[UIVersion, Path] = {}
    for version, parts in SOURCES.items():
        path = package.joinpath(*parts)
        if (path / "index.html").is_file():
            found[version] = path
    return found


def _prefect_version() -> str:
    try:
        return importlib.metadata.version("prefect")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def prepare_copy(source: Path, target: Path, base: str, cache_key: str) -> None:
    """TARGET as a copy of SOURCE with the placeholder replaced for BASE, unless it already is.

    The copy is made beside TARGET and renamed into place, so a server process that finds
    TARGET never sees half a copy, and two processes preparing at once both end with a whole one.
    """
    marker = target / MARKER
    if marker.is_file() and marker.read_text() == cache_key:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        shutil.copytree(source, building, dirs_exist_ok=True)
        replacement = b"" if base == "/" else base.encode()
        for path in building.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if PLACEHOLDER in data:
                    path.write_bytes(data.replace(PLACEHOLDER, replacement))
        (building / MARKER).write_text(cache_key)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            target.rename(old / "copy")
        try:
            building.rename(target)
        except OSError:
            # Another process put its copy in place first; it is the same copy.
            if not (marker.is_file() and marker.read_text() == cache_key):
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(building, ignore_errors=True)


@dataclass
class Bundle:
    version: UIVersion
    base: str
    directory: Path


@dataclass
class PrefectUI:
    """The UI of one app: where each bundle's copy is and what is served from it."""

    home: Path
    serve_base: str
    api_url: str | None
    auth: bool = False
    """Whether the API asks for an auth string: the UI then shows its login page."""
    csrf_enabled: bool = False
    sources: dict[UIVersion, Path] = field(default_factory=installed_sources)
    bundles: dict[UIVersion, Bundle] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _files: dict[tuple[Path, bool], tuple[float, bytes]] = field(default_factory=dict)

    @property
    def v1_base(self) -> str:
        return base_urls(self.serve_base)[0]

    @property
    def v2_base(self) -> str:
        return base_urls(self.serve_base)[1]

    @property
    def installed(self) -> bool:
        return bool(self.sources)

    def prepare(self) -> dict[UIVersion, Bundle]:
        """Copy the bundles (if not copied already) and return them; blocking."""
        if self.bundles is None:
            prefect_version = _prefect_version()
            bundles: dict[UIVersion, Bundle] = {}
            for version, source in self.sources.items():
                base = self.v1_base if version == "v1" else self.v2_base
                target = self.home / "ui" / version
                try:
                    prepare_copy(source, target, base, f"{version}:{prefect_version}:{base}")
                except OSError as exc:
                    log.error("ui_copy_failed", version=version, directory=str(target), error=str(exc))
                    continue
                bundles[version] = Bundle(version, base, target)
            self.bundles = bundles
        return self.bundles

    async def ready(self) -> dict[UIVersion, Bundle]:
        if self.bundles is None:
            async with self._lock:
                if self.bundles is None:
                    await asyncio.to_thread(self.prepare)
        assert self.bundles is not None
        return self.bundles

    def default_ui(self, available: list[UIVersion]) -> UIVersion:
        return DEFAULT_UI if DEFAULT_UI in available or not available else available[0]

    def settings_body(self, request: web.Request, available: list[UIVersion]) -> dict[str, object]:
        # The API as the browser reaches this server (its Host header), unless configured:
        # Prefect's fixed default names port 4200 even when the server listens elsewhere.
        api_url = self.api_url or f"{request.scheme}://{request.host}/api"
        return {
            "api_url": api_url,
            "csrf_enabled": self.csrf_enabled,
            "auth": "BASIC" if self.auth else None,
            "flags": [],
            "default_ui": self.default_ui(available),
            "available_uis": available,
            "v1_base_url": self.v1_base if "v1" in available else None,
            "v2_base_url": self.v2_base if "v2" in available else None,
        }

    async def respond(self, request: web.Request) -> web.StreamResponse | None:
        """The UI's answer to REQUEST, or None when the path is not the UI's."""
        path = request.path
        if request.method not in ("GET", "HEAD"):
            return None
        if path == join(self.v1_base, "ui-settings"):
            bundles = await self.ready()
            available = [v for v in ("v1", "v2") if v in bundles]
            return web.json_response(self.settings_body(request, available), headers={"Cache-Control": "no-store"})
        bundles = await self.ready()
        if not bundles:
            return None
        available = [v for v in ("v1", "v2") if v in bundles]
        requested: UIVersion | None = None
        relative = under(path, self.v2_base)
        if relative is not None:
            requested = "v2"
        else:
            relative = under(path, self.v1_base)
            if relative is not None:
                requested = "v1"
        if requested is None or relative is None:
            return None
        if is_html_navigation(request) and (requested == "v2" and "v2" not in bundles or
                                            requested == "v1" and relative == "/"):
            # The neutral entry point (and a v2 path when only v1 is there) goes to the UI the
            # browser chose last (the cookie), else the default.
            cookie = request.cookies.get(VERSION_COOKIE)
            preferred: UIVersion = cookie if cookie in available else self.default_ui(available)  # type: ignore[assignment]
            if preferred != requested:
                target = bundles[preferred].base
                location = (target + "/" if relative == "/" and target != "/" else join(target, relative))
                if request.query_string:
                    location += "?" + request.query_string
                raise web.HTTPTemporaryRedirect(location)
        if requested not in bundles:
            return None
        return await self._file(request, bundles[requested], relative)

    async def _file(self, request: web.Request, bundle: Bundle, relative: str) -> web.StreamResponse | None:
        root = bundle.directory.resolve()
        candidate = (root / relative.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None  # ../ out of the bundle
        if candidate.is_dir():
            if not (candidate / "index.html").is_file():
                candidate = None  # type: ignore[assignment]
            elif not request.path.endswith("/"):
                location = request.path + "/" + ("?" + request.query_string if request.query_string else "")
                raise web.HTTPTemporaryRedirect(location)
            else:
                candidate = candidate / "index.html"
        if candidate is None or not candidate.is_file() or candidate.name == MARKER:
            if not accepts_html(request):
                return None
            candidate = root / "index.html"  # a client-side route
        return await self._send(request, candidate)

    async def _send(self, request: web.Request, path: Path) -> web.StreamResponse:
        stat = path.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Hashed file names under assets/ never change content; index.html names the current
        # ones, so a browser must ask again each time (it gets a 304 while nothing changed).
        cache = "public, max-age=31536000, immutable" if path.parent.name == "assets" else "no-cache"
        headers = {"ETag": etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
        if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
            return web.Response(status=304, headers=headers)
        wants_gzip = "gzip" in request.headers.get("Accept-Encoding", "").lower()
        compress = wants_gzip and stat.st_size >= _GZIP_MIN_BYTES and content_type not in _INCOMPRESSIBLE
        body = await self._read(path, stat.st_mtime_ns, compress)
        if compress:
            headers["Content-Encoding"] = "gzip"
        charset = "utf-8" if content_type.startswith("text/") or content_type in (
            "application/javascript", "application/json", "image/svg+xml") else None
        response = web.Response(body=body, content_type=content_type, charset=charset, headers=headers)
        return response

    async def _read(self, path: Path, mtime: float, compress: bool) -> bytes:
        """The file's bytes, gzipped if asked; kept in memory (a bundle is a few MB) while unchanged."""
        cached = self._files.get((path, compress))
        if cached is not None and cached[0] == mtime:
            return cached[1]

        def load() -> bytes:
            data = path.read_bytes()
            return gzip.compress(data, compresslevel=6, mtime=0) if compress else data

        body = await asyncio.to_thread(load)
        self._files[(path, compress)] = (mtime, body)
        return body


def create(settings) -> PrefectUI | None:  # type: ignore[no-untyped-def]
    """The app's UI, or None when RUNLOG_UI_ENABLED is false."""
    if not settings.ui_enabled:
        return None
    return PrefectUI(
        home=Path(settings.home), serve_base=settings.ui_serve_base, api_url=settings.ui_api_url,
        auth=settings.server_api_auth_string is not None, csrf_enabled=settings.server_api_csrf_protection_enabled,
    )


def fallback(ui: PrefectUI):  # type: ignore[no-untyped-def]
    """The check (api/middleware.py's ``edge``) that answers the requests no route matched with
    the UI, outside runlog's own paths: it cannot shadow a route."""

    async def serve_ui(request: web.Request) -> web.StreamResponse | None:
        if not isinstance(request.match_info.http_exception, web.HTTPNotFound) or reserved(request.path):
            return None
        return await ui.respond(request)  # None: not the UI's either, the handler's 404

    return serve_ui


def entry_path(settings) -> str | None:  # type: ignore[no-untyped-def]
    """The path that opens the dashboard (the serve base), or None when it is off or not installed."""
    if not settings.ui_enabled or not installed_sources():
        return None
    return normalize_base(settings.ui_serve_base)


def banner_line(settings, origin: str) -> str:  # type: ignore[no-untyped-def]
    """One line for `runlog server start`: where the dashboard is, or why there is none."""
    entry = entry_path(settings)
    if entry is not None:
        return f"Dashboard: {origin}{entry}"
    if not settings.ui_enabled:
        return "Dashboard: off (RUNLOG_UI_ENABLED=false)"
    return f"Dashboard: not installed; `{INSTALL_HINT}` adds Prefect's UI"

