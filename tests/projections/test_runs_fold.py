"""The flow-run fold does Prefect's global bookkeeping; table-driven, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from runlog.projections.runs import FlowRunView, estimated_run_time, estimated_start_time_delta, evolve_flow_run
from runlog.schema.events import FlowRunCreated, FlowRunDeleted, FlowRunStateChanged, FlowRunUpdated, State, StateDetails, StateType

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RUN = uuid4()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def state(type_: StateType, seconds: float, name: str | None = None, **details) -> State:
    return State(id=uuid4(), type=type_, name=name or type_.value.title(), timestamp=at(seconds),
                 state_details=StateDetails(**details))


def fold(*states: State, policy: dict | None = None) -> FlowRunView:
    view = evolve_flow_run(None, FlowRunCreated(flow_run_id=RUN, flow_id=uuid4(), name="r", created=T0,
                                                empirical_policy=policy or {}), 1)
    for n, s in enumerate(states, start=2):
        view = evolve_flow_run(view, FlowRunStateChanged(flow_run_id=RUN, state=s), n)
    assert view is not None
    return view


def test_created_run_has_no_state_and_the_creation_time():
    view = fold()
    assert (view.state, view.created, view.run_count, view.version) == (None, T0, 0, 1)


def test_start_time_is_set_once_on_first_running_and_run_count_counts_runnings():
    view = fold(state(StateType.PENDING, 0), state(StateType.RUNNING, 1), state(StateType.SCHEDULED, 2, "AwaitingRetry",
                scheduled_time=at(3)), state(StateType.RUNNING, 3))
    assert view.start_time == at(1) and view.run_count == 2 and view.version == 5


def test_total_run_time_adds_every_running_stretch():
    view = fold(state(StateType.RUNNING, 0), state(StateType.SCHEDULED, 2, scheduled_time=at(5)),
                state(StateType.RUNNING, 5), state(StateType.COMPLETED, 6.5))
    assert view.total_run_time == pytest.approx(3.5)


def test_end_time_is_set_on_a_final_state_and_cleared_when_leaving_it():
    done = fold(state(StateType.RUNNING, 0), state(StateType.FAILED, 4))
    assert done.end_time == at(4)
    again = evolve_flow_run(done, FlowRunStateChanged(flow_run_id=RUN, state=state(StateType.SCHEDULED, 5)), 9)
    assert again is not None and again.end_time is None


def test_a_run_that_fails_before_running_gets_start_and_end_time():
    view = fold(state(StateType.PENDING, 0), state(StateType.FAILED, 1))
    assert view.start_time == at(1) == view.end_time


def test_expected_start_time_comes_from_the_first_state_and_never_changes():
    view = fold(state(StateType.SCHEDULED, 0, scheduled_time=at(60)), state(StateType.PENDING, 61))
    assert view.expected_start_time == at(60)
    other = fold(state(StateType.PENDING, 2), state(StateType.SCHEDULED, 3, scheduled_time=at(99)))
    assert other.expected_start_time == at(2)


def test_next_scheduled_start_time_follows_scheduled_states():
    view = fold(state(StateType.SCHEDULED, 0, scheduled_time=at(30)))
    assert view.next_scheduled_start_time == at(30)
    view = evolve_flow_run(view, FlowRunStateChanged(flow_run_id=RUN, state=state(StateType.PENDING, 31)), 3)
    assert view is not None and view.next_scheduled_start_time is None


def test_resuming_from_a_pause_does_not_count_as_a_run_and_clears_the_flag():
    view = fold(state(StateType.RUNNING, 0), state(StateType.PAUSED, 1))
    resumed = evolve_flow_run(
        view, FlowRunStateChanged(flow_run_id=RUN, state=state(StateType.RUNNING, 2),
                                  empirical_policy={**view.empirical_policy, "resuming": True}), 4)
    assert resumed is not None and resumed.run_count == 1 and resumed.empirical_policy["resuming"] is False


def test_a_state_change_may_carry_the_new_policy():
    view = fold(state(StateType.RUNNING, 0))
    after = evolve_flow_run(view, FlowRunStateChanged(
        flow_run_id=RUN, state=state(StateType.SCHEDULED, 1, "AwaitingRetry", scheduled_time=at(2)),
        empirical_policy={"retries": 1, "retry_type": "in_process"}), 3)
    assert after is not None and after.empirical_policy["retry_type"] == "in_process"


def test_updates_replace_fields_and_delete_removes_the_view():
    view = fold(state(StateType.PENDING, 0))
    updated = evolve_flow_run(view, FlowRunUpdated(flow_run_id=RUN, changes={"name": "renamed", "tags": ["a"]}), 3)
    assert updated is not None and (updated.name, updated.tags, updated.version) == ("renamed", ["a"], 3)
    assert evolve_flow_run(updated, FlowRunDeleted(flow_run_id=RUN), 4) is None


def test_estimates_are_computed_at_read_time():
    running = fold(state(StateType.SCHEDULED, 0, scheduled_time=at(10)), state(StateType.RUNNING, 15))
    assert estimated_run_time(running, at(20)) == pytest.approx(5)
    assert estimated_start_time_delta(running, at(20)) == pytest.approx(5)
    waiting = fold(state(StateType.SCHEDULED, 0, scheduled_time=at(10)))
    assert estimated_start_time_delta(waiting, at(25)) == pytest.approx(15)
    assert estimated_start_time_delta(waiting, at(5)) == 0


def test_clearing_the_runs_queue_drops_queue_and_pool_but_only_for_the_queue_named():
    from runlog.schema.events import FlowRunWorkQueueCleared

    queue, pool, other = uuid4(), uuid4(), uuid4()
    created = FlowRunCreated(flow_run_id=uuid4(), flow_id=uuid4(), name="r", created=datetime(2026, 3, 1, tzinfo=UTC),
                             work_queue_name="fast", work_pool_name="p", work_queue_id=queue, work_pool_id=pool)
    view = evolve_flow_run(None, created, 1)
    assert view is not None
    untouched = evolve_flow_run(view, FlowRunWorkQueueCleared(flow_run_id=view.id, work_queue_id=other), 2)
    assert untouched is not None and (untouched.work_queue_id, untouched.version) == (queue, 2)
    cleared = evolve_flow_run(view, FlowRunWorkQueueCleared(flow_run_id=view.id, work_queue_id=queue), 2)
    assert cleared is not None and cleared.version == 2
    assert (cleared.work_queue_id, cleared.work_pool_id, cleared.work_pool_name, cleared.work_queue_name) == (
        None, None, None, "fast")
@pytest.mark.parametrize("snapshot", [
    {"name": "a", "task_key": "k", "start_time": "2026-01-01T00:00:00", "tags": ["x"], "run_count": "3", "other": 1},
    {"name": "a", "task_key": None, "start_time": "2026-01-01T00:00:00+01:00", "run_count": 2.0,
     "total_run_time": "1.5"},
    {"name": 5, "tags": "not a list", "empirical_policy": {"a": 1}, "cache_expiration": None, "labels": None},
    {"id": "x", "version": 3, "flow_run_id": "y", "state": {}, "expected_start_time": "2026-01-01"},
    {"run_count": True, "flow_run_run_count": "x", "next_scheduled_start_time": 12345},
    {},
])
def test_a_task_run_snapshot_converts_at_once_as_field_by_field(snapshot):
    """The one-conversion path keeps the field-by-field rules: unknown and invalid fields left
    out (the rest kept), naive times read as UTC."""
    from runlog.projections.runs import _task_fields, _task_fields_one_by_one

    assert _task_fields(snapshot) == _task_fields_one_by_one(snapshot)
