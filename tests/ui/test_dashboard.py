"""Prefect's web UI, as runlog serves it, in headless Chromium: the dashboard of both UIs shows a
run the Prefect client made, calling runlog's API without an error, and the run's name shows on
the runs page."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.slow


def assert_clean(visit) -> None:  # type: ignore[no-untyped-def]
    # Requests first: a failed one is usually what the page then logs an error about.
    assert visit.unexpected_failures() == [], (visit.failed, visit.elsewhere)
    assert visit.console_errors == [], visit.console_errors


def around(run: dict) -> str:
    """The v2 dashboard's query string for the two hours around RUN's expected start. Its default
    span, the past day, ends at the start of the current minute: a run made in this minute, like
    the test's, is not in it (Prefect's own server shows the same)."""
    start = datetime.fromisoformat(run["expected_start_time"])
    return urlencode({
        "rangeType": "range",
        "start": (start - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    })


def test_the_v2_dashboard_loads_at_the_root_and_asks_runlogs_api(pages, runlog) -> None:
    # An empty server: the dashboard asks for one run, gets none, and says how to start.
    visit = pages.open("/", ui="v2", wait_for="Run a task or flow to get started", label="v2-dashboard-empty")
    assert visit.page.url.startswith(f"{runlog.origin}/v2/dashboard"), visit.page.url  # / leads to v2
    assert ("GET", "/admin/settings") in visit.api_calls and ("POST", "/flow_runs/filter") in visit.api_calls
    assert_clean(visit)


def test_the_v2_dashboard_shows_runlogs_runs_and_sends_no_analytics(pages, runlog) -> None:
    outcome = runlog.run_flow("two_tasks")
    run = runlog.get(f"/flow_runs/{outcome['flow_run_id']}")
    visit = pages.open(f"/v2/dashboard?{around(run)}", ui="v2", wait_for="1 total", label="v2-dashboard")  # type: ignore[arg-type]
    assert "2\nCompleted" in visit.page.evaluate("document.body.innerText")  # its two task runs
    assert ("POST", "/flow_runs/filter") in visit.api_calls, visit.api_calls
    assert ("POST", "/task_runs/count") in visit.api_calls, visit.api_calls
    # /admin/settings says analytics are off, so the bundle posts no usage events to Prefect's
    # analytics service (it still asks that service for its configuration: requests elsewhere
    # fail here, with no internet, and are not runlog's).
    assert not [r for r in visit.elsewhere if r.startswith("POST ")], visit.elsewhere
    pages.record_calls(visit, "v2-dashboard")
    assert_clean(visit)


def test_the_v1_dashboard_shows_runlogs_runs(pages, runlog) -> None:
    runlog.run_flow("two_tasks")
    visit = pages.open("/dashboard", ui="v1", wait_for="compat-two-tasks", label="v1-dashboard")
    assert visit.page.url == f"{runlog.origin}/dashboard"
    assert ("GET", "/admin/settings") in visit.api_calls, visit.api_calls  # every v1 page asks it
    assert ("POST", "/flows/paginate") in visit.api_calls, visit.api_calls
    pages.record_calls(visit, "v1-dashboard")
    assert_clean(visit)


@pytest.mark.parametrize("ui", ["v2", "v1"])
def test_a_flow_run_made_by_the_client_shows_its_name_on_the_runs_page(pages, runlog, ui: str) -> None:
    outcome = runlog.run_flow("two_tasks")
    name = runlog.get(f"/flow_runs/{outcome['flow_run_id']}")["name"]  # type: ignore[index]
    visit = pages.open("/v2/runs" if ui == "v2" else "/runs", ui=ui, wait_for=name, label=f"{ui}-runs")
    assert visit.page.get_by_text(name).first.is_visible()
    pages.record_calls(visit, f"{ui}-runs")
    assert_clean(visit)
