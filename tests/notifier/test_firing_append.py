"""A firing's records in one multi-stream append, on both backends: the automation's triggered
event, each send's action.triggered and its delivery are stored together, next to each other in
the log; a firing partly recorded before is completed record by record, nothing twice."""

from __future__ import annotations

from runlog.commands import automations, deliveries
from runlog.schema.events import StateType

from .test_actions import a_run_in, feed, named, on_states
from .test_matcher import matcher_for, scheduled


async def test_a_firing_with_three_sends_is_recorded_in_one_append(store, clock, channels, rcv) -> None:
    targets = [channels.add(rcv.url + f"/{n}") for n in range(3)]
    actions = [{"type": "send-notification", "block_document_id": str(c), "body": "{{ flow_run.name }}"} for c in targets]
    actions.append({"type": "do-nothing"})
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="all-at-once")
    head = await store.head()
    assert await matcher_for(store, clock).step(clock()) == 3

    written = [record async for record in store.read_all(after=head)]
    # The firing and its three sends: one append, so seven records at consecutive positions, the
    # firing first and each action.triggered just before the delivery it is followed by.
    assert [r.position for r in written[:7]] == list(range(head + 1, head + 8))
    assert written[0].stream_id.startswith("resource-prefect.automation.")
    for n in range(3):
        action, delivery = written[1 + 2 * n], written[2 + 2 * n]
        assert action.type == written[0].type and delivery.type == "delivery.scheduled"
        assert action.stream_id.removeprefix("triggered-action-") == delivery.stream_id.removeprefix("delivery-")
    # The do-nothing action is claimed and finished after: not part of that append.
    assert len(written) == 9
    events = await feed(store)
    assert len(named(events, "prefect.automation.triggered")) == 1
    assert len(named(events, "prefect.automation.action.triggered")) == 4
    assert len(named(events, "prefect.automation.action.executed")) == 1  # do-nothing's


async def test_a_firing_whose_delivery_exists_already_schedules_only_the_missing_ones(store, clock, channels, rcv) -> None:
    targets = [channels.add(rcv.url + f"/{n}") for n in range(3)]
    actions = [{"type": "send-notification", "block_document_id": str(c), "body": "{{ flow_run.name }}"} for c in targets]
    automation = await automations.create(store, on_states(["Failed"], actions), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="half-made")
    # As if an earlier matcher had scheduled the second send of this firing and stopped there.
    [failed] = named(await feed(store), "prefect.flow-run.Failed")
    _view, created = await deliveries.schedule(
        store, rule_id=automation.id, channel_id=targets[1], event_id=failed.id, action_index=1,
        subject="", body="made before", clock=clock,
    )
    assert created
    assert await matcher_for(store, clock).step(clock()) == 2
    bodies = sorted(d.scheduled.body for d in await scheduled(store))
    assert bodies == ["half-made", "half-made", "made before"]
    events = await feed(store)
    assert len(named(events, "prefect.automation.triggered")) == 1
    assert len(named(events, "prefect.automation.action.triggered")) == 3
