"""runlog's CLI against a server with an auth string and CSRF protection: it sends
RUNLOG_API_AUTH_STRING and fetches CSRF tokens as Prefect's client does (api/client.py)."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve

AUTH = "ops:correct-horse-battery"
PROTECTED = {"RUNLOG_SERVER_API_AUTH_STRING": AUTH, "RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED": "true"}
GOOD = {"Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def cli(*args: str):
    return await asyncio.to_thread(run_cli, *args)


async def test_the_cli_sends_its_auth_string_and_csrf_tokens_to_a_protected_server(local, monkeypatch, tmp_path):
    async with serve({**local, **PROTECTED}) as server:
        monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/unused.db")
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        refused = await cli("channel", "create", "slack", "ops", "--url", "https://hooks.example/a")
        assert refused.exit_code == 1
        assert f"the server at {server.base} asks for credentials (401 Unauthorized)" in refused.stderr
        assert "RUNLOG_API_AUTH_STRING" in refused.stderr and AUTH not in refused.output

        monkeypatch.setenv("RUNLOG_API_AUTH_STRING", AUTH)
        # Writes (POST, DELETE) carry a token from /csrf-token, reads need none.
        made = await cli("channel", "create", "slack", "ops", "--url", "https://hooks.example/a")
        assert made.exit_code == 0, made.output
        assert "ops" in (await cli("channel", "ls")).stdout
        status, found = await server.request("GET", "/block_types/slug/slack-webhook/block_documents/name/ops",
                                             headers=GOOD)
        assert status == 200 and found["name"] == "ops"
        assert (await cli("channel", "delete", "slack/ops")).exit_code == 0
        status, _ = await server.request("GET", "/block_types/slug/slack-webhook/block_documents/name/ops",
                                         headers=GOOD)
        assert status == 404


async def test_ephemeral_mode_works_under_the_profiles_own_server_settings(local, monkeypatch):
    """With no RUNLOG_API_URL, the in-process server has this profile's auth string and CSRF
    setting; the CLI, talking to it, uses them."""
    for name, value in PROTECTED.items():
        monkeypatch.setenv(name, value)
    made = await cli("channel", "create", "slack", "local", "--url", "https://hooks.example/b")
    assert made.exit_code == 0 and "Ephemeral mode" in made.output, made.output
    assert "local" in (await cli("channel", "ls")).stdout


async def test_events_push_sends_the_auth_string_and_csrf_tokens(local, monkeypatch, tmp_path, store_url):
    hosted = {"RUNLOG_HOME": str(tmp_path / "hosted"), "RUNLOG_DATABASE_URL": store_url, **PROTECTED}
    monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/local.db")
    assert (await cli("channel", "create", "slack", "pushed", "--url", "https://hooks.example/c")).exit_code == 0
    async with serve(hosted) as server:
        refused = await cli("events", "push", "--to", server.base)
        assert refused.exit_code == 1 and "401 Unauthorized" in refused.stderr
        monkeypatch.setenv("RUNLOG_API_AUTH_STRING", AUTH)
        pushed = await cli("events", "push", "--to", server.base)
        assert pushed.exit_code == 0, pushed.output
        counts = re.search(r"Pushed (\d+) event\(s\) to \S+: (\d+) new", pushed.output)
        assert counts and int(counts[1]) > 0 and counts[1] == counts[2], pushed.output
        # The channel's block type came with the events (its document is sealed with the local
        # database's key, which the hosted server does not have).
        status, found = await server.request("GET", "/block_types/slug/slack-webhook", headers=GOOD)
        assert status == 200 and found["slug"] == "slack-webhook"
