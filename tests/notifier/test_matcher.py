"""The matcher, on both backends, with a manual clock and no server: a flow-run state change that
an automation's trigger matches becomes one delivery per notification action, with its message
rendered from the state that fired; edits, pauses and mutes apply from the next event on; a
page matched again (a restart before the checkpoint moved) schedules nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from runlog.commands import automations, flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.orchestration import ProposedState
from runlog.notifier.matcher import NAME, Matcher
from runlog.notifier.templates import Renderer
from runlog.projections import deliveries as delivery_reads
from runlog.eventstore import RowChanges
from runlog.projections.checkpoints import CHECKPOINTS, checkpoint
from runlog.schema.automations import AutomationDefinition
from runlog.schema.events import StateType

CHANNEL = uuid.UUID("5b1f3f51-7d56-4c53-9bb1-0d1d4b7c4a01")


def failed_runs_of(tag: str, *, body: str = "{{ flow.name }}/{{ flow_run.name }} is {{ flow_run.state.name }}",
                   enabled: bool = True) -> AutomationDefinition:
    return msgspec.convert({
        "name": f"{tag} failures", "enabled": enabled,
        "trigger": {
            "type": "event", "id": str(uuid.uuid4()), "posture": "Reactive", "threshold": 1, "within": 0,
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{tag}"},
            "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
        },
        "actions": [
            {"type": "send-notification", "block_document_id": str(CHANNEL), "subject": "{{ flow_run.name }}",
             "body": body},
            {"type": "do-nothing"},
        ],
    }, AutomationDefinition)


async def a_run_in(store, clock: ManualClock, state: StateType, *, tags: list[str], name: str) -> uuid.UUID:
    flow, _ = await flows.register(store, "etl", [], clock=clock)
    run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id, name=name, tags=tags), clock=clock)
    for step in (StateType.PENDING, StateType.RUNNING, state):
        await flow_runs.set_state(store, run.id, ProposedState(type=step), clock=clock)
    return run.id


async def scheduled(store) -> list:
    async with store.reading() as tx:
        return await delivery_reads.due(tx, datetime(2100, 1, 1, tzinfo=UTC), 100)


def matcher_for(store, clock: ManualClock, woken: list[int] | None = None) -> Matcher:
    return Matcher(store, renderer=Renderer("http://runlog.test"), clock=clock,
                   on_scheduled=lambda: woken.append(1) if woken is not None else None)


async def test_a_matching_failure_becomes_one_delivery_with_the_state_that_fired(store, clock) -> None:
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    failed = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="brisk-otter")
    await a_run_in(store, clock, StateType.FAILED, tags=["other"], name="calm-heron")  # another tag
    await a_run_in(store, clock, StateType.COMPLETED, tags=["daily-etl"], name="quiet-fox")  # not a failure
    woken: list[int] = []
    matcher = matcher_for(store, clock, woken)

    assert await matcher.step(clock()) == 1
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == failed and delivery.scheduled.channel_id == CHANNEL
    assert delivery.scheduled.action_index == 0
    # Rendered when matched: the run moves on afterwards, the message keeps the state that fired.
    assert delivery.scheduled.subject == "brisk-otter"
    assert delivery.scheduled.body == "etl/brisk-otter is Failed"
    assert woken, "the dispatcher was woken for the new delivery"

    await flow_runs.set_state(store, failed, ProposedState(type=StateType.SCHEDULED), force=True, clock=clock)
    assert await matcher.step(clock()) == 0
    assert len(await scheduled(store)) == 1


async def test_edits_pauses_and_mutes_apply_from_the_next_event(store, clock) -> None:
    automation = await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    matcher = matcher_for(store, clock)
    await matcher.step(clock())  # loads the automation

    await automations.set_enabled(store, automation.id, False, clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="paused-one")
    await matcher.step(clock())
    assert await scheduled(store) == []

    await automations.set_enabled(store, automation.id, True, clock=clock)
    await automations.mute(store, automation.id, clock().replace(year=clock().year + 1), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="muted-one")
    await matcher.step(clock())
    assert await scheduled(store) == []

    await automations.mute(store, automation.id, None, clock=clock)
    await automations.replace(store, automation.id, failed_runs_of("daily-etl", body="now: {{ flow_run.name }}"),
                              clock=clock)
    await a_run_in(store, clock, StateType.CRASHED, tags=["daily-etl"], name="edited-one")
    await matcher.step(clock())
    [delivery] = await scheduled(store)
    assert delivery.scheduled.body == "now: edited-one"


async def test_a_page_matched_again_schedules_nothing_twice(store, clock) -> None:
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="twice-seen")
    await matcher_for(store, clock).step(clock())
    assert len(await scheduled(store)) == 1

    # A restart that lost the checkpoint's last move: a new matcher reads the log from the start.
    rewind = RowChanges()
    rewind.upsert(CHECKPOINTS, ("notifier-matcher", 0))
    await store.write_tables(rewind)
    again = matcher_for(store, clock)
    assert await again.step(clock()) == 0  # the failure matched again: its delivery exists already
    assert len(await scheduled(store)) == 1


async def test_with_no_automation_the_log_is_skipped_and_a_new_one_starts_from_there(store, clock) -> None:
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="before-any-rule")
    matcher = matcher_for(store, clock)
    assert await matcher.step(clock()) == 0  # idle: nothing enabled, the checkpoint jumps to the head

    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    assert await matcher.step(clock()) == 0  # the failure before the rule is not matched by it
    after = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-the-rule")
    assert await matcher.step(clock()) == 1
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == after


async def test_an_idle_round_reads_the_automations_again_only_after_an_automation_event(
    store, clock, monkeypatch
) -> None:
    from runlog.notifier import matcher as matcher_module

    reads: list[int] = []
    every = matcher_module.automation_reads.every_automation

    async def counted(tx):  # type: ignore[no-untyped-def]
        reads.append(1)
        return await every(tx)

    monkeypatch.setattr(matcher_module.automation_reads, "every_automation", counted)
    matcher = matcher_for(store, clock)
    assert await matcher.step(clock()) == 0  # idle: nothing enabled
    for name in ("one", "two"):
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
        assert await matcher.step(clock()) == 0
    assert len(reads) == 1, "rounds that skipped only run events read the automations once, at the start"

    # One idle round's range holds a failure before the rule, the rule, and a failure after it:
    # matching starts at the rule's event.
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="before-the-rule")
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    after = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-the-rule")
    assert await matcher.step(clock()) == 1  # the automation event in the skipped range: read again
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == after


async def test_an_automation_created_while_the_first_round_reads_none_is_not_skipped(store, clock, monkeypatch) -> None:
    # The first round reads the automations (none), and the automation is created before the
    # round goes idle: going idle must not skip its record, or the matcher would never read the
    # automations again (a server's matcher starting as a client creates its first automation).
    from runlog.notifier import matcher as matcher_module

    every = matcher_module.automation_reads.every_automation
    created: list[object] = []

    async def read_then_create(tx):  # type: ignore[no-untyped-def]
        read = await every(tx)
        if not created:
            created.append(await automations.create(store, failed_runs_of("daily-etl"), clock=clock))
        return read

    monkeypatch.setattr(matcher_module.automation_reads, "every_automation", read_then_create)
    matcher = matcher_for(store, clock)
    assert await matcher.step(clock()) == 0  # read none: idle
    assert created
    assert await matcher.step(clock()) == 0  # the automation's record found: read again
    after = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-the-rule")
    assert await matcher.step(clock()) == 1
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == after


async def test_an_idle_matcher_is_not_woken_by_each_append_but_a_matching_one_is(store, clock) -> None:
    matcher = matcher_for(store, clock)
    wake = matcher.service().wake
    assert await matcher.step(clock()) == 0  # idle
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="unwatched")
    with pytest.raises(TimeoutError):  # its rounds come at its interval, which the runner keeps
        await asyncio.wait_for(wake(), 0.2)

    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    assert await matcher.step(clock()) == 0  # not idle any more
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="watched")
    await asyncio.wait_for(wake(), 10)  # woken by the append
    assert await matcher.step(clock()) == 1


async def test_a_muted_automation_is_matched_once_its_mute_ends_while_the_matcher_was_idle(store, clock) -> None:
    automation = await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    until = clock() + timedelta(minutes=5)
    await automations.mute(store, automation.id, until, clock=clock)
    matcher = matcher_for(store, clock)
    assert await matcher.step(clock()) == 0  # idle: its one automation is muted
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="while-muted")
    assert await matcher.step(clock()) == 0
    assert await scheduled(store) == []

    clock.advance(minutes=6)  # no event says the mute ended: the time does
    assert await matcher.step(clock()) == 0
    after = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-the-mute")
    assert await matcher.step(clock()) == 1
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == after


async def test_a_threshold_window_survives_another_automation_being_created(store, clock) -> None:
    twice = failed_runs_of("daily-etl")
    twice.trigger.threshold, twice.trigger.within = 2, 3600.0
    twice.trigger.for_each = []
    await automations.create(store, twice, clock=clock)
    matcher = matcher_for(store, clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="first-of-two")
    assert await matcher.step(clock()) == 0  # one failure of the two the window needs

    await automations.create(store, failed_runs_of("unrelated"), clock=clock)  # the matcher reads them again
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="second-of-two")
    assert await matcher.step(clock()) == 1


async def test_the_checkpoint_is_written_at_most_once_a_second_and_a_restart_matches_the_rest_again(store, clock) -> None:
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="first")
    failed_at = await store.head()
    matcher = matcher_for(store, clock)
    assert await matcher.step(clock()) == 1
    saved = await checkpoint(store, NAME)
    # Written past the failure once its firing was recorded (the firing's own records, matched
    # while it was recorded, may come after the position written).
    assert failed_at <= saved <= await store.head()

    # Within the second: matched (and remembered), not written.
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="second")
    assert await matcher.step(clock()) == 1
    assert await checkpoint(store, NAME) == saved
    assert await matcher.step(clock()) == 0  # the matched position is kept here: not matched twice
    assert len(await scheduled(store)) == 2

    # A crash now: a new matcher goes on from the written checkpoint and schedules nothing twice.
    assert await matcher_for(store, clock).step(clock()) == 0
    assert len(await scheduled(store)) == 2

    # A second on, the position reached is written.
    clock.advance(1)
    await matcher.step(clock())
    assert await checkpoint(store, NAME) == await store.head()


async def test_state_events_no_rule_expects_are_not_built_and_a_rule_made_mid_page_counts_from_its_record(
    store, clock, monkeypatch,
) -> None:
    from runlog.projections import prefect_events

    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    matcher = matcher_for(store, clock)
    await matcher.step(clock())
    built: list[str] = []
    real = prefect_events.flow_run_state_event

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args[3].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(prefect_events, "flow_run_state_event", counted)
    await a_run_in(store, clock, StateType.COMPLETED, tags=["daily-etl"], name="before-the-rule")
    failures = failed_runs_of("daily-etl")
    completions = msgspec.structs.replace(
        failures, name="daily-etl completions",
        trigger=msgspec.structs.replace(failures.trigger, expect={"prefect.flow-run.Completed"}),
    )
    await automations.create(store, completions, clock=clock)  # in the same page as the runs around it
    after = await a_run_in(store, clock, StateType.COMPLETED, tags=["daily-etl"], name="after-the-rule")

    assert await matcher.step(clock()) == 1
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == after
    # Neither run's Pending or Running, nor the first one's Completed, was a state any rule expected.
    assert built == ["Completed"]
