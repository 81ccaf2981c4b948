"""Trigger windows survive a restart, on both backends with a manual clock: a new matcher over
the same store rebuilds the open windows from the log (a threshold half counted, a proactive
wait under way) and fires them exactly once; windows that had ended are not opened again."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from runlog.commands import automations, flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.orchestration import ProposedState
from runlog.notifier.matcher import _first_recorded_since
from runlog.schema.automations import AutomationDefinition
from runlog.schema.events import StateType

from .test_matcher import CHANNEL, a_run_in, failed_runs_of, matcher_for, scheduled


def three_failures_within_a_minute() -> AutomationDefinition:
    rule = failed_runs_of("daily-etl")
    rule.trigger.threshold, rule.trigger.within, rule.trigger.for_each = 3, 60.0, []
    return rule


def running_without_completing_within_a_minute() -> AutomationDefinition:
    return msgspec.convert({
        "name": "stuck runs", "enabled": True,
        "trigger": {
            "type": "event", "id": str(uuid.uuid4()), "posture": "Proactive", "threshold": 1, "within": 60,
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
        },
        "actions": [{"type": "send-notification", "block_document_id": str(CHANNEL), "subject": "stuck",
                     "body": "{{ event.resource['prefect.resource.name'] }} did not complete"}],
    }, AutomationDefinition)


async def a_running_run(store, clock: ManualClock, name: str) -> uuid.UUID:
    flow, _ = await flows.register(store, "etl", [], clock=clock)
    run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id, name=name), clock=clock)
    for step in (StateType.PENDING, StateType.RUNNING):
        await flow_runs.set_state(store, run.id, ProposedState(type=step), clock=clock)
    return run.id


async def test_a_threshold_half_counted_before_a_restart_fires_once_at_its_third_event(store, clock) -> None:
    await automations.create(store, three_failures_within_a_minute(), clock=clock)
    before = matcher_for(store, clock)
    for name in ("first", "second"):
        clock.advance(10)
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
        assert await before.step(clock()) == 0

    restarted = matcher_for(store, clock)  # a new process over the same store: nothing in memory
    assert await restarted.step(clock()) == 0
    clock.advance(10)
    third = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="third")
    assert await restarted.step(clock()) == 1
    assert await restarted.step(clock.advance(1)) == 0
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == third


async def test_a_matcher_leading_again_rebuilds_what_the_other_leader_counted(store, clock) -> None:
    """Two processes on one database: the leader moves between them. The one leading again
    finds the checkpoint moved by the other and rebuilds its windows from the log."""
    await automations.create(store, three_failures_within_a_minute(), clock=clock)
    first, second = matcher_for(store, clock), matcher_for(store, clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="seen-by-first")
    assert await first.step(clock.advance(1)) == 0
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="seen-by-second")
    assert await second.step(clock.advance(1)) == 0

    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="third")
    assert await first.step(clock.advance(1)) == 1  # it counted one itself, the log has three
    assert len(await scheduled(store)) == 1


async def test_a_proactive_wait_under_way_at_a_restart_fires_once_at_the_window_end(store, clock) -> None:
    await automations.create(store, running_without_completing_within_a_minute(), clock=clock)
    run_id = await a_running_run(store, clock, "stuck-otter")
    before = matcher_for(store, clock)
    assert await before.step(clock()) == 0
    clock.advance(30)
    assert await before.step(clock()) == 0  # half-way: the Completed event may still come

    restarted = matcher_for(store, clock)
    assert await restarted.step(clock()) == 0
    clock.advance(29)
    assert await restarted.step(clock()) == 0  # a second before the window ends
    clock.advance(2)
    assert await restarted.step(clock()) == 1  # it ended with no Completed event
    assert await restarted.step(clock.advance(1)) == 0
    [delivery] = await scheduled(store)
    assert delivery.scheduled.flow_run_id == run_id
    assert delivery.scheduled.body == "stuck-otter did not complete"


async def test_a_proactive_window_that_fired_is_not_fired_again_by_a_later_restart(store, clock) -> None:
    await automations.create(store, running_without_completing_within_a_minute(), clock=clock)
    await a_running_run(store, clock, "fired-once")
    before = matcher_for(store, clock)
    assert await before.step(clock()) == 0
    assert await before.step(clock.advance(61)) == 1

    for later in (1, 60, 600):
        clock.advance(later)
        assert await matcher_for(store, clock).step(clock()) == 0
    assert len(await scheduled(store)) == 1


async def test_a_run_completing_in_time_cancels_the_rebuilt_wait(store, clock) -> None:
    await automations.create(store, running_without_completing_within_a_minute(), clock=clock)
    run_id = await a_running_run(store, clock, "completes")
    assert await matcher_for(store, clock).step(clock()) == 0

    restarted = matcher_for(store, clock)
    assert await restarted.step(clock.advance(20)) == 0
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.COMPLETED), clock=clock)
    assert await restarted.step(clock.advance(1)) == 0
    assert await restarted.step(clock.advance(120)) == 0
    assert await scheduled(store) == []


async def test_failures_of_an_expired_window_do_not_count_after_a_restart(store, clock) -> None:
    await automations.create(store, three_failures_within_a_minute(), clock=clock)
    before = matcher_for(store, clock)
    for name in ("old-one", "old-two"):
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
        assert await before.step(clock()) == 0

    clock.advance(120)  # their window ended a minute ago
    restarted = matcher_for(store, clock)
    assert await restarted.step(clock()) == 0
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="new-one")
    assert await restarted.step(clock()) == 0
    assert await scheduled(store) == []


async def test_failures_before_the_automation_existed_do_not_count_after_a_restart(store, clock) -> None:
    for name in ("earlier-one", "earlier-two"):
        await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name=name)
    assert await matcher_for(store, clock).step(clock()) == 0  # no automation yet: skipped
    await automations.create(store, three_failures_within_a_minute(), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-one")
    assert await matcher_for(store, clock).step(clock()) == 0

    restarted = matcher_for(store, clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-two")
    assert await restarted.step(clock()) == 0  # two of three: the earlier failures are not counted
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="after-three")
    assert await restarted.step(clock()) == 1


async def test_the_look_back_starts_at_the_first_record_recorded_within_it(store, clock) -> None:
    """The records recorded more than the look-back before the checkpoint's are not read. The
    only real-time wait: recording times are the database's, not the injected clock's."""
    await flows.register(store, "old", [], clock=clock)
    await flows.register(store, "older", [], clock=clock)
    await asyncio.sleep(1.5)
    await flows.register(store, "recent", [], clock=clock)
    head = await store.head()
    await flows.register(store, "recent-too", [], clock=clock)
    head_too = await store.head()

    recorded = {r.position: r.recorded_at async for r in store.read_all()}
    apart = (recorded[head_too] - recorded[head]).total_seconds()
    assert await _first_recorded_since(store, head_too, apart + 0.5) == head  # "old" is 1.5 s before "recent"
    assert await _first_recorded_since(store, head_too, 3600.0) == 1
    assert await _first_recorded_since(store, head, 0.0) <= head
