"""Alerts end to end with the stock Prefect 3.8 client against ``runlog server start``, on both
backends: a webhook block and an automation saved with the SDK, then a failing run of a flow
tagged daily-etl is notified exactly once, naming the run, and an untagged failing run is not."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from ..servers import threaded_http
from .test_prefect_client import PREFECT_PYTHON, ROOT, Runlog, runlog  # noqa: F401 - runlog is the server fixture

pytestmark = pytest.mark.slow


class Received:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A real HTTP receiver on 127.0.0.1 that keeps every request's JSON body and headers."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with received.lock:
                received.bodies.append(json.loads(body))
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    with threaded_http(Handler) as origin:
        yield f"{origin}/hook", received


def eventually(condition, timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds (the notifier works in the server's background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.1)


def set_up_alerts(server: Runlog, url: str) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.notification_client", url],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"the notification client failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def test_a_failing_tagged_run_is_notified_once_and_an_untagged_one_not_at_all(runlog, receiver):  # noqa: F811
    url, received = receiver
    ids = set_up_alerts(runlog, url)
    assert "daily-etl failures" in runlog.prefect("automation", "ls")
    assert "ops" in runlog.prefect("block", "ls")

    # The untagged failure goes first: the matcher reads the log in order and one channel sends
    # in order, so had it matched, its request would come before the tagged run's.
    untagged = runlog.run_flow("failing")
    tagged = runlog.run_flow("tagged_failing")
    assert untagged["state"] == tagged["state"] == "FAILED"

    def all_sent() -> bool:
        deliveries = runlog.get("/runlog/deliveries")
        return bool(deliveries) and all(d["status"] == "sent" for d in deliveries)

    eventually(all_sent)
    with received.lock:
        bodies, headers = list(received.bodies), list(received.headers)
    assert len(bodies) == 1, bodies
    assert bodies[0]["title"] == "compat-etl failed"
    assert bodies[0]["text"].startswith(f"{tagged['flow_run_id']} entered Failed")
    assert headers[0]["user-agent"] == "Prefect Notifications"
    [delivery] = runlog.get("/runlog/deliveries")
    assert delivery["rule_id"] == ids["automation_id"] and delivery["channel_id"] == ids["block_id"]
