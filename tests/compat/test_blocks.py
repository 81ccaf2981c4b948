"""Blocks with the stock Prefect 3.8 client and CLI against ``runlog server start``, on both
backends; channels made by ``runlog channel`` load in the client and the reverse; a seeded secret
is nowhere in clear: not in the database, the server's DEBUG log, API answers or CLI tables."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest

from ..servers import ROOT, runlog_server, server_env
from .test_prefect_client import PREFECT_PYTHON, Runlog

pytestmark = pytest.mark.slow

SEEDED = "SEEDED-s3cr3t-9f31"


@pytest.fixture
def debug_runlog(store_url, tmp_path):
    """The server logging at DEBUG, so that every log line it writes is checked for secrets."""
    env = server_env(tmp_path, store_url, RUNLOG_LOGGING_LEVEL="DEBUG")
    with runlog_server(env, tmp_path / "server.log") as running:
        client_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))} | {
            "PREFECT_API_URL": running.url, "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        server = Runlog(running.url, client_env)
        server.runlog_env = env | {"RUNLOG_API_URL": running.url}  # type: ignore[attr-defined]
        server.log = tmp_path / "server.log"  # type: ignore[attr-defined]
        try:
            yield server
        finally:
            server.http.close()
        assert running.stop() == 0, running.output()


def client(server: Runlog, *args: str) -> dict:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.block_scripts", *args], cwd=ROOT, env=server.env,
        capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"block_scripts {args} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


def runlog_cli(server: Runlog, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(Path(PREFECT_PYTHON).parent / "runlog"), *args], cwd=ROOT,
        env={**server.runlog_env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120,  # type: ignore[attr-defined]
    )
    assert (done.returncode == 0) == ok, f"runlog {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


async def database_text(store_url: str, tmp_path_db: Path | None) -> bytes:
    """Every byte the database holds: the SQLite files, or every PostgreSQL row as text (bytea
    columns appear as hex, so callers look for both forms)."""
    if store_url.startswith("sqlite"):
        assert tmp_path_db is not None
        return b"".join(p.read_bytes() for p in tmp_path_db.parent.glob(tmp_path_db.name + "*"))
    conn = await asyncpg.connect(store_url)
    try:
        tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        rows = [await conn.fetch(f'SELECT t::text FROM "{table}" t') for table in tables]
    finally:
        await conn.close()
    return "\n".join(str(r[0]) for found in rows for r in found).encode()


def assert_nowhere(secret: str, *texts: bytes | str) -> None:
    forms = [secret.encode(), secret.encode().hex().encode()]
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert not any(form in data for form in forms), "the seeded secret is in clear"


async def test_blocks_saved_loaded_listed_and_deleted_by_the_client_keep_their_secret(debug_runlog, store_url, tmp_path):
    server = debug_runlog
    outcome = client(server, "save_and_load", SEEDED, str(tmp_path / "results"))
    assert outcome["loaded"] == f"https://hooks.slack.com/services/{SEEDED}"
    assert outcome["refused_without_overwrite"] is True
    assert outcome["overwritten"] == f"https://hooks.slack.com/services/{SEEDED}-2"
    assert outcome["custom_secrets"] == {"token": SEEDED} and outcome["secret"] == SEEDED
    assert outcome["basepath"] == str(tmp_path / "results") and outcome["read_back"] == "42"

    slack = server.get("/block_types/slug/slack-webhook/block_documents/name/ops")
    assert slack["data"]["url"] == "********"
    custom = server.get("/block_types/slug/custom-webhook/block_documents/name/custom")
    assert custom["data"]["secrets"] == {"token": "********"}
    assert custom["block_schema"]["fields"]["secret_fields"] == ["secrets.*"]
    assert server.get("/block_types/slug/secret/block_documents/name/api-key")["data"]["value"] == "********"
    listed = server.post("/block_documents/filter", {})

    blocks = server.prefect("block", "ls")
    for slug in ("slack-webhook/ops", "custom-webhook/custom", "secret/api-key", "local-file-system/results"):
        assert slug in blocks
    types = server.prefect("block", "type", "ls")
    assert "slack-webhook" in types and "local-file-system" in types
    inspected = server.prefect("block", "inspect", "slack-webhook/ops")
    assert "ops" in inspected
    assert "Deleted Block 'secret/api-key'" in server.prefect("block", "delete", "secret/api-key")
    assert "secret/api-key" not in server.prefect("block", "ls")

    channels = runlog_cli(server, "channel", "ls").stdout + runlog_cli(server, "channel", "inspect", "custom").stdout
    assert "ops" in channels and "custom" in channels and "********" in channels
    db = tmp_path / "runlog" / "runlog.db" if store_url.startswith("sqlite") else None
    assert_nowhere(
        SEEDED, await database_text(store_url, db), server.log.read_bytes(), json.dumps(listed),  # type: ignore[attr-defined]
        json.dumps([slack, custom]), blocks, channels, inspected,
    )
    assert "block_documents" in server.log.read_text()  # the DEBUG log did see the requests  # type: ignore[attr-defined]


async def test_a_channel_made_by_the_cli_loads_in_the_client_and_the_reverse(debug_runlog):
    server = debug_runlog
    made = runlog_cli(
        server, "channel", "create", "webhook", "hook", "--url", "http://127.0.0.1:9/in",
        "--json-data", '{"text": "{{body}}"}', "--secrets", f"token={SEEDED}",
    )
    assert "Created webhook channel 'hook'" in made.stdout
    runlog_cli(server, "channel", "create", "slack", "alerts", "--url", f"https://hooks.slack.com/services/{SEEDED}")
    assert client(server, "load", "webhook", "hook") == {
        "url": "http://127.0.0.1:9/in", "secrets": {"token": SEEDED}, "json_data": {"text": "{{body}}"},
    }
    assert client(server, "load", "slack", "alerts") == {"url": f"https://hooks.slack.com/services/{SEEDED}"}

    outcome = client(server, "save_and_load", "other-secret", "/tmp")  # the client's own saves
    assert outcome["loaded"].endswith("other-secret")
    listing = runlog_cli(server, "channel", "ls").stdout
    assert "custom" in listing and "ops" in listing and "alerts" in listing and "api-key" not in listing
    shown = runlog_cli(server, "channel", "inspect", "slack/alerts").stdout
    assert "********" in shown
    assert "already" in runlog_cli(server, "channel", "create", "slack", "ops", "--url", "https://x", ok=False).stderr
    assert "Deleted slack channel 'ops'" in runlog_cli(server, "channel", "delete", "ops").stdout
    assert "slack-webhook/ops" not in server.prefect("block", "ls")
    assert_nowhere(SEEDED, listing, shown, server.log.read_bytes())  # type: ignore[attr-defined]


async def test_nested_blocks_save_and_load_by_reference_and_inline(debug_runlog):
    server = debug_runlog
    outcome = client(server, "nested", SEEDED)
    assert outcome == {
        "by_reference": [SEEDED, "by-reference"], "inline": [f"{SEEDED}-inline", "inline"], "overwritten": "replaced",
    }
    outer = server.get("/block_types/slug/runlog-compat-holder/block_documents/name/outer")
    assert outer["data"] == {"label": "by-reference", "credentials": {"password": "********", "user": "u"}}
    assert outer["block_document_references"]["credentials"]["block_document"]["name"] == "inner"
    inline = server.get("/block_types/slug/runlog-compat-holder/block_documents/name/inline")
    assert inline["data"]["credentials"]["password"] == "********"
    assert_nowhere(SEEDED, json.dumps([outer, inline]), server.log.read_bytes())  # type: ignore[attr-defined]
