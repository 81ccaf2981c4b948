"""Fixtures of the browser tests: ``runlog server start`` on each backend, with a Prefect client
environment pointed at it, and headless Chromium (Debian's ``chromium``, driven by Playwright for
Python through ``executable_path``: Playwright's own browser downloads are not used).

Each visit records what the page did: its console errors, the requests that failed or got a 4xx or
5xx, and every call to the API (method and path). A screenshot of each page goes to
``tests/ui/artifacts/`` (or ``RUNLOG_TEST_UI_ARTIFACTS``), which the test output names.

Without chromium or playwright the tests are skipped, except under CI=true, where they fail: CI
installs both (.ci/run), so a missing one there is a broken install, not a reason to skip.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ..conftest import new_pg_database
from ..servers import PREFECT_PYTHON, ROOT, prefect_client_env, run_flow, runlog_server, server_env, threaded_http

ARTIFACTS = Path(os.environ.get("RUNLOG_TEST_UI_ARTIFACTS") or Path(__file__).parent / "artifacts")

# The Python whose `prefect` makes the runs the pages show (the test extra's, as in tests/compat).

EXPECTED_FAILURES = {
    # Prefect 3.8.8's own server answers these 404 too: the bundles ask for them themselves.
    ("GET", "/favicon.ico"),
    ("GET", "/ico/undefined.svg"),
    # v2 sets its favicon to /<state type>.svg at the root, where v1 is served and has no such file
    # (Prefect's frontend fallback answers index.html to HTML navigations only).
    *(("GET", f"/{state}.svg") for state in (
        "completed", "failed", "running", "pending", "scheduled", "cancelled", "cancelling", "crashed", "paused",
    )),
}
"""(method, path) of requests that fail against Prefect's own server as well."""


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what}; CI installs it (.ci/run), so here it is an error, not a skip")
    pytest.skip(what)


def chromium_path() -> str:
    found = shutil.which("chromium") or next(
        (p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if os.access(p, os.X_OK)), None,
    )
    if found is None:
        _missing("no chromium (Debian: apt-get install chromium)")
    return found  # type: ignore[return-value]


@contextlib.contextmanager
def _chromium() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (it is in the test extra)")
    executable = chromium_path()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium refuses to sandbox as root, which CI runs as.
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(runlog: Runlog) -> Iterator[object]:
    """Chromium for one test. Started after the server and its database and stopped before them:
    while Playwright's synchronous API runs, this thread has a running event loop, in which the
    database fixtures' asyncio.run cannot run."""
    with _chromium() as browser:
        yield browser


@dataclass
class Runlog:
    """A running `runlog server start` and a Prefect client environment pointed at it."""

    origin: str  # http://127.0.0.1:PORT
    client_env: dict[str, str]
    backend: str

    @property
    def api(self) -> str:
        return f"{self.origin}/api"

    def run_flow(self, scenario: str) -> dict:
        """A flow of tests/compat/flows.py run by the Prefect client; its outcome (flow_run_id, state)."""
        return run_flow(self.client_env, scenario)

    def get(self, path: str) -> object:
        response = httpx.get(self.api + path, timeout=30)
        response.raise_for_status()
        return response.json()


@contextlib.contextmanager
def _served(store_url: str, backend: str, workdir: Path) -> Iterator[Runlog]:
    # With Prefect's built-in blocks, as a new server starts by default: the catalogue is full.
    env = server_env(workdir, store_url, RUNLOG_SERVER_BLOCKS_REGISTER_ON_START="true")
    with runlog_server(env, workdir / "server.log") as running:
        origin = running.url.removesuffix("/api")
        client_env = prefect_client_env(running.url, workdir / "prefect")
        yield Runlog(origin, client_env, backend)
        assert running.stop() == 0, running.output()


@pytest.fixture
def runlog(store_url: str, backend: str, tmp_path: Path) -> Iterator[Runlog]:
    with _served(store_url, backend, tmp_path) as served:
        yield served


@dataclass
class Hook:
    """A loopback HTTP receiver (the seed's Slack webhook block points at it): answers every POST
    200 "ok", as Slack does, and keeps the JSON bodies it got."""

    url: str = ""
    received: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def _hook() -> Iterator[Hook]:
    hook = Hook()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook.received.append(json.loads(body or b"null"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:  # quiet
            pass

    with threaded_http(Handler) as origin:
        hook.url = f"{origin}/services/T000/B000/UI"
        yield hook


@dataclass
class Seeded:
    """A server holding what tests/ui/seed.py made, and what it printed (ids and names); HOOK
    receives what the seed's notification block ``ui-alerts`` sends."""

    runlog: Runlog
    made: dict
    hook: Hook


def _seed(runlog: Runlog, hook: Hook) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.ui.seed"], cwd=ROOT, env=runlog.client_env | {"RUNLOG_TEST_UI_HOOK_URL": hook.url},
        capture_output=True, text=True, timeout=280,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the seed failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """One server per backend for a module's tests, seeded once by the stock Prefect client: the
    pages only read (a test that changes something changes what it made itself)."""
    workdir = tmp_path_factory.mktemp(f"ui-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{workdir}/runlog.db"
        else:
            url = stack.enter_context(new_pg_database(request.getfixturevalue("postgres_admin_url")))
        hook = stack.enter_context(_hook())
        runlog = stack.enter_context(_served(url, request.param, workdir))
        yield Seeded(runlog, _seed(runlog, hook), hook)


@pytest.fixture
def seeded_pages(seeded: Seeded, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """Pages of the seeded server, in a Chromium of their own (see `browser`)."""
    with _chromium() as browser:
        opened = Pages(browser, seeded.runlog, request)
        try:
            yield opened
        finally:
            opened.close()


def until(condition, what: str, timeout: float = 30.0, *, page=None):  # type: ignore[no-untyped-def]
    """Poll CONDITION until it returns something true (returned); fail after TIMEOUT seconds. With
    PAGE, the wait between polls is the page's, so that its events (responses, console lines)
    reach the visit's listeners meanwhile: a plain sleep lets none through."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"never saw {what}"
        if page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)  # poll interval


@dataclass
class Visit:
    """What one page did while it loaded."""

    page: object
    origin: str
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "METHOD path -> status" or "... -> reason"
    elsewhere: list[str] = field(default_factory=list)  # requests to other hosts, which need not work here
    api_calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path under /api)

    def unexpected_failures(self) -> list[str]:
        return [f for f in self.failed if tuple(f.split(" ")[:2]) not in EXPECTED_FAILURES]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def template(path: str) -> str:
    """An API path with its ids written {id}, so calls from different runs compare equal."""
    return _UUID.sub("{id}", path)


def _is_error(message) -> bool:  # type: ignore[no-untyped-def]
    """A console error, other than the browser's own line for a failed request: those are judged
    by the request (Visit.failed), against what Prefect's own server fails too."""
    return message.type == "error" and not message.text.startswith("Failed to load resource:")


def _slug(label: str) -> str:
    return re.sub(r"[^\w.-]+", "_", label).strip("_") or "root"


class Pages:
    """Opens pages of the served UI in a fresh browser context, recording each visit."""

    def __init__(self, browser, runlog: Runlog, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
        self.browser = browser
        self.runlog = runlog
        self.name = re.sub(r"[^\w.-]+", "_", request.node.name)
        self.contexts: list[object] = []
        self.visits: list[tuple[Visit, str]] = []

    def open(self, path: str, *, ui: str = "v2", wait_for: str | None = None, label: str = "") -> Visit:
        """Load PATH (the browser's choice of UI: UI, kept in Prefect's cookie), wait until the
        network is idle (and WAIT_FOR's text shows, if given), and screenshot it (also when it fails)."""
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        self.contexts.append(context)
        host = urlsplit(self.runlog.origin).hostname
        context.add_cookies([{"name": "prefect_ui_version", "value": ui, "domain": host, "path": "/"}])
        page = context.new_page()
        visit = Visit(page, self.runlog.origin)
        self.visits.append((visit, label or path))
        page.on("console", lambda m: visit.console_errors.append(m.text) if _is_error(m) else None)
        page.on("pageerror", lambda e: visit.console_errors.append(f"uncaught: {e}"))

        def failed(method: str, url: str, why: object) -> None:
            parts = urlsplit(url)
            if f"{parts.scheme}://{parts.netloc}" == self.runlog.origin:
                visit.failed.append(f"{method} {parts.path} -> {why}")
            else:
                visit.elsewhere.append(f"{method} {url} -> {why}")

        def finished(response) -> None:  # type: ignore[no-untyped-def]
            url = urlsplit(response.url)
            if f"{url.scheme}://{url.netloc}" == self.runlog.origin and url.path.startswith("/api/"):
                visit.api_calls.append((response.request.method, template(url.path[len("/api"):])))
            if response.status >= 400:
                failed(response.request.method, response.url, response.status)

        page.on("response", finished)
        page.on("requestfailed", lambda r: failed(r.method, r.url, r.failure))
        try:
            page.goto(self.runlog.origin + path, wait_until="networkidle", timeout=60_000)
            if wait_for is not None:
                # The page's text as shown, so "2 Completed" matches across "<b>2</b> Completed".
                page.wait_for_function("t => document.body.innerText.includes(t)", arg=wait_for, timeout=30_000)
                page.wait_for_load_state("networkidle")
        finally:  # what the page showed, also when it never showed what was waited for
            self.screenshot(visit, label or path)
        return visit

    def screenshot(self, visit: Visit, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{_slug(label)}.png"
        visit.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def record_calls(self, visit: Visit, label: str) -> Path:
        """The API calls VISIT made, as JSON in the artifacts folder (the endpoints a page needs)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{_slug(label)}-calls.json"
        path.write_text(json.dumps(sorted(set(visit.api_calls)), indent=1))
        return path

    def close(self) -> None:
        """Closes the pages, first writing the API calls of each visit, including those made by
        what the test did on the page after it loaded (the record of the endpoints the UI calls)."""
        for visit, label in self.visits:
            self.record_calls(visit, label)
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser, runlog: Runlog, request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages(browser, runlog, request)
    try:
        yield opened
    finally:
        opened.close()
