"""Prefect's UI against a runlog with an auth string and CSRF protection, in headless Chromium:
/ui-settings says ``auth: BASIC``, so the UI shows its login page; a wrong password is refused, the
auth string logs in, and from then on every API call (writes with a CSRF token the UI fetched)
succeeds and the run the client made shows. Nothing the pages load breaks the security headers'
Content-Security-Policy (a violation is a console error).

Before the login, the UI's first calls get 401s and it logs errors about them: Prefect 3.8.8's own
server, with an auth string, answers and logs the same. The checks start at the login.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ..servers import prefect_client_env, runlog_server, server_env
from .conftest import EXPECTED_FAILURES, Runlog, until

pytestmark = pytest.mark.slow

AUTH = "ui-user:Corr3ct-horse"


@pytest.fixture
def runlog(store_url: str, backend: str, tmp_path: Path):  # overrides conftest's: this server asks for AUTH
    env = server_env(tmp_path, store_url, RUNLOG_SERVER_API_AUTH_STRING=AUTH,
                     RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED="true")
    with runlog_server(env, tmp_path / "server.log") as running:
        client_env = prefect_client_env(running.url, tmp_path / "prefect", PREFECT_API_AUTH_STRING=AUTH)
        yield Runlog(running.url.removesuffix("/api"), client_env, backend)
        assert running.stop() == 0, running.output()


def flow_run_name(runlog: Runlog, run_id: str) -> str:
    response = httpx.get(f"{runlog.api}/flow_runs/{run_id}", auth=tuple(AUTH.split(":", 1)), timeout=30)  # type: ignore[arg-type]
    response.raise_for_status()
    return response.json()["name"]


def csp_violations(visit) -> list[str]:  # type: ignore[no-untyped-def]
    return [e for e in visit.console_errors if "Content Security Policy" in e]


def log_in(visit, password: str) -> None:  # type: ignore[no-untyped-def]
    page = visit.page
    page.locator("input[type=password]").fill(password)
    page.locator("button[type=submit]").click()


@pytest.mark.parametrize("ui, runs_path", [("v2", "/v2/runs"), ("v1", "/runs")])
def test_the_ui_logs_in_with_the_auth_string_and_then_shows_the_run(pages, runlog, ui: str, runs_path: str) -> None:
    settings = httpx.get(f"{runlog.origin}/ui-settings", timeout=30).json()  # open, as Prefect's
    assert settings["auth"] == "BASIC" and settings["csrf_enabled"] is True
    outcome = runlog.run_flow("two_tasks")
    name = flow_run_name(runlog, outcome["flow_run_id"])

    visit = pages.open("/", ui=ui, label=f"{ui}-login")
    page = visit.page
    page.locator("input[type=password]").wait_for(timeout=60_000)
    assert not csp_violations(visit), visit.console_errors

    refused_from = len(visit.failed)
    log_in(visit, "ui-user:wrong")
    page.wait_for_function("t => document.body.innerText.includes(t)",
                           arg="Invalid credentials" if ui == "v2" else "Authentication failed", timeout=30_000)
    # The refusal is a 401. Playwright may report that response after the page has shown the
    # refusal: the count below starts once it is recorded, or it would count as the login's.
    until(lambda: any(f.endswith(" -> 401") for f in visit.failed[refused_from:]), "the refused login's 401",
          page=page)
    assert page.evaluate("localStorage.getItem('prefect-password')") is None
    pages.screenshot(visit, f"{ui}-login-refused")

    before = (len(visit.failed), len(visit.console_errors), len(visit.api_calls))
    log_in(visit, AUTH)
    page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.goto(runlog.origin + runs_path, wait_until="networkidle", timeout=60_000)
    page.wait_for_function("t => document.body.innerText.includes(t)", arg=name, timeout=60_000)
    pages.screenshot(visit, f"{ui}-logged-in-runs")

    failed, errors, calls = (visit.failed[before[0]:], visit.console_errors[before[1]:], visit.api_calls[before[2]:])
    # A request the browser itself cancelled, as the test moved to the runs page, failed nowhere.
    failed = [f for f in failed if not f.endswith("net::ERR_ABORTED")]
    assert [f for f in failed if tuple(f.split(" ")[:2]) not in EXPECTED_FAILURES] == []
    assert errors == [], errors
    assert any(method == "POST" for method, _ in calls), calls  # writes went through, CSRF token and all
    assert ("GET", "/csrf-token") in calls, calls
    assert not csp_violations(visit), visit.console_errors
