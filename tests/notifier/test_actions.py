"""Automation actions carried out by the matcher, on both backends with a manual clock: the
flow-run actions change the triggering run's state as Prefect's actions do, once even when the
page is matched again; call-webhook calls the webhook block; and every firing and action shows
as Prefect's automation events in the derived event stream."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from runlog.commands import automations, flow_runs, flows
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.clock import ManualClock
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import RowChanges
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.sending import ChannelSender
from runlog.notifier.seams import Channel
from runlog.projections.checkpoints import CHECKPOINTS
from runlog.projections.prefect_events import Derivation, PrefectEvent
from runlog.projections.runs_writer import get_flow_run
from runlog.schema.automations import AutomationDefinition
from runlog.schema.events import StateType, decode

from .conftest import one_round
from .test_matcher import matcher_for, scheduled


def on_states(states: list[str], actions: list[dict[str, Any]], *, tag: str = "daily-etl") -> AutomationDefinition:
    return msgspec.convert({
        "name": f"on {'/'.join(states)}",
        "trigger": {
            "type": "event", "id": str(uuid.uuid4()), "posture": "Reactive", "threshold": 1, "within": 0,
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{tag}"},
            "expect": [f"prefect.flow-run.{state}" for state in states],
        },
        "actions": actions,
    }, AutomationDefinition)


async def states_of(store, run_id: uuid.UUID) -> list[tuple[str, str | None, str | None]]:
    return [(r.type, *_state(r)) async for r in store.read_stream(f"flow-run-{run_id}") if r.type == "flow_run.state_changed"]


def _state(record) -> tuple[str | None, str | None]:
    state = decode(record.data).state
    return state.name, state.message


async def a_run_in(
    store, clock: ManualClock, state: StateType, *, tags: list[str], name: str, deployment_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A new run moved through Pending and Running up to ``state`` (each state once)."""
    flow, _ = await flows.register(store, "etl", [], clock=clock)
    body = NewFlowRun(flow_id=flow.id, name=name, tags=tags, deployment_id=deployment_id)
    run, _ = await flow_runs.create(store, body, clock=clock)
    for step in (StateType.RUNNING, state)[: 1 if state is StateType.RUNNING else 2]:
        await flow_runs.set_state(store, run.id, ProposedState(type=step), clock=clock)
    return run.id


async def feed(store) -> list[PrefectEvent]:
    derivation = Derivation(store)
    return [event async for record in store.read_all() for event in await derivation.events_of(record)]


def named(events: list[PrefectEvent], prefix: str) -> list[PrefectEvent]:
    return [e for e in events if e.event.startswith(prefix)]


async def rewind_and_match_again(store, clock: ManualClock) -> int:
    """A restart that lost the checkpoint's last move: a new matcher reads the log from the start."""
    rewind = RowChanges()
    rewind.upsert(CHECKPOINTS, ("notifier-matcher", 0))
    await store.write_tables(rewind)
    return await matcher_for(store, clock).step(clock())


async def test_cancel_flow_run_cancels_the_triggering_run_once(store, clock) -> None:
    automation = await automations.create(store, on_states(["Running"], [{"type": "cancel-flow-run"}]), clock=clock)
    running = await a_run_in(store, clock, StateType.RUNNING, tags=["daily-etl"], name="busy-otter")
    other = await a_run_in(store, clock, StateType.RUNNING, tags=["other"], name="calm-heron")

    await matcher_for(store, clock).step(clock())
    run = await get_flow_run(store, running)
    assert run is not None and run.state is not None
    # A running run has infrastructure to tear down: Cancelling, as Prefect proposes it (not forced).
    assert run.state.type is StateType.CANCELLING
    assert run.state.message == f"Cancelled by Automation {automation.id}"
    untouched = await get_flow_run(store, other)
    assert untouched is not None and untouched.state is not None and untouched.state.type is StateType.RUNNING

    before = await states_of(store, running)
    await rewind_and_match_again(store, clock)
    assert await states_of(store, running) == before, "the action ran once"
    events = await feed(store)
    assert len(named(events, "prefect.automation.triggered")) == 1
    assert len(named(events, "prefect.automation.action.executed")) == 1


async def test_cancel_flow_run_of_a_scheduled_run_without_infrastructure_cancels_it(store, clock) -> None:
    await automations.create(store, on_states(["Scheduled"], [{"type": "cancel-flow-run"}]), clock=clock)
    run_id = await a_run_in(store, clock, StateType.PENDING, tags=["daily-etl"], name="early-bird")
    await flow_runs.set_state(store, run_id, ProposedState(type=StateType.SCHEDULED), force=True, clock=clock)

    await matcher_for(store, clock).step(clock())
    run = await get_flow_run(store, run_id)
    assert run is not None and run.state is not None and run.state.type is StateType.CANCELLED


async def test_change_flow_run_state_with_its_name_message_and_force(store, clock) -> None:
    action = {"type": "change-flow-run-state", "state": "SCHEDULED", "name": "AwaitingRetry",
              "message": "retried by ops", "force": True}
    await automations.create(store, on_states(["Failed"], [action]), clock=clock)
    run_id = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="flaky-lynx")

    await matcher_for(store, clock).step(clock())
    run = await get_flow_run(store, run_id)
    assert run is not None and run.state is not None
    assert (run.state.type, run.state.name, run.state.message) == (StateType.SCHEDULED, "AwaitingRetry", "retried by ops")

    before = await states_of(store, run_id)
    await rewind_and_match_again(store, clock)
    assert await states_of(store, run_id) == before


async def test_suspend_then_resume_through_two_automations(store, clock) -> None:
    suspend = await automations.create(store, on_states(["Running"], [{"type": "suspend-flow-run"}]), clock=clock)
    await automations.create(store, on_states(["Suspended"], [{"type": "resume-flow-run"}]), clock=clock)
    # Only a deployment's runs can be suspended (they are rescheduled to resume).
    run_id = await a_run_in(store, clock, StateType.RUNNING, tags=["daily-etl"], name="sleepy-yak",
                            deployment_id=uuid.uuid4())

    await matcher_for(store, clock).step(clock())
    history = await states_of(store, run_id)
    assert history[-2][1:] == ("Suspended", f"Suspended by Automation {suspend.id}")
    run = await get_flow_run(store, run_id)
    assert run is not None and run.state is not None
    # A suspended run resumes as Prefect's resume route does: scheduled again, "Resuming".
    assert (run.state.type, run.state.name) == (StateType.SCHEDULED, "Resuming")


async def test_a_failed_action_is_reported_with_prefects_reason(store, clock) -> None:
    automation = await automations.create(
        store, on_states(["Failed"], [{"type": "resume-flow-run"}, {"type": "do-nothing"}]), clock=clock,
    )
    run_id = await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="sad-panda")
    await matcher_for(store, clock).step(clock())

    events = await feed(store)
    [fired] = named(events, "prefect.flow-run.Failed")
    [triggered] = named(events, "prefect.automation.triggered")
    assert triggered.resource == {"prefect.resource.id": f"prefect.automation.{automation.id}",
                                  "prefect.resource.name": "on Failed", "prefect.posture": "Reactive"}
    assert triggered.related == [{"prefect.resource.id": f"prefect.event.{fired.id}",
                                  "prefect.resource.role": "triggering-event"}]
    assert triggered.payload["triggering_event"]["id"] == str(fired.id)
    assert triggered.payload["triggering_labels"] == {}

    resume, nothing = named(events, "prefect.automation.action.triggered")
    assert resume.resource == {**triggered.resource, "prefect.trigger-type": "event"}
    assert resume.payload["action_index"] == 0 and resume.payload["action_type"] == "resume-flow-run"
    assert resume.follows == fired.id
    assert resume.related == [
        {"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "target"},
        {"prefect.resource.id": f"prefect.event.{triggered.id}", "prefect.resource.role": "automation-triggered-event"},
        {"prefect.resource.id": f"prefect.event.{fired.id}", "prefect.resource.role": "triggering-event"},
    ]
    [failed] = named(events, "prefect.automation.action.failed")
    assert failed.follows == resume.id and failed.related == resume.related
    assert failed.payload["reason"] == "Failed to resume flow run: Cannot resume a flow run that is not paused."
    assert failed.payload["invocation"] == resume.payload["invocation"]
    [executed] = named(events, "prefect.automation.action.executed")
    assert executed.payload["action_type"] == "do-nothing" and executed.follows == nothing.id


async def test_notification_outcomes_show_as_executed_and_failed(store, clock, channels, dispatcher, rcv) -> None:
    good, gone = channels.add(rcv.url + "/good"), channels.add(rcv.url + "/gone")
    actions = [{"type": "send-notification", "block_document_id": str(channel), "body": "{{ flow_run.name }}"}
               for channel in (good, gone)]
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="loud-crane")
    rcv.script((200, {}, b"ok"), (404, {}, b"no such hook"))
    await matcher_for(store, clock).step(clock())
    assert len(await scheduled(store)) == 2
    assert len(named(await feed(store), "prefect.automation.action.triggered")) == 2
    assert named(await feed(store), "prefect.automation.action.executed") == []  # not sent yet

    await one_round(dispatcher, clock)
    events = await feed(store)
    assert sorted(s.path for s in rcv.seen) == ["/gone", "/good"]
    [executed] = named(events, "prefect.automation.action.executed")
    [failed] = named(events, "prefect.automation.action.failed")
    by_index = {e.payload["action_index"]: e for e in named(events, "prefect.automation.action.triggered")}
    gone_index = 0 if rcv.seen[0].path == "/gone" else 1
    dead_at = by_index[gone_index]
    assert failed.follows == dead_at.id and "HTTP 404" in failed.payload["reason"]
    assert executed.follows == by_index[1 - gone_index].id


async def test_call_webhook_calls_the_webhook_block_with_the_rendered_payload(store, clock, channels, rcv) -> None:
    hook = uuid.uuid4()
    channels.known[hook] = Channel("webhook", {"url": rcv.url + "/hook", "method": "PUT",
                                               "headers": {"Authorization": "Bearer t0ken"}})
    action = {"type": "call-webhook", "block_document_id": str(hook),
              "payload": '{"run": "{{ flow_run.name }}", "state": "{{ flow_run.state.name }}"}'}
    await automations.create(store, on_states(["Crashed"], [action]), clock=clock)
    await a_run_in(store, clock, StateType.CRASHED, tags=["daily-etl"], name="lost-ibis")
    await matcher_for(store, clock).step(clock())

    dispatcher = Dispatcher(store, ChannelSender(timeout=5), channels, clock=clock, draw=lambda: 1.0)
    try:
        await one_round(dispatcher, clock)
    finally:
        await dispatcher.aclose()
    [seen] = rcv.seen
    assert (seen.method, seen.path, seen.headers["Authorization"]) == ("PUT", "/hook", "Bearer t0ken")
    assert seen.json() == {"run": "lost-ibis", "state": "Crashed"}
    [executed] = named(await feed(store), "prefect.automation.action.executed")
    assert executed.payload["action_type"] == "call-webhook"


async def test_an_automation_never_matches_its_own_events(store, clock) -> None:
    # Expecting every event: its own triggered and action events must not fire it again.
    anything = msgspec.convert({
        "name": "everything", "actions": [{"type": "do-nothing"}],
        "trigger": {"type": "event", "id": str(uuid.uuid4()), "posture": "Reactive", "threshold": 1, "within": 0},
    }, AutomationDefinition)
    await automations.create(store, anything, clock=clock)
    await a_run_in(store, clock, StateType.COMPLETED, tags=[], name="one-run")
    await matcher_for(store, clock).step(clock())
    events = await feed(store)
    # Each of the run's states fires it; nothing else does.
    assert len(named(events, "prefect.automation.triggered")) == len(named(events, "prefect.flow-run.")) == 3



async def test_a_rule_with_three_channels_renders_each_message_from_the_one_firing(store, clock, channels, rcv) -> None:
    targets = [channels.add(rcv.url + f"/{n}") for n in range(3)]
    actions = [{"type": "send-notification", "block_document_id": str(channel),
                "body": f"{n}: {{{{ flow.name }}}}/{{{{ flow_run.name }}}} {{{{ flow_run.state.name }}}}"}
               for n, channel in enumerate(targets)]
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="three-way")
    assert await matcher_for(store, clock).step(clock()) == 3
    deliveries = await scheduled(store)
    assert sorted(d.scheduled.body for d in deliveries) == [f"{n}: etl/three-way Failed" for n in range(3)]
    assert sorted(d.channel_id for d in deliveries) == sorted(targets)
    assert len(named(await feed(store), "prefect.automation.action.triggered")) == 3
    assert await rewind_and_match_again(store, clock) == 0  # matched again: nothing twice
