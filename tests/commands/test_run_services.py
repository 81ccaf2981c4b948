"""The server's time-based services (late runs, pause expirations, cancellation cleanup): each
step called once with a fixed "now", on both backends, and the pure checks they rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from runlog.commands import flow_runs, flows, task_runs
from runlog.commands.cancellation_cleanup import (
    CANCELLING_TIMEOUT_MESSAGE,
    PARENT_CANCELLED_MESSAGE,
    cancelling_timed_out,
    clean_up_cancellations,
    subflow_target,
)
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.late_runs import mark_late_runs
from runlog.commands.orchestration import ProposedState, Status
from runlog.commands.pause_expirations import EXPIRED_MESSAGE, fail_expired_pauses, pause_expired
from runlog.commands.task_runs import NewTaskRun
from runlog.eventstore import open_store
from runlog.projections import runs_writer
from runlog.projections.registry import inline_projections
from runlog.projections.runs import FlowRunView
from runlog.schema.events import State, StateDetails, StateType

NOW = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)
S = StateType


def scheduled(at: datetime, name: str = "Scheduled") -> ProposedState:
    return ProposedState(type=S.SCHEDULED, name=name, state_details=StateDetails(scheduled_time=at))


async def new_run(store, clock, state: ProposedState | None = None, **fields) -> UUID:
    flow, _ = await flows.register(store, "services-flow", [], clock=clock)
    run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id, state=state, **fields), clock=clock)
    return run.id


async def move(store, clock, run_id: UUID, *states: ProposedState) -> None:
    for proposed in states:
        outcome = await flow_runs.set_state(store, run_id, proposed, clock=clock)
        assert outcome is not None and outcome[1].status is Status.ACCEPT, outcome
        clock.advance(1)


async def state_of(store, run_id: UUID) -> State:
    view = await runs_writer.get_flow_run(store, run_id)
    assert view is not None and view.state is not None
    return view.state


async def test_late_runs_marks_only_scheduled_runs_more_than_15s_overdue(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        overdue = await new_run(store, clock, scheduled(NOW - timedelta(seconds=16)))
        on_the_edge = await new_run(store, clock, scheduled(NOW - timedelta(seconds=14)))
        future = await new_run(store, clock, scheduled(NOW + timedelta(minutes=5)))
        retrying = await new_run(store, clock, scheduled(NOW - timedelta(minutes=5), "AwaitingRetry"))
        waiting_for_slot = await new_run(store, clock, scheduled(NOW - timedelta(minutes=5), "AwaitingConcurrencySlot"))
        pending = await new_run(store, clock)  # Pending, never scheduled

        assert await mark_late_runs(store, NOW) == 1

        late = await state_of(store, overdue)
        assert (late.type, late.name) == (S.SCHEDULED, "Late")
        assert late.state_details.scheduled_time == NOW - timedelta(seconds=16)  # the time it missed
        assert NOW <= late.timestamp < NOW + timedelta(seconds=1)  # kept after the run's last state
        for run_id, name in ((on_the_edge, "Scheduled"), (future, "Scheduled"), (retrying, "AwaitingRetry"),
                             (waiting_for_slot, "AwaitingConcurrencySlot")):
            assert (await state_of(store, run_id)).name == name
        assert (await state_of(store, pending)).type is S.PENDING
        view = await runs_writer.get_flow_run(store, overdue)
        assert view is not None and view.next_scheduled_start_time == NOW - timedelta(seconds=16)

        # A second round finds nothing new: a Late run is not marked twice.
        assert await mark_late_runs(store, NOW) == 0
        # The threshold is a setting.
        assert await mark_late_runs(store, NOW, after_seconds=10) == 1
        assert (await state_of(store, on_the_edge)).name == "Late"


async def test_pause_expirations_fail_only_paused_runs_whose_timeout_passed(store_url: str) -> None:
    clock = ManualClock(NOW - timedelta(hours=1))
    async with open_store(store_url, projections=inline_projections()) as store:
        def paused(until: datetime | None) -> ProposedState:
            return ProposedState(type=S.PAUSED, name="Paused", state_details=StateDetails(pause_timeout=until))

        expired = await new_run(store, clock)
        await move(store, clock, expired, ProposedState(type=S.RUNNING), paused(NOW - timedelta(seconds=1)))
        not_yet = await new_run(store, clock)
        await move(store, clock, not_yet, ProposedState(type=S.RUNNING), paused(NOW + timedelta(minutes=1)))
        forever = await new_run(store, clock)
        await move(store, clock, forever, ProposedState(type=S.RUNNING), paused(None))

        assert await fail_expired_pauses(store, NOW) == 1

        failed = await state_of(store, expired)
        assert (failed.type, failed.message) == (S.FAILED, EXPIRED_MESSAGE)
        assert (await state_of(store, not_yet)).type is S.PAUSED
        assert (await state_of(store, forever)).type is S.PAUSED
        assert await fail_expired_pauses(store, NOW) == 0


async def test_cancellation_cleanup_cancels_subflows_task_runs_and_timed_out_cancelling(store_url: str) -> None:
    clock = ManualClock(NOW - timedelta(minutes=10))
    async with open_store(store_url, projections=inline_projections()) as store:
        parent = await new_run(store, clock)
        await move(store, clock, parent, ProposedState(type=S.RUNNING))
        task, _ = await task_runs.create(store, NewTaskRun(task_key="child", dynamic_key="0", flow_run_id=parent),
                                         clock=clock)
        await task_runs.set_state(store, task.id, ProposedState(type=S.RUNNING), clock=clock)
        subflow_task, _ = await task_runs.create(
            store, NewTaskRun(task_key="sub", dynamic_key="0", flow_run_id=parent), clock=clock,
        )
        subflow = await new_run(store, clock, parent_task_run_id=subflow_task.id)
        await move(store, clock, subflow, ProposedState(type=S.RUNNING))

        stuck = await new_run(store, clock)  # Cancelling for longer than the timeout
        await move(store, clock, stuck, ProposedState(type=S.RUNNING), ProposedState(type=S.CANCELLING))
        clock.set(NOW - timedelta(seconds=100))
        recent = await new_run(store, clock)  # Cancelling, but only for 100 s
        await move(store, clock, recent, ProposedState(type=S.RUNNING), ProposedState(type=S.CANCELLING))

        # Nothing of the parent is touched while it runs.
        clock.set(NOW - timedelta(seconds=10))
        before = await clean_up_cancellations(store, NOW - timedelta(seconds=10))
        assert before == {"task_runs_cancelled": 0, "subflows_cancelled": 0, "cancelling_timed_out": 1}
        assert (await state_of(store, stuck)).message == CANCELLING_TIMEOUT_MESSAGE
        assert (await state_of(store, stuck)).type is S.CANCELLED
        assert (await state_of(store, recent)).type is S.CANCELLING
        assert (await state_of(store, subflow)).type is S.RUNNING

        await move(store, clock, parent, ProposedState(type=S.CANCELLING), ProposedState(type=S.CANCELLED))
        done = await clean_up_cancellations(store, NOW)
        # Both open task runs of the parent: the task and the one that stands for the subflow.
        assert done == {"task_runs_cancelled": 2, "subflows_cancelled": 1, "cancelling_timed_out": 0}
        sub_state = await state_of(store, subflow)
        assert (sub_state.type, sub_state.message) == (S.CANCELLED, PARENT_CANCELLED_MESSAGE)
        child = await runs_writer.get_task_run(store, task.id)
        assert child is not None and child.state is not None
        assert (child.state.type, child.state.message) == (S.CANCELLED, PARENT_CANCELLED_MESSAGE)

        # The run Cancelling for 100 s times out once 300 s have passed since it began.
        done = await clean_up_cancellations(store, NOW + timedelta(seconds=201))
        assert done["cancelling_timed_out"] == 1
        assert (await state_of(store, recent)).type is S.CANCELLED
        assert await clean_up_cancellations(store, NOW + timedelta(seconds=300)) == {
            "task_runs_cancelled": 0, "subflows_cancelled": 0, "cancelling_timed_out": 0,
        }


def _view(state: State | None, deployment: bool = False) -> FlowRunView:
    return FlowRunView(
        id=UUID(int=1), created=NOW, updated=NOW, name="r", flow_id=UUID(int=2), state=state,
        deployment_id=UUID(int=3) if deployment else None,
    )


def _state(type_: StateType, at: datetime = NOW, **details) -> State:
    return State(id=UUID(int=9), type=type_, name=type_.value.title(), timestamp=at,
                 state_details=StateDetails(**details))


@pytest.mark.parametrize(
    ("state", "deployment", "target"),
    [
        (_state(S.RUNNING), False, S.CANCELLED),
        (_state(S.RUNNING), True, S.CANCELLING),
        (_state(S.CANCELLING), True, None),
        (_state(S.CANCELLING), False, S.CANCELLED),
        (_state(S.PAUSED), False, S.CANCELLED),
    ],
)
def test_a_subflow_of_a_cancelled_run_is_cancelled_or_handed_to_its_worker(state, deployment, target) -> None:
    assert subflow_target(_view(state, deployment)) is target


@pytest.mark.parametrize(
    ("state", "now", "expired"),
    [
        (_state(S.PAUSED, pause_timeout=NOW), NOW, False),  # Prefect: strictly before now
        (_state(S.PAUSED, pause_timeout=NOW - timedelta(microseconds=1)), NOW, True),
        (_state(S.PAUSED), NOW + timedelta(days=365), False),  # no timeout: paused forever
        (_state(S.RUNNING, pause_timeout=NOW - timedelta(hours=1)), NOW, False),
        (None, NOW, False),
    ],
)
def test_a_pause_expires_strictly_after_its_timeout(state, now, expired) -> None:
    assert pause_expired(_view(state), now) is expired


@pytest.mark.parametrize(
    ("since", "timed_out"), [(299.999, False), (300.0, True), (301.0, True)],
)
def test_cancelling_times_out_after_300_seconds(since: float, timed_out: bool) -> None:
    run = _view(_state(S.CANCELLING, at=NOW))
    assert cancelling_timed_out(run, NOW + timedelta(seconds=since), 300.0) is timed_out
    assert not cancelling_timed_out(_view(_state(S.RUNNING)), NOW + timedelta(days=1), 300.0)
