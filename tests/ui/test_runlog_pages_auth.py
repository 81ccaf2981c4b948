"""runlog's own pages behind an auth string and CSRF protection, in headless Chromium: the browser
asks for the password (401 with WWW-Authenticate, nothing else shown), and once it has it the log
page follows new events over its websocket and the verify button's write gets its CSRF token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ..servers import runlog_server, server_env
from .conftest import Runlog

pytestmark = pytest.mark.slow

USER, PASSWORD = "pages-admin", "s3cret-Pages"


@pytest.fixture
def runlog(store_url: str, backend: str, tmp_path: Path):  # overrides conftest's: this server asks for a password
    env = server_env(tmp_path, store_url, RUNLOG_SERVER_API_AUTH_STRING=f"{USER}:{PASSWORD}",
                     RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED="true")
    with runlog_server(env, tmp_path / "server.log") as running:
        yield Runlog(running.url.removesuffix("/api"), {}, backend)
        assert running.stop() == 0, running.output()


def make_run(runlog: Runlog, name: str, states: list[str]) -> dict:
    with httpx.Client(base_url=runlog.api, auth=(USER, PASSWORD), timeout=30) as client:
        token = client.get("/csrf-token", params={"client": "pages-test"}).json()["token"]
        headers = {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": "pages-test"}
        flow = client.post("/flows/", json={"name": "guarded-etl"}, headers=headers).json()
        run = client.post("/flow_runs/", json={"flow_id": flow["id"], "name": name}, headers=headers).json()
        for state in states:
            answer = client.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": state}}, headers=headers)
            assert answer.json()["status"] == "ACCEPT", answer.text
    return run


def test_the_pages_ask_for_the_password_then_follow_the_log_and_verify_with_a_csrf_token(browser, runlog) -> None:
    refused = httpx.get(f"{runlog.origin}/runlog/log", timeout=30)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    assert "flow_run" not in refused.text
    wrong = httpx.get(f"{runlog.origin}/runlog/log", auth=(USER, "nope"), timeout=30)
    assert wrong.status_code == 401

    run = make_run(runlog, "guarded-heron", ["RUNNING", "COMPLETED"])
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
        page.goto(f"{runlog.origin}/runlog/log", wait_until="networkidle", timeout=60_000)
        assert page.locator(f"tr td.stream >> text=flow-run-{run['id']}").count() >= 2
        page.wait_for_selector("table#events[data-following=true]", timeout=30_000)  # its websocket got in
        later = make_run(runlog, "guarded-stork", ["RUNNING"])
        page.wait_for_selector(f"table#events tbody tr:first-child td.stream >> text=flow-run-{later['id']}",
                               timeout=30_000)

        page.goto(f"{runlog.origin}/runlog/projections", wait_until="networkidle", timeout=60_000)
        page.get_by_role("button", name="Verify projections").click()
        page.wait_for_function(
            "() => document.querySelector('#verify-result').innerText.includes('equals a rebuild')", timeout=120_000)
        # The first try of the write without a token is refused (403) and logged by the browser;
        # nothing else may be.
        assert [e for e in errors if "403" not in e] == [], errors
    finally:
        context.close()
