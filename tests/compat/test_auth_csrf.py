"""The stock Prefect 3.8 client against ``runlog server start`` with an auth string and CSRF
protection, both backends: PREFECT_API_AUTH_STRING is all the client needs, over HTTP (Basic
credentials, CSRF tokens fetched when the server issues them) and over the events websockets
(the token in the handshake)."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from ..servers import PREFECT_PYTHON, ROOT, prefect_event_stream, run_flow, prefect_client_env, runlog_server, server_env

pytestmark = pytest.mark.slow

AUTH = "prefect-user:s3cret-Passw0rd"
WAIT_SECONDS = 60


@pytest.fixture
def protected(store_url, tmp_path):
    env = server_env(tmp_path, store_url, RUNLOG_SERVER_API_AUTH_STRING=AUTH,
                     RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED="true")
    with runlog_server(env, tmp_path / "server.log") as running:
        client_env = prefect_client_env(running.url, tmp_path / "prefect", PREFECT_API_AUTH_STRING=AUTH)
        # The test's own client: the credentials, and a CSRF token for its writes (filters are POSTs).
        with httpx.Client(base_url=running.url, timeout=30, auth=tuple(AUTH.split(":", 1))) as http:  # type: ignore[arg-type]
            token = http.get("/csrf-token", params={"client": "compat-test"}).raise_for_status().json()["token"]
            http.headers.update({"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": "compat-test"})
            yield running, client_env, http
        assert running.stop() == 0, running.output()


def test_the_stock_client_runs_a_flow_end_to_end_with_the_auth_string_and_csrf_tokens(protected):
    running, client_env, http = protected
    # The server really asks: no credentials, or a write without a CSRF token, are refused.
    assert httpx.post(running.url + "/flows/filter", json={}, timeout=30).status_code == 401
    refused = httpx.post(running.url + "/flows/", json={"name": "no-token"}, auth=http.auth, timeout=30)
    assert refused.status_code == 403 and refused.json() == {"detail": "Missing CSRF token."}

    outcome = run_flow(client_env, "two_tasks")
    assert outcome["state"] == "COMPLETED" and outcome["result"] == 8
    run_id = outcome["flow_run_id"]
    run = http.get(f"/flow_runs/{run_id}").json()
    assert run["state_type"] == "COMPLETED"
    # Task runs reach the server as events over the /events/in websocket: its handshake took the token.
    tasks = http.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}}).json()
    assert {t["name"].split("-")[0] for t in tasks} == {"ok_task", "flaky_task"}
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    logs = http.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}}).json()
    assert "flow starting with n=3" in [log["message"] for log in logs]


def test_the_stock_clients_event_stream_subscribes_with_the_auth_string(protected):
    """`prefect event stream` opens /events/out with the token in its handshake and prints what follows."""
    running, client_env, http = protected
    with prefect_event_stream(client_env, WAIT_SECONDS) as stream:
        stream.wait_for("Subscribing to event stream")
        # A marker sent after the subscription: the stream shows it once its handshake succeeded.
        marker = f"runlog.test.auth-{uuid.uuid4()}"
        http.post("/events", json=[{
            "occurred": datetime.now(UTC).isoformat(), "event": marker, "id": str(uuid.uuid4()),
            "resource": {"prefect.resource.id": "runlog.test"},
        }]).raise_for_status()
        line = stream.wait_for(marker)
    assert marker in line
    assert not any("Unable to authenticate" in s for s in stream.seen)


def test_a_client_with_a_wrong_auth_string_is_refused_with_401(protected):
    running, client_env, _ = protected
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "prefect", "flow", "ls"], cwd=ROOT,
        env={**client_env, "PREFECT_API_AUTH_STRING": "prefect-user:wrong", "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    assert "401" in done.stdout + done.stderr
