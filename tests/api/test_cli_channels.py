"""``runlog channel create/ls/inspect/delete`` in both modes and on both backends: channels are
notification block documents, secrets never shown, bad input one error line naming the problem."""

from __future__ import annotations

import asyncio
import json

import pytest

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..servers import serve

SEEDED = "SEEDED-cli-secret-5521"


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def cli(*args: str):
    return await asyncio.to_thread(run_cli, *args)


async def test_channels_are_created_listed_inspected_and_deleted_on_the_local_database(local):
    made = await cli("channel", "create", "slack", "ops", "--url", f"https://hooks.slack.com/services/{SEEDED}")
    assert made.exit_code == 0, made.output
    assert "Ephemeral mode" in made.stderr and "Created slack channel 'ops'" in made.stdout
    sms = await cli(
        "channel", "create", "twilio", "pager-phones", "--account-sid", "AC123", "--auth-token", SEEDED,
        "--from-phone-number", "+15005550006", "--to-phone-numbers", "+15005550001", "--to-phone-numbers", "+15005550002",
    )
    assert sms.exit_code == 0, sms.output
    hook = await cli(
        "channel", "create", "webhook", "hook", "--url", "https://example.com/in", "--method", "PUT",
        "--secrets", f"token={SEEDED}", "--headers", "Authorization=Bearer {{token}}", "--no-allow-private-urls",
    )
    assert hook.exit_code == 0, hook.output

    listing = await cli("channel", "ls")
    assert listing.exit_code == 0
    for name, kind in (("ops", "slack"), ("pager-phones", "twilio"), ("hook", "webhook")):
        assert any(name in line and kind in line for line in listing.stdout.splitlines()), listing.stdout
    shown = await cli("channel", "inspect", "hook", "-o", "json")
    document = json.loads(shown.stdout)
    assert document["block_type"]["slug"] == "custom-webhook"
    assert document["data"]["secrets"] == {"token": "********"} and document["data"]["method"] == "PUT"
    assert document["data"]["name"] == "hook" and document["data"]["allow_private_urls"] is False
    assert document["data"]["timeout"] == 10  # defaults filled in, as the Prefect client saves them
    twilio = json.loads((await cli("channel", "inspect", "twilio/pager-phones", "-o", "json")).stdout)
    assert twilio["data"]["to_phone_numbers"] == ["+15005550001", "+15005550002"]
    assert twilio["data"]["auth_token"] == "********" and twilio["data"]["notify_type"] == "info"
    table = await cli("channel", "inspect", "ops")
    assert "slack" in table.stdout and "********" in table.stdout
    every_output = listing.output + shown.output + table.output + made.output + sms.output + hook.output
    assert SEEDED not in every_output

    deleted = await cli("channel", "delete", "ops")
    assert deleted.exit_code == 0 and "Deleted slack channel 'ops'." in deleted.stdout
    assert "ops" not in (await cli("channel", "ls")).stdout.replace("hook", "")


@pytest.mark.parametrize(("args", "message"), [
    (("create", "slak", "ops", "--url", "https://x"), "Error: unknown channel kind 'slak'; kinds: discord,"),
    (("create", "slack", "ops"), "Error: slack channels need --url"),
    (("create", "slack", "ops", "--url", "file:///etc/passwd"), "Error: --url must be an http:// or https:// URL"),
    (("create", "slack", "Ops!", "--url", "https://x"), "Error: channel name 'Ops!' may hold only lowercase"),
    (("create", "slack", "ops", "--url", "https://x", "--notify-type", "loud"), "Error: --notify-type must be one of"),
    (("create", "opsgenie", "og", "--apikey", "k", "--priority", "high"), "Error: --priority must be a whole number"),
    (("create", "webhook", "w", "--url", "https://x", "--secrets", "nokey"), "Error: --secrets takes KEY=VALUE"),
    (("create", "webhook", "w", "--url", "https://x", "--json-data", "{bad"), "Error: --json-data is not a valid JSON"),
    (("inspect", "nope"), "Error: no channel named 'nope'"),
    (("delete", "nope"), "Error: no channel named 'nope'"),
    (("inspect", "pigeon/nope"), "Error: unknown channel kind 'pigeon'"),
])
async def test_bad_input_is_one_error_line_naming_what_is_wrong(local, args, message):
    result = await cli("channel", *args)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("Ephemeral mode")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr


async def test_a_name_shared_by_two_kinds_asks_for_the_kind_and_a_taken_name_is_refused(local):
    async with serve(local) as server:
        for slug, data in (("slack", {"url": "https://a"}), ("discord", {"webhook_id": "1", "webhook_token": "t"})):
            # The same name under two types, as the Prefect client may save them.
            made = await cli("channel", "create", slug, f"{slug}-tmp", *(
                ("--url", "https://a") if slug == "slack" else ("--webhook-id", "1", "--webhook-token", "t")
            ))
            assert made.exit_code == 0, made.output
            document = json.loads((await cli("channel", "inspect", f"{slug}-tmp", "-o", "json")).stdout)
            status, _ = await server.request("POST", "/block_documents/", json={
                "name": "shared", "data": data, "block_schema_id": document["block_schema_id"],
                "block_type_id": document["block_type_id"],
            })
            assert status == 201
    ambiguous = await cli("channel", "inspect", "shared")
    assert ambiguous.exit_code == 1 and "several channels are named 'shared'" in ambiguous.stderr
    assert "discord/shared" in ambiguous.stderr and "slack/shared" in ambiguous.stderr
    assert (await cli("channel", "delete", "discord/shared")).exit_code == 0
    assert (await cli("channel", "inspect", "shared")).exit_code == 0
    taken = await cli("channel", "create", "teams", "shared", "--url", "https://x")
    assert taken.exit_code == 1 and "a channel named 'shared' exists already (slack)" in taken.stderr


async def test_with_an_api_url_the_channel_commands_ask_that_server(local, monkeypatch, tmp_path):
    async with serve(local) as server:
        monkeypatch.setenv("RUNLOG_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        made = await cli("channel", "create", "discord", "chat", "--webhook-id", "123", "--webhook-token", SEEDED)
        assert made.exit_code == 0 and "Ephemeral mode" not in made.output, made.output
        status, answer = await server.request("GET", "/block_types/slug/discord-webhook/block_documents/name/chat")
        assert status == 200 and answer["data"]["webhook_token"] == "********"
        assert "chat" in (await cli("channel", "ls")).stdout


async def test_the_blocks_tables_equal_their_rebuild_from_the_log(local):
    """Types, schemas, documents, nested references and deletions: all projections of the log."""
    for args in (("slack", "ops", "--url", "https://a"), ("slack", "gone", "--url", "https://b"),
                 ("webhook", "hook", "--url", "https://c", "--secrets", "k=v")):
        assert (await cli("channel", "create", *args)).exit_code == 0
    async with serve(local) as server:
        hook = json.loads((await cli("channel", "inspect", "hook", "-o", "json")).stdout)
        status, _ = await server.request("PATCH", f"/block_documents/{hook['id']}", json={
            "data": {"secrets": {"k": "********", "new": "x"}}
        })
        assert status == 204
    assert (await cli("channel", "delete", "gone")).exit_code == 0
    result = await cli("projections", "verify")
    assert result.exit_code == 0, result.output
    assert "Every projection table equals its rebuild from the log." in result.output
    for table in ("block_types", "block_schemas", "block_schema_capabilities", "block_documents"):
        assert table in result.output
