"""The server's edge checks: the optional auth string, CSRF tokens, and the pages' security headers.

- RUNLOG_SERVER_API_AUTH_STRING (``user:password``, as Prefect's PREFECT_SERVER_API_AUTH_STRING):
  every request to /api, /metrics and runlog's pages under /runlog must carry it as HTTP Basic
  credentials, compared in constant time; anything else gets Prefect's 401
  (``{"exception_message": "Unauthorized"}``) and nothing more. Left open, as Prefect leaves
  them: GET /api/health and /api/ready (probes), Prefect's UI bundle and its /ui-settings (the
  UI's login page reads ``auth`` there), and the upgrade of a websocket route, whose first
  message carries the token (Prefect's handshake, checked in routes/events.py).
- RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED: every POST, PUT, PATCH and DELETE under /api must
  carry a token from GET /api/csrf-token?client=ID in ``Prefect-Csrf-Token``, with the same ID in
  ``Prefect-Csrf-Client`` (Prefect's headers, answers and statuses; commands/csrf.py makes them).
  runlog's own pages are plain HTML forms: a write under /runlog is refused when the browser says
  it comes from another site (Sec-Fetch-Site, else Origin), whatever the setting.
- Security headers on every answer outside /api (the UI bundle, /runlog, /metrics): a
  Content-Security-Policy that allows what Prefect's UI bundles load and nothing from elsewhere
  (but block types' logos, from GitHub and Prefect's CDN),
  framing refused, no MIME sniffing, referrers kept to this origin. The API's answers get nosniff.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from runlog.commands import csrf
from runlog.schema.prefect_blocks import builtin_blocks

from . import keys
from .http import json_response

log = structlog.get_logger("runlog.api")

PROTECTED = ("/api", "/metrics", "/runlog")
"""Paths that need the auth string (when one is set); the UI's paths are outside them."""
OPEN_PROBES = frozenset({"/api/health", "/api/ready"})
"""GET paths left open for load balancers and orchestrators, as Prefect leaves them."""
BROWSER_PROMPT = ("/metrics", "/runlog")
"""Paths a person opens in a browser tab: their 401 asks the browser for a user and password.
Not /api: the UI answers its own 401s with its login page, which a browser prompt would preempt."""
AMPLITUDE_CONFIG = "https://sr-client-cfg.amplitude.com"
REALM = 'Basic realm="runlog", charset="UTF-8"'
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WEBSOCKET_ROUTE = "__runlog_websocket_route__"
"""Attribute set on a websocket route's handler: its upgrade is authenticated by the handshake."""


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def protected(path: str) -> bool:
    return any(under(path, prefix) for prefix in PROTECTED)


def mark_websocket_route(handler: Any) -> Any:
    setattr(handler, WEBSOCKET_ROUTE, True)
    return handler


# -- the auth string ---------------------------------------------------------------------------


def basic_credentials_match(header: str | None, expected: str) -> bool:
    """Whether an Authorization header carries EXPECTED as HTTP Basic credentials.

    The decoded credentials are compared with `same_secret`."""
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return same_secret(decoded, expected.encode())


def token_matches(token: object, expected: str) -> bool:
    """Whether a websocket auth message's token is the auth string (see `same_secret`)."""
    return isinstance(token, str) and same_secret(token.encode(), expected.encode())


def same_secret(given: bytes, expected: bytes) -> bool:
    """Whether GIVEN is EXPECTED, in a time that tells nothing about either: hmac.compare_digest
    takes as long wherever they differ, and comparing their SHA-256 digests (equal lengths) also
    keeps it from returning early on a length that differs."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


def _open_without_credentials(request: web.Request) -> bool:
    path = request.path
    match = request.match_info
    if match.http_exception is not None:
        # No route: the UI's (its bundle, index.html or a 404), unless under a protected prefix,
        # where a 404 or 405 would tell a stranger which routes exist.
        return not protected(path)
    if request.method in ("GET", "HEAD") and path in OPEN_PROBES:
        return True
    if getattr(match.handler, WEBSOCKET_ROUTE, False) and request.headers.get("Upgrade", "").lower() == "websocket":
        return True  # Prefect's clients authenticate in the first message (routes/events.py)
    return not protected(path)  # /docs, a redirect to /api/docs


def unauthorized(request: web.Request) -> web.Response:
    response = json_response({"exception_message": "Unauthorized"}, status=401)
    if any(under(request.path, prefix) for prefix in BROWSER_PROMPT):
        response.headers["WWW-Authenticate"] = REALM
    return response


def authentication(auth_string: str):  # type: ignore[no-untyped-def]
    """The check (api/middleware.py's ``edge``) that asks for the auth string; installed only
    when one is set."""

    async def require_auth_string(request: web.Request) -> web.StreamResponse | None:
        if _open_without_credentials(request) or basic_credentials_match(
            request.headers.get("Authorization"), auth_string
        ):
            return None
        # Which part was wrong (no header, another scheme, a wrong password) is not said, to the
        # client or in the log line: the request line already records the 401.
        return unauthorized(request)

    return require_auth_string


# -- CSRF --------------------------------------------------------------------------------------


def _forbidden(detail: str, **headers: str) -> web.Response:
    response = json_response({"detail": detail}, status=403)
    response.headers.update(headers)
    return response


def cross_site(request: web.Request) -> bool:
    """Whether the browser says this request comes from a page of another site.

    Sec-Fetch-Site when the browser sends it (all current ones do), else the Origin header's
    host against this request's; a request with neither is not a browser's cross-site one."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()


def csrf_protection(*, tokens: bool):  # type: ignore[no-untyped-def]
    """The check (api/middleware.py's ``edge``) that refuses forged writes: Prefect's tokens
    under /api when TOKENS (the setting), and cross-site writes to runlog's pages always."""

    async def refuse_forged_writes(request: web.Request) -> web.StreamResponse | None:
        if request.method not in UNSAFE_METHODS:
            return None
        if under(request.path, "/runlog") and cross_site(request):
            return _forbidden("cross-site request refused: runlog's pages accept writes from their own origin only")
        if tokens and under(request.path, "/api"):
            token = request.headers.get("Prefect-Csrf-Token")
            client = request.headers.get("Prefect-Csrf-Client")
            if token is None:
                return _forbidden("Missing CSRF token.")
            if client is None:
                return _forbidden("Missing client identifier.")
            key = await request.config_dict[keys.CSRF_KEYS].key(request.config_dict[keys.STORE])
            if not csrf.valid(key, client, token, request.config_dict[keys.CLOCK]()):
                # The Prefect client and UI look for "Invalid CSRF token" to fetch a new one and retry.
                return _forbidden("Invalid CSRF token or client identifier.", **{"Access-Control-Allow-Origin": "*"})
        return None

    return refuse_forged_writes


# -- security headers --------------------------------------------------------------------------


def block_logo_origins() -> list[str]:
    """Where Prefect's block types' logos are (GitHub's raw files, Prefect's CDN): the UI shows
    each block type's ``logo_url``, and the built-in ones (schema/prefect_blocks.json) are there."""
    origins = set()
    for block_type in builtin_blocks().types:
        if block_type.logo_url:
            parts = urlsplit(block_type.logo_url)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)


def content_security_policy(ui_api_url: str | None, *, eval_scripts: bool = False) -> str:
    """The pages' policy: everything from this origin, nothing from elsewhere but the configured
    API (RUNLOG_UI_API_URL), if the UI is told to call one on another origin.

    Prefect's bundles need inline styles (their components set style attributes), data: and
    blob: images and fonts, and workers from this origin; their scripts are files, no eval."""
    # The v2 bundle's analytics library fetches its session-replay configuration from this host
    # on every load, whatever the analytics setting (runlog's is off, so no event is sent: the
    # analytics hosts themselves stay blocked). Refusing it would put an error in the console.
    connect = ["'self'", AMPLITUDE_CONFIG]
    if ui_api_url:
        parts = urlsplit(ui_api_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        socket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        connect += [origin, socket]
    directives = {
        "default-src": ["'self'"],
        # Prefect's UI draws the flow run graph with pixi.js, which builds functions at run time:
        # its pages need 'unsafe-eval' (Prefect's own server sends no policy at all); runlog's do not.
        "script-src": ["'self'", "'unsafe-eval'"] if eval_scripts else ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:", *block_logo_origins()],
        "font-src": ["'self'", "data:"],
        "connect-src": connect,
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(settings):  # type: ignore[no-untyped-def]
    """An on_response_prepare hook: the headers above on every answer, errors and 304s included.

    Set only where the handler did not set its own, so a page that needs another policy says so."""
    page_headers = {
        "Content-Security-Policy": content_security_policy(settings.ui_api_url),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }
    ui_headers = {**page_headers,
                  "Content-Security-Policy": content_security_policy(settings.ui_api_url, eval_scripts=True)}

    async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if under(request.path, "/api"):
            return  # JSON for programs (and /api/docs, Swagger UI's page, with its inline script)
        ours = under(request.path, "/runlog") or under(request.path, "/metrics")
        for name, value in (page_headers if ours else ui_headers).items():
            headers.setdefault(name, value)

    return add_security_headers


__all__ = [
    "authentication", "basic_credentials_match", "content_security_policy", "csrf_protection",
    "mark_websocket_route", "security_headers", "token_matches", "unauthorized",
]
