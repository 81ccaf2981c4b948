"""decide_task_run against Prefect's CoreTaskPolicy, rule by rule, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlog.commands.orchestration import (
    Decision,
    ProposedState,
    Status,
    TaskRunContext,
    decide_task_run,
    holds_tag_slots,
)
from runlog.commands.orchestration.jitter import jitter_bounds
from runlog.commands.orchestration.task_rules import MAX_CACHE_KEY_LENGTH
from runlog.projections.runs import FlowRunView, TaskRunView
from runlog.projections.task_run_state_cache import CacheEntry
from runlog.schema.events import State, StateDetails, StateType

S = StateType
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
STATE_ID = uuid.UUID("00000000-0000-0000-0000-00000000cafe")
FLOW_RUN_ID = uuid.UUID("00000000-0000-0000-0000-0000000f1000")
PERSISTED = {"type": "reference", "storage_key": "/results/abc"}


def state(type_: StateType, name: str | None = None, *, data: Any = None, **details: Any) -> State:
    return State(id=uuid.uuid4(), type=type_, name=name or type_.value.capitalize(), timestamp=EARLIER,
                 data=data, state_details=StateDetails(**details))


def flow_run(current: State | None = None, run_count: int = 1) -> FlowRunView:
    return FlowRunView(id=FLOW_RUN_ID, created=EARLIER, updated=EARLIER, name="calm-heron", flow_id=uuid.uuid4(),
                       state=current, run_count=run_count)


RUNNING_FLOW = flow_run(state(S.RUNNING))


def task(current: State | None = None, *, policy: dict[str, Any] | None = None, run_count: int = 0,
         flow_run_run_count: int = 1, tags: list[str] | None = None, in_flow: bool = True) -> TaskRunView:
    return TaskRunView(id=uuid.uuid4(), created=EARLIER, updated=EARLIER, flow_run_id=FLOW_RUN_ID if in_flow else None,
                       task_key="say_hello", state=current, empirical_policy=policy or {}, run_count=run_count,
                       flow_run_run_count=flow_run_run_count, tags=tags or [])


def propose(type_: StateType, name: str | None = None, *, data: Any = None, message: str | None = None,
            **details: Any) -> ProposedState:
    return ProposedState(type=type_, name=name, data=data, message=message, state_details=StateDetails(**details))


def decide(view: TaskRunView, proposed: ProposedState, *, parent: FlowRunView | None = RUNNING_FLOW,
           **ctx: Any) -> Decision:
    return decide_task_run(view, proposed, TaskRunContext(now=NOW, state_id=STATE_ID, flow_run=parent, **ctx))


def outcome(decision: Decision) -> tuple[Status, StateType | None, str | None]:
    written = decision.state
    return decision.status, written.type if written else None, written.name if written else None


# Shaping -----------------------------------------------------------------------------------


def test_a_task_without_a_state_accepts_its_first_state_shaped_by_the_server() -> None:
    view = task()
    decision = decide(view, propose(S.PENDING))
    assert decision.status is Status.ACCEPT
    assert decision.state == State(id=STATE_ID, type=S.PENDING, name="Pending", timestamp=NOW,
                                   state_details=StateDetails(flow_run_id=FLOW_RUN_ID, task_run_id=view.id))


def test_a_task_outside_any_flow_runs_without_a_parent_check() -> None:
    decision = decide(task(state(S.PENDING), in_flow=False), propose(S.RUNNING), parent=None)
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, "Running")
    assert decision.state is not None and decision.state.state_details.flow_run_id is None


# HandleTaskTerminalStateTransitions --------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "proposed", "expected", "reason"),
    [
        pytest.param(state(S.COMPLETED), propose(S.CRASHED), (Status.ABORT, None, None), "Run is already COMPLETED.",
                     id="completed_to_crashed_aborts"),
        pytest.param(state(S.FAILED), propose(S.PAUSED), (Status.ABORT, None, None), "Run is already FAILED.",
                     id="failed_to_paused_aborts"),
        pytest.param(state(S.CANCELLED), propose(S.CANCELLING), (Status.ABORT, None, None), "Run is already CANCELLED.",
                     id="cancelled_to_cancelling_aborts"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), propose(S.RUNNING), (Status.REJECT, None, None),
                     "This run is already completed.", id="completed_with_result_cannot_rerun"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), propose(S.FAILED), (Status.REJECT, None, None),
                     "This run is already completed.", id="completed_with_result_cannot_even_fail"),
    ],
)
def test_a_finished_task_stays_finished(
    current: State, proposed: ProposedState, expected: tuple[Any, ...], reason: str
) -> None:
    decision = decide(task(current, run_count=1), proposed)
    assert outcome(decision) == expected
    assert decision.reason == reason


def test_rerunning_a_failed_task_restarts_its_run_count() -> None:
    decision = decide(task(state(S.FAILED), run_count=3), propose(S.RUNNING))
    # The count restarts at 0, so RenameReruns does not call it a rerun.
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, "Running")
    assert decision.reset_run_count is True


def test_a_task_rerun_by_a_flow_retry_is_retrying() -> None:
    view = task(state(S.FAILED), run_count=1, flow_run_run_count=1)
    decision = decide(view, propose(S.RUNNING), parent=flow_run(state(S.RUNNING), run_count=2))
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, "Retrying")
    assert (decision.reset_run_count, decision.flow_run_run_count) == (True, 2)


def test_moving_between_final_states_keeps_the_run_count() -> None:
    decision = decide(task(state(S.FAILED), run_count=2), propose(S.COMPLETED))
    assert outcome(decision) == (Status.ACCEPT, S.COMPLETED, "Completed")
    assert decision.reset_run_count is False


def test_a_finished_task_held_back_by_a_paused_flow_keeps_its_run_count() -> None:
    # The NotReady replacement means the reset's rule no longer governs what is written.
    decision = decide(task(state(S.FAILED), run_count=2), propose(S.RUNNING), parent=flow_run(state(S.PAUSED)))
    assert outcome(decision) == (Status.REJECT, S.PAUSED, "NotReady")
    assert decision.reset_run_count is False


# PreventRunningTasksFromStoppedFlows -------------------------------------------------------


def test_a_task_in_a_paused_flow_is_not_ready_until_the_flow_resumes() -> None:
    timeout = NOW + timedelta(hours=1)
    parent = flow_run(state(S.PAUSED, pause_timeout=timeout, pause_reschedule=True, pause_key="k"))
    decision = decide(task(state(S.PENDING)), propose(S.RUNNING), parent=parent)
    assert outcome(decision) == (Status.REJECT, S.PAUSED, "NotReady")
    assert decision.reason == f"The flow is paused, new tasks can execute after resuming flow run: {FLOW_RUN_ID}."
    assert decision.state is not None
    details = decision.state.state_details
    assert (details.pause_timeout, details.pause_reschedule, details.pause_key) == (timeout, True, None)
    assert decision.flow_run_run_count is None


@pytest.mark.parametrize(
    "parent",
    [
        pytest.param(flow_run(None), id="parent_without_state"),
        pytest.param(flow_run(state(S.COMPLETED)), id="parent_completed"),
        pytest.param(flow_run(state(S.SCHEDULED)), id="parent_scheduled"),
        pytest.param(flow_run(state(S.CANCELLING)), id="parent_cancelling"),
    ],
)
def test_a_task_cannot_run_unless_its_flow_is_running(parent: FlowRunView) -> None:
    decision = decide(task(state(S.PENDING)), propose(S.RUNNING), parent=parent)
    assert (decision.status, decision.state) == (Status.ABORT, None)
    assert decision.reason == "The enclosing flow must be running to begin task execution."


def test_a_stopped_flow_does_not_stop_a_task_from_finishing() -> None:
    decision = decide(task(state(S.RUNNING)), propose(S.COMPLETED), parent=flow_run(state(S.CANCELLED)))
    assert outcome(decision) == (Status.ACCEPT, S.COMPLETED, "Completed")


# SecureTaskConcurrencySlots ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ctx", "tags", "expected", "reason", "delay"),
    [
        pytest.param({"tag_limit_zero": True, "limited_tags": ["db"]}, ["db", "io"], Status.ABORT,
                     'The concurrency limit on tag "db" is 0 and will deadlock if the task tries to run again.', None,
                     id="zero_limit_aborts"),
        pytest.param({"tag_slots_acquired": False}, ["db"], Status.WAIT,
                     "Concurrency limit for the db tag has been reached", 10, id="full_limit_waits"),
        pytest.param({"tag_slots_acquired": False, "limited_tags": ["db", "io"], "tag_slot_wait_seconds": 30.0},
                     ["db", "io"], Status.WAIT, "Concurrency limit reached for tags: db, io", 30,
                     id="several_full_limits_wait_the_configured_time"),
        pytest.param({"tag_slots_acquired": True}, ["db"], Status.ACCEPT, None, None, id="slots_taken_runs"),
        pytest.param({}, [], Status.ACCEPT, None, None, id="no_limits_runs"),
    ],
)
def test_tag_concurrency_limits(
    ctx: dict[str, Any], tags: list[str], expected: Status, reason: str | None, delay: int | None
) -> None:
    decision = decide(task(state(S.PENDING), tags=tags), propose(S.RUNNING), **ctx)
    assert (decision.status, decision.reason, decision.delay_seconds) == (expected, reason, delay)
    assert holds_tag_slots(decision) is (expected is Status.ACCEPT)


def test_slots_are_given_back_when_a_later_rule_waits() -> None:
    current = state(S.SCHEDULED, scheduled_time=NOW + timedelta(seconds=20))
    decision = decide(task(current), propose(S.RUNNING), tag_slots_acquired=True)
    assert (decision.status, decision.delay_seconds) == (Status.WAIT, 20)
    assert holds_tag_slots(decision) is False


# CopyScheduledTime and WaitForScheduledTime ------------------------------------------------


def test_a_pending_task_keeps_its_scheduled_time() -> None:
    scheduled = NOW - timedelta(seconds=30)
    decision = decide(task(state(S.SCHEDULED, scheduled_time=scheduled)), propose(S.PENDING))
    assert decision.state is not None and decision.state.state_details.scheduled_time == scheduled


def test_a_task_waits_for_its_scheduled_time() -> None:
    decision = decide(task(state(S.SCHEDULED, scheduled_time=NOW + timedelta(seconds=5))), propose(S.RUNNING))
    assert (decision.status, decision.state, decision.delay_seconds) == (Status.WAIT, None, 5)
    assert decision.reason == "Scheduled time is in the future"


# RetryFailedTasks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_delay", "run_count", "delay"),
    [
        pytest.param(7, 1, 7, id="a_single_delay"),
        pytest.param(None, 1, 0, id="no_delay"),
        pytest.param([1, 10, 100], 1, 1, id="first_attempt_uses_the_first_delay"),
        pytest.param([1, 10, 100], 2, 10, id="second_attempt_uses_the_second_delay"),
        pytest.param([1, 10], 4, 10, id="later_attempts_repeat_the_last_delay"),
    ],
)
def test_a_failing_task_with_retries_left_awaits_its_retry(retry_delay: Any, run_count: int, delay: int) -> None:
    view = task(state(S.RUNNING), policy={"retries": 5, "retry_delay": retry_delay}, run_count=run_count)
    decision = decide(view, propose(S.FAILED, message="boom", data=PERSISTED))
    assert outcome(decision) == (Status.REJECT, S.SCHEDULED, "AwaitingRetry")
    assert decision.reason == "Retrying"
    assert decision.state is not None
    assert decision.state.state_details.scheduled_time == NOW + timedelta(seconds=delay)
    assert (decision.state.message, decision.state.data) == ("boom", PERSISTED)


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        pytest.param(0.0, jitter_bounds(10, 0.5)[0], id="the_lowest_draw_gives_the_lower_bound"),
        pytest.param(1.0, 15.0, id="the_highest_draw_gives_delay_times_one_plus_factor"),
        pytest.param(0.5, 9.728, id="a_middle_draw_falls_in_between"),
    ],
)
def test_retry_jitter_schedules_the_retry_at_the_clamped_interval_of_the_draw(draw: float, expected: float) -> None:
    view = task(state(S.RUNNING), policy={"retries": 1, "retry_delay": 10, "retry_jitter_factor": 0.5}, run_count=1)
    decision = decide(view, propose(S.FAILED), jitter_draw=draw)
    assert outcome(decision) == (Status.REJECT, S.SCHEDULED, "AwaitingRetry")
    assert decision.state is not None and decision.state.state_details.scheduled_time is not None
    delay = (decision.state.state_details.scheduled_time - NOW).total_seconds()
    assert delay == pytest.approx(expected, abs=1e-3)


def test_retry_jitter_applies_to_the_attempts_delay_from_a_list() -> None:
    policy = {"retries": 3, "retry_delay": [1, 100], "retry_jitter_factor": 0.2}
    decision = decide(task(state(S.RUNNING), policy=policy, run_count=2), propose(S.FAILED), jitter_draw=1.0)
    assert decision.state is not None and decision.state.state_details.scheduled_time is not None
    assert (decision.state.state_details.scheduled_time - NOW).total_seconds() == pytest.approx(120)


@pytest.mark.parametrize(
    ("policy", "delay"),
    [
        pytest.param({"retry_delay": 0, "retry_jitter_factor": 0.5}, 0, id="no_delay_no_jitter"),
        pytest.param({"retry_delay": 10, "retry_jitter_factor": None}, 10, id="no_factor"),
        pytest.param({"retry_delay": 10, "retry_jitter_factor": 0}, 10, id="zero_factor"),
        pytest.param({"retry_delay": 10, "retry_jitter_factor": -1}, 10, id="a_negative_factor_is_ignored"),
    ],
)
def test_retry_jitter_leaves_the_delay_alone_without_a_factor_or_a_delay(policy: dict[str, Any], delay: int) -> None:
    view = task(state(S.RUNNING), policy={"retries": 1, **policy}, run_count=1)
    decision = decide(view, propose(S.FAILED), jitter_draw=1.0)
    assert decision.state is not None
    assert decision.state.state_details.scheduled_time == NOW + timedelta(seconds=delay)


@pytest.mark.parametrize(
    ("policy", "run_count", "retriable"),
    [
        pytest.param({"retries": 2}, 3, None, id="retries_exhausted"),
        pytest.param({"retries": None}, 1, None, id="no_retries"),
        pytest.param({"retries": 0}, 1, None, id="zero_retries"),
        pytest.param({"retries": 2}, 1, False, id="not_retriable"),
    ],
)
def test_a_failing_task_without_a_retry_fails(policy: dict[str, Any], run_count: int, retriable: bool | None) -> None:
    decision = decide(task(state(S.RUNNING), policy=policy, run_count=run_count), propose(S.FAILED, retriable=retriable))
    assert outcome(decision) == (Status.ACCEPT, S.FAILED, "Failed")


# RenameReruns and UpdateFlowRunTrackerOnTasks ----------------------------------------------


@pytest.mark.parametrize(
    ("current", "run_count", "name"),
    [
        pytest.param(state(S.SCHEDULED, "AwaitingRetry", scheduled_time=EARLIER), 1, "Retrying",
                     id="after_awaiting_retry_it_is_retrying"),
        pytest.param(state(S.PENDING), 1, "Rerunning", id="a_second_run_is_rerunning"),
        pytest.param(state(S.PENDING), 0, "Running", id="a_first_run_is_running"),
    ],
)
def test_reruns_are_named(current: State, run_count: int, name: str) -> None:
    decision = decide(task(current, run_count=run_count), propose(S.RUNNING))
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, name)


def test_entering_running_records_the_flow_runs_attempt() -> None:
    decision = decide(task(state(S.PENDING)), propose(S.RUNNING), parent=flow_run(state(S.RUNNING), run_count=3))
    assert decision.flow_run_run_count == 3


def test_other_transitions_leave_the_flow_runs_attempt_alone() -> None:
    decision = decide(task(state(S.RUNNING)), propose(S.COMPLETED))
    assert decision.flow_run_run_count is None


# CacheRetrieval ----------------------------------------------------------------------------

OTHER_TASK_RUN = uuid.UUID("00000000-0000-0000-0000-00000000ca7e")
OTHER_FLOW_RUN = uuid.UUID("00000000-0000-0000-0000-00000000f10e")
CACHED = State(
    id=uuid.UUID("00000000-0000-0000-0000-0000000ca4ed"), type=S.COMPLETED, name="Completed", timestamp=EARLIER,
    message="All states completed.", data=PERSISTED,
    state_details=StateDetails(cache_key="k", cache_expiration=NOW + timedelta(hours=1), task_run_id=OTHER_TASK_RUN,
                               flow_run_id=OTHER_FLOW_RUN),
)


def cached(key: str = "k", expiration: datetime | None = NOW + timedelta(hours=1), *,
           state: State | None = CACHED) -> CacheEntry:
    return CacheEntry(cache_key=key, cache_expiration=expiration, task_run_id=OTHER_TASK_RUN, position=7, state=state)


HIT = (Status.REJECT, S.COMPLETED, "Cached")
RUNS = (Status.ACCEPT, S.RUNNING, "Running")


@pytest.mark.parametrize(
    ("current", "proposed", "entry", "ctx", "expected"),
    [
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(), {}, HIT, id="unexpired_entry"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(expiration=None), {}, HIT,
                     id="entry_without_expiration"),
        pytest.param(None, propose(S.RUNNING, cache_key="k"), cached(), {}, HIT, id="task_without_a_state"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"),
                     cached(expiration=(NOW + timedelta(seconds=1)).replace(tzinfo=None)), {}, HIT,
                     id="a_naive_expiration_is_utc"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), propose(S.RUNNING, cache_key="k"), cached(), {}, HIT,
                     id="before_the_terminal_state_check"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(), {"tag_slots_acquired": False}, HIT,
                     id="even_when_tag_slots_are_full"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k", deferred=True), cached(), {}, HIT,
                     id="background_task"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k", refresh_cache=True), cached(), {}, RUNS,
                     id="refresh_cache_runs"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(expiration=NOW), {}, RUNS,
                     id="expiring_now_is_expired"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(expiration=EARLIER), {}, RUNS,
                     id="expired_entry_runs"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), None, {}, RUNS, id="no_entry"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached("other"), {}, RUNS,
                     id="entry_for_another_key"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(state=None), {}, RUNS,
                     id="entry_of_a_deleted_task_run"),
        pytest.param(state(S.PENDING), propose(S.RUNNING), cached(), {}, RUNS, id="proposal_without_a_key"),
        pytest.param(state(S.PENDING), propose(S.RUNNING, cache_key="k"), cached(), {"force": True}, RUNS,
                     id="force_skips_it"),
        pytest.param(state(S.RUNNING), propose(S.COMPLETED, cache_key="k"), cached(), {},
                     (Status.ACCEPT, S.COMPLETED, "Completed"), id="only_running_is_answered_from_the_cache"),
    ],
)
def test_cache_retrieval(current: State | None, proposed: ProposedState, entry: CacheEntry | None,
                         ctx: dict[str, Any], expected: tuple[Any, ...]) -> None:
    decision = decide(task(current), proposed, cache_entry=entry, **ctx)
    assert outcome(decision) == expected
    if expected == HIT:
        assert decision.reason == "Retrieved state from cache"
        assert holds_tag_slots(decision) is False


def test_a_cache_hit_writes_a_fresh_copy_of_the_cached_state_for_this_run() -> None:
    view = task(state(S.PENDING), run_count=0)
    decision = decide(view, propose(S.RUNNING, cache_key="k"), cache_entry=cached(),
                      parent=flow_run(state(S.RUNNING), run_count=2))
    assert decision.state == State(
        id=STATE_ID, type=S.COMPLETED, name="Cached", timestamp=NOW, message="All states completed.", data=PERSISTED,
        state_details=StateDetails(cache_key="k", cache_expiration=NOW + timedelta(hours=1), task_run_id=view.id,
                                   flow_run_id=FLOW_RUN_ID),
    )
    # The rules after CacheRetrieval were chosen for RUNNING and do not fire for the copy.
    assert (decision.reset_run_count, decision.flow_run_run_count) == (False, None)


# CacheInsertion's key check ----------------------------------------------------------------


def test_an_overlong_cache_key_is_rejected_but_the_state_is_written() -> None:
    long_key = "k" * (MAX_CACHE_KEY_LENGTH + 1)
    decision = decide(task(state(S.RUNNING)), propose(S.COMPLETED, cache_key=long_key))
    assert outcome(decision) == (Status.REJECT, S.COMPLETED, "Completed")
    assert decision.reason == f"Cache key exceeded maximum allowed length of {MAX_CACHE_KEY_LENGTH} characters."


def test_a_cache_key_of_the_maximum_length_is_accepted() -> None:
    key = "k" * MAX_CACHE_KEY_LENGTH
    decision = decide(task(state(S.RUNNING)), propose(S.COMPLETED, cache_key=key))
    assert outcome(decision) == (Status.ACCEPT, S.COMPLETED, "Completed")
    assert decision.state is not None and decision.state.state_details.cache_key == key


# force and background tasks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "parent"),
    [
        pytest.param(state(S.PENDING), S.RUNNING, flow_run(state(S.PAUSED)), id="paused_parent"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), S.RUNNING, RUNNING_FLOW, id="completed_with_result"),
        pytest.param(state(S.SCHEDULED, scheduled_time=NOW + timedelta(hours=1)), S.RUNNING, RUNNING_FLOW,
                     id="early_start"),
    ],
)
def test_force_skips_the_rules(current: State, target: StateType, parent: FlowRunView) -> None:
    view = task(current)
    decision = decide(view, propose(target), parent=parent, force=True, tag_limit_zero=True)
    assert decision.status is Status.ACCEPT
    assert decision.state is not None and decision.state.state_details.task_run_id == view.id


def test_a_background_task_has_one_submitter_even_under_force() -> None:
    decision = decide(task(state(S.PENDING)), propose(S.PENDING, deferred=True), force=True)
    assert (decision.status, decision.state) == (Status.ABORT, None)
    assert decision.reason == "This run is in a PENDING state and cannot transition to a PENDING state."


def test_a_background_task_skips_tag_limits_and_the_parent_check() -> None:
    parameters = uuid.uuid4()
    current = state(S.PENDING, task_parameters_id=parameters)
    decision = decide(task(current), propose(S.RUNNING, deferred=True), parent=flow_run(state(S.PAUSED)),
                      tag_limit_zero=True)
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, "Running")
    assert decision.state is not None and decision.state.state_details.task_parameters_id == parameters
