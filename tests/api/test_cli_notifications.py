"""``runlog notification``: rules created, listed, edited, paused, muted and deleted, in both
modes, stored as the Prefect automations notifier/rules.py describes."""

from __future__ import annotations

import asyncio

import pytest

from . import isolate_runlog_env
from .channels import make_channel
from .cli_runner import run_cli
from ..servers import serve


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    monkeypatch.setenv("COLUMNS", "200")  # tables as wide as their rows, so words are not folded
    return {"RUNLOG_HOME": str(tmp_path / "runlog-home"), "RUNLOG_DATABASE_URL": store_url}


async def cli(*args: str):
    return await asyncio.to_thread(run_cli, *args)


async def ok(*args: str) -> str:
    result = await cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


async def error(*args: str) -> str:
    result = await cli(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and len([l for l in lines if l.startswith("Error")]) == 1, result.stderr
    return lines[-1]


async def automations(server) -> list[dict]:
    status, found = await server.request("POST", "/automations/filter", json={})
    assert status == 200
    return found


async def test_create_over_http_stores_the_automation_the_mapping_describes(local, monkeypatch, store_url) -> None:
    async with serve(local) as server:
        channel = await make_channel(server, store_url, "ops")
        monkeypatch.setenv("RUNLOG_API_URL", server.base)
        out = await ok("notification", "create", "--state", "Failed", "--state", "crashed", "--tag", "daily-etl",
                       "--flow", "etl", "--channel", "ops", "--repeat-suppress", "10m", "--name", "etl alerts")
        assert "Created notification rule 'etl alerts'" in out
        [automation] = await automations(server)
    trigger = automation["trigger"]
    assert trigger["posture"] == "Reactive" and trigger["within"] == 600.0 and trigger["threshold"] == 1
    assert trigger["match"] == {"prefect.resource.id": "prefect.flow-run.*"}
    assert trigger["expect"] == ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"]
    assert trigger["for_each"] == ["prefect.resource.id", "prefect.state-name"]
    assert trigger["match_related"] == [
        {"prefect.resource.role": "tag", "prefect.resource.id": ["prefect.tag.daily-etl"]},
        {"prefect.resource.role": "flow", "prefect.resource.name": ["etl"]},
    ]
    [action] = automation["actions"]
    assert action["type"] == "send-notification" and action["block_document_id"] == channel
    assert action["subject"] == "Prefect flow run notification"
    assert action["body"].startswith("Flow run {{ flow.name }}/{{ flow_run.name }} entered state")


async def test_hold_for_is_a_proactive_wait_after_the_states(local, store_url) -> None:
    async with serve(local) as server:
        await make_channel(server, store_url, "ops")
    await ok("notification", "create", "--state", "Failed", "--channel", "ops", "--hold-for", "60s", "--name", "held")
    async with serve(local) as server:
        [automation] = await automations(server)
    trigger = automation["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == 60.0
    assert trigger["after"] == ["prefect.flow-run.Failed"] and trigger["expect"] == ["prefect.flow-run.*"]
    assert trigger["for_each"] == ["prefect.resource.id"]


async def test_ls_inspect_edit_pause_resume_mute_delete_in_ephemeral_mode(local, store_url) -> None:
    async with serve(local) as server:
        await make_channel(server, store_url, "ops")
        await make_channel(server, store_url, "pager")
    await ok("notification", "create", "--state", "Failed", "--tag", "daily-etl", "--channel", "ops")
    listed = await ok("notification", "ls")
    assert "Failed" in listed and "daily-etl" in listed and "ops" in listed and "on" in listed
    name = "Failed, tag daily-etl -> ops"
    shown = await ok("notification", "inspect", name)
    assert "entered state" in shown and "daily-etl" in shown

    await ok("notification", "edit", name, "--state", "Crashed", "--channel", "pager", "--message",
             "{{ flow_run.name }} is {{ flow_run.state.name }}")
    async with serve(local) as server:
        [automation] = await automations(server)
    assert automation["trigger"]["expect"] == ["prefect.flow-run.Crashed"]
    assert automation["trigger"]["match_related"][0]["prefect.resource.id"] == ["prefect.tag.daily-etl"]  # kept
    assert automation["actions"][0]["body"] == "{{ flow_run.name }} is {{ flow_run.state.name }}"
    assert "pager" in await ok("notification", "ls")

    await ok("notification", "pause", name)
    assert "paused" in await ok("notification", "ls")
    await ok("notification", "resume", name)
    await ok("notification", "mute", name, "--until", "2026-03-02T08:00Z")
    assert "muted until 2026-03-02 08:00" in await ok("notification", "ls")
    async with serve(local) as server:
        [automation] = await automations(server)
    assert automation["enabled"] is True and automation["muted_until"] == "2026-03-02T08:00:00Z"
    await ok("notification", "mute", name, "--off")
    await ok("notification", "delete", automation["id"])
    assert "No notification rules." in await ok("notification", "ls")


@pytest.mark.parametrize(("args", "words"), [
    (("--state", "Failed", "--channel", "nowhere"), ("unknown channel 'nowhere'",)),
    (("--state", "Faild", "--channel", "ops"), ("unknown state 'Faild'",)),
    (("--state", "Failed", "--channel", "ops", "--message", "{{ flow_run.name"), ("'--message' is not a valid template",)),
    (("--state", "Failed", "--channel", "ops", "--hold-for", "5s"), ("--hold-for must be at least 10s",)),
    (("--state", "Failed", "--channel", "ops", "--hold-for", "1m", "--repeat-suppress", "5m"), ("cannot be combined",)),
    (("--state", "Failed", "--channel", "ops", "--hold-for", "soon"), ("is not a duration",)),
])
async def test_bad_input_is_a_one_line_error_and_creates_nothing(local, store_url, args, words) -> None:
    async with serve(local) as server:
        await make_channel(server, store_url, "ops")
    line = await error("notification", "create", *args)
    assert all(word in line for word in words), line
    async with serve(local) as server:
        assert await automations(server) == []


async def test_rules_that_name_nothing_say_so(local) -> None:
    assert "no notification rule is named 'ghost'" in await error("notification", "pause", "ghost")
