"""The matcher reads a channel's block once, not at every firing, and again once any block
changed (a record of the blocks stream passed): on both backends, an action's triggered event
names the block while it exists and no longer once it was deleted."""

from __future__ import annotations

from runlog.commands import automations
from runlog.commands import blocks as block_commands
from runlog.commands.encryption import Keyring
from runlog.schema.events import StateType

from .test_actions import a_run_in, feed, named, on_states
from .test_block_channels import _document
from .test_matcher import matcher_for


def blocks_named(event) -> list[str]:
    return [r["prefect.resource.id"] for r in event.related if r.get("prefect.resource.role") == "block"]


async def test_a_deleted_channel_is_no_longer_named_by_the_next_firing(store, clock) -> None:
    cipher = await Keyring().cipher(store)
    channel = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/x"}, "ops")
    actions = [{"type": "send-notification", "block_document_id": str(channel), "body": "{{ flow_run.name }}"}]
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    matcher = matcher_for(store, clock)
    for name in ("first", "second"):
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
        await matcher.step(clock())
    await block_commands.delete_document(store, channel)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="third")
    await matcher.step(clock())

    triggered = named(await feed(store), "prefect.automation.action.triggered")
    assert [blocks_named(e) for e in triggered] == [
        [f"prefect.block-document.{channel}"], [f"prefect.block-document.{channel}"], []]


async def test_a_channel_deleted_while_the_matcher_was_idle_is_no_longer_named(store, clock) -> None:
    # Idle rounds (no automation enabled) read none of the records they pass, blocks' included:
    # what the matcher remembered of a block before is not trusted once it is back.
    cipher = await Keyring().cipher(store)
    channel = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/x"}, "ops")
    actions = [{"type": "send-notification", "block_document_id": str(channel), "body": "{{ flow_run.name }}"}]
    automation = await automations.create(store, on_states(["Failed"], actions), clock=clock)
    matcher = matcher_for(store, clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="first")
    await matcher.step(clock())

    await automations.set_enabled(store, automation.id, False, clock=clock)
    await matcher.step(clock())  # idle from here
    await block_commands.delete_document(store, channel)
    await matcher.step(clock())  # skips the deletion's record
    await automations.set_enabled(store, automation.id, True, clock=clock)
    await matcher.step(clock())
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="second")
    await matcher.step(clock())

    triggered = named(await feed(store), "prefect.automation.action.triggered")
    assert [blocks_named(e) for e in triggered] == [[f"prefect.block-document.{channel}"], []]
