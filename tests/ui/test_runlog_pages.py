"""runlog's own pages (/runlog/...) in headless Chromium against `runlog server start`, on both
backends: each page loads with data and without an error, the log follows new events live, the
time-travel slider moves a run back to an earlier state, a dead letter retried from the page
reaches a loopback receiver, and the verify button reports the projections equal to the log.

The log page's screenshot (``runlog-log-page.png`` in the artifacts folder) is the README's
docs/log-page.png."""

from __future__ import annotations

import http.server
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from runlog.notifier import rules

from ..servers import runlog_server, server_env, threaded_http
from .conftest import ARTIFACTS, Runlog

pytestmark = pytest.mark.slow

MAX_AGE_SECONDS = 6
"""RUNLOG_NOTIFIER_MAX_AGE of the served runlog: a delivery not sent within it is a dead letter."""
BACKOFF_SECONDS = 2 * MAX_AGE_SECONDS
"""RUNLOG_NOTIFIER_RETRY_BACKOFF: a first retry waits half to all of it, so a delivery whose first
attempt failed is past its maximum age when next due, and dead-lettered, never attempted twice."""


@pytest.fixture
def runlog(store_url: str, backend: str, tmp_path: Path) -> Iterator[Runlog]:
    """As tests/ui/conftest.py's, with the notifier's timings above."""
    env = server_env(tmp_path, store_url, RUNLOG_NOTIFIER_MAX_AGE=f"{MAX_AGE_SECONDS}s",
                     RUNLOG_NOTIFIER_RETRY_BACKOFF=f"{BACKOFF_SECONDS}s")
    with runlog_server(env, tmp_path / "server.log") as running:
        origin = running.url.removesuffix("/api")
        yield Runlog(origin, {"PREFECT_API_URL": running.url}, backend)
        banner = running.output()
        assert running.stop() == 0, running.output()
    # `runlog server start` names the pages in its banner.
    assert f"{origin}/runlog/" in banner.replace("localhost", "127.0.0.1"), banner


def call(runlog: Runlog, method: str, path: str, body: object = None) -> object:
    response = httpx.request(method, runlog.api + path, json=body, timeout=30)
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def make_run(runlog: Runlog, name: str, states: list[str]) -> dict:
    flow = call(runlog, "POST", "/flows/", {"name": "pages-etl"})
    run = call(runlog, "POST", "/flow_runs/", {"flow_id": flow["id"], "name": name})  # type: ignore[index]
    for state in states:
        answer = call(runlog, "POST", f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}})  # type: ignore[index]
        assert answer["status"] == "ACCEPT", answer  # type: ignore[index]
    return run  # type: ignore[return-value]


def assert_clean(visit) -> None:  # type: ignore[no-untyped-def]
    assert visit.unexpected_failures() == [], (visit.failed, visit.elsewhere)
    assert visit.console_errors == [], visit.console_errors


def wait_for(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not hold within {timeout} s"
        time.sleep(0.1)  # poll interval


def test_the_index_and_the_log_show_the_runs_events_and_follow_new_ones(pages, runlog) -> None:
    run = make_run(runlog, "steady-lark", ["RUNNING", "COMPLETED"])
    visit = pages.open("/runlog/", wait_for="steady-lark", label="runlog-index")
    assert_clean(visit)

    visit = pages.open("/runlog/log", wait_for="flow_run.state_changed", label="runlog-log")
    page = visit.page
    assert page.locator(f"tr td.stream >> text=flow-run-{run['id']}").count() >= 2
    page.wait_for_selector("table#events[data-following=true]", timeout=30_000)  # the websocket is open

    # An event's payload, as JSON, opens from its summary (a <details>: keyboard and click alike).
    top = page.locator("table#events tbody tr").first
    top.locator("summary").click()
    assert f'"flow_run_id": "{run["id"]}"' in top.locator("pre").inner_text()

    later = make_run(runlog, "late-finch", ["RUNNING"])
    page.wait_for_selector(f"table#events tbody tr:first-child td.stream >> text=flow-run-{later['id']}", timeout=30_000)
    assert "→ Running" in page.locator("table#events tbody tr").first.inner_text()
    # The README's picture of the page: a phone-narrow width would hide less, a wide one reads better.
    page.set_viewport_size({"width": 1200, "height": 720})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "runlog-log-page.png"))
    print(f"screenshot: {ARTIFACTS / 'runlog-log-page.png'}")

    # The filters by their labels, from the keyboard: type a stream, Enter submits.
    page.get_by_label("Stream").fill(f"flow-run-{run['id']}")
    page.get_by_label("Stream").press("Enter")
    page.wait_for_url(f"**/runlog/log?stream=flow-run-{run['id']}*", timeout=30_000)
    streams = page.locator("table#events td.stream a.stream-id").all_inner_texts()
    assert streams and set(streams) == {f"flow-run-{run['id']}"}
    page.get_by_label("Type").fill("flow_run.created")
    page.get_by_label("Type").press("Enter")
    page.wait_for_url("**type=flow_run.created*", timeout=30_000)
    assert page.locator("table#events tbody tr").count() == 1  # the run's creation, nothing else
    assert_clean(visit)


def test_the_slider_moves_a_run_back_to_an_earlier_state(pages, runlog) -> None:
    run = make_run(runlog, "brave-wren", ["RUNNING", "COMPLETED"])
    path = f"/runlog/time-travel/flow-run/{run['id']}"
    visit = pages.open(path, wait_for="brave-wren", label="runlog-time-travel-now")
    page = visit.page
    assert page.locator("#view-state").inner_text() == "Completed"

    slider = page.locator("#position-slider")
    slider.focus()
    page.keyboard.press("Home")  # the first event of the run: its creation
    page.wait_for_function("() => document.querySelector('#view-state').innerText !== 'Completed'", timeout=30_000)
    # Its creation: no state yet (the Pending state is the stream's next event).
    assert page.locator("#view-state").inner_text() in ("no state yet", "Pending")
    assert page.locator("#view-run-count").inner_text() == "0"
    first = int(page.locator("#at-position").inner_text())
    assert page.url.endswith(f"?at={first}")

    seen = []
    for _ in range(3):  # forward, event by event, until Running
        shown = page.locator("#at-position").inner_text()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("p => document.querySelector('#at-position').innerText !== p", arg=shown, timeout=30_000)
        seen.append(page.locator("#view-state").inner_text())
        if seen[-1] == "Running":
            break
    assert seen[-1] == "Running" and "Completed" not in seen, seen
    assert page.locator("#view-run-count").inner_text() == "1"
    pages.screenshot(visit, "runlog-time-travel-running")
    assert_clean(visit)


def fact(page, name: str) -> str:  # type: ignore[no-untyped-def]
    """The value shown beside NAME in the moment's facts (a <dt>/<dd> list)."""
    return page.locator(f"xpath=//section[@class='moment']//dt[.='{name}']/following-sibling::dd[1]").inner_text()


def home_of_slider(page) -> None:  # type: ignore[no-untyped-def]
    """Moves the slider to the stream's first event, from the keyboard, and waits for its view."""
    shown = page.locator("#at-position").inner_text()
    page.locator("#position-slider").focus()
    page.keyboard.press("Home")
    page.wait_for_function("p => document.querySelector('#at-position').innerText !== p", arg=shown, timeout=30_000)


def test_the_slider_moves_a_work_pool_and_a_concurrency_limit_back(pages, runlog) -> None:
    call(runlog, "POST", "/work_pools/", {"name": "tt-pool", "type": "process"})
    call(runlog, "PATCH", "/work_pools/tt-pool", {"is_paused": True})
    visit = pages.open("/runlog/time-travel/work-pool/tt-pool", wait_for="tt-pool", label="runlog-time-travel-pool")
    page = visit.page
    assert fact(page, "Paused") == "yes" and fact(page, "Type") == "process"
    assert "default" in page.locator("#moment table").first.inner_text()  # its default queue
    home_of_slider(page)
    assert fact(page, "Paused") == "no"  # as it was made
    pages.screenshot(visit, "runlog-time-travel-pool-made")
    assert_clean(visit)

    made = call(runlog, "POST", "/v2/concurrency_limits/", {"name": "tt-limit", "limit": 2})
    call(runlog, "POST", "/v2/concurrency_limits/increment-with-lease",
         {"names": ["tt-limit"], "slots": 1, "mode": "concurrency", "lease_duration": 300})
    visit = pages.open(f"/runlog/time-travel/concurrency-limit/{made['id']}", wait_for="tt-limit",  # type: ignore[index]
                       label="runlog-time-travel-limit")
    page = visit.page
    assert page.locator("#view-slots").inner_text() == "1" and fact(page, "Limit") == "2 slots"
    assert page.locator("#moment table").count() == 1  # the lease
    home_of_slider(page)
    assert page.locator("#view-slots").inner_text() == "0"
    assert "No leases held." in page.locator("#moment").inner_text()
    pages.screenshot(visit, "runlog-time-travel-limit-made")
    assert_clean(visit)


@dataclass
class Receiver:
    """A loopback HTTP receiver: 500 to the first request, 200 "ok" (Slack's success) after."""

    url: str = ""
    answered: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = 500 if not got.answered else 200
            got.answered.append(status)
            body = b"ok" if status == 200 else b"upstream broke"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    with threaded_http(Handler) as origin:
        got.url = f"{origin}/hook"
        yield got


def slack_channel(runlog: Runlog, name: str, url: str) -> str:
    """A Slack webhook block document (a notification channel) pointed at URL."""
    response = httpx.post(runlog.api + "/block_types/", json={"name": "Slack Webhook", "slug": "slack-webhook"}, timeout=30)
    block_type = response.json() if response.status_code == 201 else call(runlog, "GET", "/block_types/slug/slack-webhook")
    schema = call(runlog, "POST", "/block_schemas/", {
        "block_type_id": block_type["id"], "capabilities": ["notify"], "version": "3.8.8",  # type: ignore[index]
        "fields": {"title": "SlackWebhook", "type": "object", "properties": {"url": {"type": "string"}},
                   "secret_fields": ["url"], "block_schema_references": {}},
    })
    document = call(runlog, "POST", "/block_documents/", {
        "name": name, "block_type_id": block_type["id"], "block_schema_id": schema["id"], "data": {"url": url},  # type: ignore[index]
    })
    return document["id"]  # type: ignore[index]


def test_a_dead_letter_retried_from_the_page_is_delivered(pages, runlog, receiver) -> None:
    channel = slack_channel(runlog, "ops-hook", receiver.url)
    rule = rules.Rule(name="pages failures", channel_id=uuid.UUID(channel), states=["Failed"])
    call(runlog, "POST", "/automations/", rules.definition_of(rule))
    make_run(runlog, "fallen-kite", ["RUNNING", "FAILED"])

    def dead() -> list:
        return call(runlog, "GET", "/runlog/deliveries?status=dead")  # type: ignore[return-value]

    wait_for(lambda: dead(), "the delivery answered 500 dead-lettered", timeout=120)
    (delivery,) = dead()
    assert receiver.answered == [500] and delivery["last_status_code"] == 500

    visit = pages.open("/runlog/notifications", wait_for="pages failures", label="runlog-notifications-dead")
    page = visit.page
    row = page.locator(f"#delivery-{delivery['id']}")
    assert row.locator(".delivery-status").inner_text() == "dead"
    assert "ops-hook" in page.locator("#channels").inner_text()
    button = row.get_by_role("button", name="Retry now")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "id => document.querySelector(`#delivery-${id} .delivery-status`).innerText === 'sent'",
        arg=delivery["id"], timeout=60_000,
    )
    assert receiver.answered == [500, 200]
    assert row.locator(".delivery-code").inner_text() == "200"
    assert call(runlog, "GET", f"/runlog/deliveries/{delivery['id']}")["status"] == "sent"  # type: ignore[index]
    pages.screenshot(visit, "runlog-notifications-sent")
    assert_clean(visit)


def test_the_projections_page_verifies_them_against_the_log(pages, runlog) -> None:
    make_run(runlog, "quiet-owl", ["RUNNING", "COMPLETED"])
    visit = pages.open("/runlog/projections", wait_for="runs", label="runlog-projections")
    page = visit.page
    page.get_by_role("button", name="Verify projections").click()
    page.wait_for_function("() => document.querySelector('#verify-result').innerText.includes('equals a rebuild')",
                           timeout=120_000)
    assert "flow_runs: equal" in page.locator("#verify-result").inner_text()
    pages.screenshot(visit, "runlog-projections-verified")
    assert_clean(visit)


def test_the_pages_read_on_a_phone(browser, runlog) -> None:
    """At a phone's width no page needs sideways scrolling of the page itself (wide tables
    scroll inside their own box)."""
    run = make_run(runlog, "small-screen", ["RUNNING"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        for name, path in (("index", "/runlog/"), ("log", "/runlog/log"), ("notifications", "/runlog/notifications"),
                           ("projections", "/runlog/projections"),
                           ("time-travel", f"/runlog/time-travel/flow-run/{run['id']}")):
            page.goto(runlog.origin + path, wait_until="networkidle", timeout=60_000)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"runlog-{name}-phone-{runlog.backend}.png"))
    finally:
        context.close()
