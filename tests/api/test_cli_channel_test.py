"""``runlog channel test`` and the channels' health in ``channel ls`` / ``inspect``, on both
backends, against real receivers on 127.0.0.1: a test goes through the real sender with the
block's secrets opened, prints the receiver's answer without a secret, and records nothing; a
404 from a channel's endpoint to a delivery marks it failing until a delivery to it is sent."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from runlog.api import keys
from runlog.commands import deliveries as delivery_commands
from runlog.eventstore import open_store

from ..notifier.receiver import receiver
from ..servers import serve, until
from . import isolate_runlog_env
from .cli_runner import run_cli

SEEDED = "SEEDED-probe-secret-7713"
SLACK_URL = f"https://hooks.slack.com/services/T0001/B0001/{SEEDED}"


@pytest.fixture
async def slack():
    """A Slack stand-in: every request recorded, 200 "ok" unless the test scripts otherwise."""
    async with receiver() as r:
        yield r


@pytest.fixture
def env(monkeypatch, tmp_path, store_url, slack):
    """The local database, with Slack's requests sent to the stand-in (as RUNLOG_NOTIFIER_BASE_URLS
    points them at any host); wide tables, so that words are not folded."""
    isolate_runlog_env(monkeypatch, tmp_path)
    settings = {
        "RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url,
        "RUNLOG_NOTIFIER_BASE_URLS": f"slack={slack.url}",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "250")
    return settings


async def cli(*args: str):
    return await asyncio.to_thread(run_cli, *args)


async def ok(*args: str) -> str:
    result = await cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


async def test_a_test_message_goes_through_the_real_sender_on_the_local_database(env, slack, store_url):
    await ok("channel", "create", "slack", "ops", "--url", SLACK_URL)
    async with open_store(store_url) as store:
        head = await store.head()

    result = await cli("channel", "test", "ops")
    assert result.exit_code == 0, result.output
    assert "Ephemeral mode" in result.stderr
    assert "Test message to slack channel 'ops': sent, HTTP 200" in result.stdout
    assert "(POST http://127.0.0.1:" in result.stdout and "Answer: ok" in result.stdout
    [seen] = slack.seen
    # The block's URL, decrypted, with only its host replaced by the override.
    assert seen.method == "POST" and seen.path == f"/services/T0001/B0001/{SEEDED}"
    attachment = seen.json()["attachments"][0]
    assert attachment["title"] == "runlog channel test" and "'ops'" in attachment["text"]

    told = await ok("channel", "test", "ops", "--message", "hello from the on-call runbook")
    assert "sent, HTTP 200" in told
    assert slack.seen[1].json()["attachments"][0]["text"] == "hello from the on-call runbook"
    async with open_store(store_url) as store:
        assert await store.head() == head  # a test send is not a delivery: the log is untouched
    assert SEEDED not in result.output + told


async def test_a_refused_test_exits_1_with_the_answer_redacted_and_leaves_the_health_alone(env, slack):
    async with serve(env) as server:
        env_api = {"RUNLOG_API_URL": server.base}
        await ok("channel", "create", "slack", "ops", "--url", SLACK_URL)
        head = await server.app[keys.STORE].head()
        # The receiver quotes the request's path (the webhook's secret) back in its error.
        slack.script((404, {}, lambda seen: f"no_service {seen.path}".encode()))
        gone = await asyncio.to_thread(run_cli, "channel", "test", "ops", env=env_api)
        assert gone.exit_code == 1, gone.output
        assert "Ephemeral mode" not in gone.output
        assert "Test message to slack channel 'ops': not sent (gone), HTTP 404" in gone.stdout
        assert "Answer: no_service ********" in gone.stdout
        assert "Reason: HTTP 404: the endpoint is gone" in gone.stdout

        slack.script((200, {}, b"invalid_payload"))  # Slack's 200 without "ok" is its refusal
        refused = await asyncio.to_thread(run_cli, "channel", "test", "ops", env=env_api)
        assert refused.exit_code == 1 and "not sent (permanent), HTTP 200" in refused.stdout

        assert len(slack.seen) == 2
        assert await server.app[keys.STORE].head() == head
        listed = json.loads(await asyncio.to_thread(lambda: run_cli("channel", "ls", "-o", "json", env=env_api).stdout))
        assert [c["health"] for c in listed] == [None]  # tests do not make a channel failing
        assert SEEDED not in gone.output + refused.output


async def test_over_http_the_server_sends_with_the_decrypted_secrets(env, slack, monkeypatch):
    async with serve(env) as server:
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        await ok("channel", "create", "webhook", "hook", "--url", f"{slack.url}/in", "--secrets", f"token={SEEDED}",
                 "--headers", "Authorization=Bearer {{token}}", "--json-data", '{"text": "{{body}}"}')
        said = await ok("channel", "test", "hook", "--message", "ping")
        assert "Test message to webhook channel 'hook': sent, HTTP 200" in said and SEEDED not in said
        [seen] = slack.seen
        assert seen.path == "/in" and seen.headers["Authorization"] == f"Bearer {SEEDED}"
        assert seen.json() == {"text": "ping"}

        channel = json.loads(await ok("channel", "inspect", "hook", "-o", "json"))
        status, answer = await server.request("POST", f"/runlog/channels/{channel['id']}/test", json={"message": "x"})
        assert status == 200
        assert answer["sent"] is True and answer["outcome"] == "sent" and answer["status_code"] == 200
        assert answer["kind"] == "custom-webhook" and answer["channel_id"] == channel["id"]
        assert answer["target"].startswith("POST http://127.0.0.1:") and answer["excerpt"] == "ok"

        status, missing = await server.request("POST", f"/runlog/channels/{uuid.uuid4()}/test")
        assert status == 404 and "no channel" in missing["detail"]
        status, _ = await server.request("POST", f"/runlog/channels/{channel['id']}/test", json={"mesage": "typo"})
        assert status == 422
        status, kind = await server.request("POST", "/block_types/", json={"name": "Secret", "slug": "secret"})
        assert status == 201
        status, schema = await server.request("POST", "/block_schemas/", json={
            "block_type_id": kind["id"], "capabilities": [], "version": "3.8.8",
            "fields": {"title": "Secret", "type": "object", "properties": {"value": {"type": "string"}}},
        })
        assert status == 201
        status, secret = await server.request("POST", "/block_documents/", json={
            "name": "db-password", "block_type_id": kind["id"], "block_schema_id": schema["id"], "data": {"value": "x"},
        })
        assert status == 201
        status, refused = await server.request("POST", f"/runlog/channels/{secret['id']}/test")
        assert status == 422 and refused["detail"] == "block document 'db-password' is not a notification channel (secret)"
        assert len(slack.seen) == 2  # neither the refused body nor the refused block sent anything
        no_such = await cli("channel", "test", "nope")
        assert no_such.exit_code == 1 and no_such.stderr.strip().endswith("Error: no channel named 'nope'; 'runlog channel ls' lists them")


async def test_a_closed_port_is_not_sent_and_says_why(env, monkeypatch):
    await ok("channel", "create", "webhook", "down", "--url", "http://127.0.0.1:9/in")
    result = await cli("channel", "test", "down")
    assert result.exit_code == 1
    assert "not sent (retry), no answer" in result.stdout and "Reason: ClientConnectorError" in result.stdout


async def test_channel_ls_and_inspect_show_a_channel_failing_after_a_404_until_a_delivery_is_sent(env, slack):
    """The server's own dispatcher sends two deliveries to the channel: the first is answered
    404 (the Slack webhook was removed), the second 200 "ok"."""
    slack.script((404, {}, b"no_service"))
    async with serve(env) as server:
        env_api = {"RUNLOG_API_URL": server.base}
        await ok("channel", "create", "slack", "ops", "--url", SLACK_URL)
        await ok("channel", "create", "slack", "quiet", "--url", "https://hooks.slack.com/services/T/B/other")
        ops = json.loads(await ok("channel", "inspect", "ops", "-o", "json"))
        assert ops["health"] is None

        async def deliver(body: str) -> str:
            store = server.app[keys.STORE]
            view, _ = await delivery_commands.schedule(
                store, rule_id=uuid.uuid4(), channel_id=uuid.UUID(ops["id"]), event_id=uuid.uuid4(),
                subject="Flow run failed", body=body,
            )
            server.app[keys.DISPATCHER].wake()

            async def settled() -> bool:
                _, found = await server.request("GET", f"/runlog/deliveries/{view.id}")
                return found["status"] in ("sent", "dead")

            await until(settled, what="the delivery sent or dead")
            return str(view.id)

        gone = await deliver("run one failed")
        listing = await asyncio.to_thread(run_cli, "channel", "ls", env=env_api)
        [ops_line] = [line for line in listing.stdout.splitlines() if " ops " in line]
        assert f"failing: HTTP 404 on delivery {gone}" in ops_line
        [quiet_line] = [line for line in listing.stdout.splitlines() if " quiet " in line]
        assert " - " in quiet_line and "failing" not in quiet_line  # never delivered to
        shown = await asyncio.to_thread(run_cli, "channel", "inspect", "ops", env=env_api)
        assert "failing: HTTP 404" in shown.stdout and "health since" in shown.stdout
        status, health = await server.request("GET", "/runlog/channels/health")
        assert status == 200 and [(h["channel_id"], h["status"]) for h in health] == [(ops["id"], "failing")]

        await deliver("run two failed")
        listed = json.loads(await asyncio.to_thread(lambda: run_cli("channel", "ls", "-o", "json", env=env_api).stdout))
        assert {c["name"]: c["health"] and c["health"]["status"] for c in listed} == {"ops": "ok", "quiet": None}
        assert [s.json()["attachments"][0]["text"] for s in slack.seen] == ["run one failed", "run two failed"]
        assert SEEDED not in listing.output + shown.output
