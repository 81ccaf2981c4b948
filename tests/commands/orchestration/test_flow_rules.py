"""decide_flow_run against Prefect's CoreFlowPolicy, rule by rule, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from runlog.commands.orchestration import Decision, FlowRunContext, ProposedState, Status, decide_flow_run
from runlog.projections.runs import FlowRunView
from runlog.schema.events import State, StateDetails, StateType

S = StateType
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(minutes=5)
STATE_ID = uuid.UUID("00000000-0000-0000-0000-00000000beef")
PERSISTED = {"type": "reference", "storage_key": "/results/abc"}


class FlowRunWithPid(FlowRunView, kw_only=True):
    """A view that knows its infrastructure pid (the real view does not track it yet)."""

    infrastructure_pid: str | None = None


def state(type_: StateType, name: str | None = None, *, data: Any = None, timestamp: datetime = EARLIER,
          **details: Any) -> State:
    return State(id=uuid.uuid4(), type=type_, name=name or type_.value.capitalize(), timestamp=timestamp,
                 data=data, state_details=StateDetails(**details))


def run(current: State | None = None, *, policy: dict[str, Any] | None = None, run_count: int = 0,
        deployment: bool = False, parent_task_run_id: uuid.UUID | None = None, pid: str | None = None) -> FlowRunView:
    cls = FlowRunWithPid if pid is not None else FlowRunView
    extra = {"infrastructure_pid": pid} if pid is not None else {}
    return cls(id=uuid.uuid4(), created=EARLIER, updated=EARLIER, name="brisk-otter", flow_id=uuid.uuid4(),
               state=current, empirical_policy=policy or {}, run_count=run_count,
               deployment_id=uuid.uuid4() if deployment else None, parent_task_run_id=parent_task_run_id, **extra)


def propose(type_: StateType, name: str | None = None, *, data: Any = None, message: str | None = None,
            timestamp: datetime | None = None, **details: Any) -> ProposedState:
    return ProposedState(type=type_, name=name, data=data, message=message, timestamp=timestamp,
                         state_details=StateDetails(**details))


def decide(view: FlowRunView, proposed: ProposedState, *, force: bool = False) -> Decision:
    return decide_flow_run(view, proposed, FlowRunContext(now=NOW, state_id=STATE_ID, force=force))


def outcome(decision: Decision) -> tuple[Status, StateType | None, str | None]:
    written = decision.state
    return decision.status, written.type if written else None, written.name if written else None


# Shaping: what every written state gets ----------------------------------------------------


def test_a_run_without_a_state_accepts_its_first_state_shaped_by_the_server() -> None:
    view = run()
    decision = decide(view, propose(S.PENDING))
    assert decision.status is Status.ACCEPT
    assert decision.state == State(id=STATE_ID, type=S.PENDING, name="Pending", timestamp=NOW,
                                   state_details=StateDetails(flow_run_id=view.id))
    assert decision.empirical_policy is None


def test_default_name_is_the_title_cased_type() -> None:
    decision = decide(run(state(S.RUNNING)), propose(S.CANCELLING))
    assert decision.state is not None and decision.state.name == "Cancelling"


def test_a_subflow_state_points_at_its_parent_task_run() -> None:
    parent_task = uuid.uuid4()
    decision = decide(run(state(S.PENDING), parent_task_run_id=parent_task), propose(S.RUNNING))
    assert decision.state is not None and decision.state.state_details.task_run_id == parent_task


def test_scheduled_without_a_time_is_scheduled_now() -> None:
    decision = decide(run(), propose(S.SCHEDULED))
    assert decision.state is not None and decision.state.state_details.scheduled_time == NOW


def test_a_timestamp_the_client_sent_is_kept() -> None:
    sent = NOW - timedelta(seconds=3)
    decision = decide(run(state(S.PENDING)), propose(S.RUNNING, timestamp=sent))
    assert decision.state is not None and decision.state.timestamp == sent


def test_a_timestamp_equal_to_the_current_states_moves_one_microsecond_on() -> None:
    decision = decide(run(state(S.PENDING, timestamp=NOW)), propose(S.RUNNING))
    assert decision.state is not None and decision.state.timestamp == NOW + timedelta(microseconds=1)


def test_the_deployment_concurrency_lease_is_carried_forward() -> None:
    lease = uuid.uuid4()
    decision = decide(run(state(S.RUNNING, deployment_concurrency_lease_id=lease)), propose(S.COMPLETED))
    assert decision.state is not None
    assert decision.state.state_details.deployment_concurrency_lease_id == lease


# PreventDuplicateTransitions ---------------------------------------------------------------


def test_a_repeated_transition_id_is_rejected_and_nothing_is_written() -> None:
    transition = uuid.uuid4()
    decision = decide(run(state(S.RUNNING, transition_id=transition)), propose(S.COMPLETED, transition_id=transition))
    assert (decision.status, decision.state) == (Status.REJECT, None)
    assert decision.reason == "This run has already made this state transition."


def test_a_new_transition_id_is_accepted() -> None:
    decision = decide(run(state(S.RUNNING, transition_id=uuid.uuid4())), propose(S.COMPLETED, transition_id=uuid.uuid4()))
    assert outcome(decision) == (Status.ACCEPT, S.COMPLETED, "Completed")


# HandleFlowTerminalStateTransitions --------------------------------------------------------

CLEAN = {"resuming": False, "pause_keys": [], "retry_type": None}


@pytest.mark.parametrize(
    ("current", "proposed", "deployment", "expected", "reason", "policy"),
    [
        pytest.param(state(S.COMPLETED), propose(S.CANCELLING), False, (Status.ABORT, None, None),
                     "Run is already in terminal state COMPLETED.", None, id="completed_to_cancelling_aborts"),
        pytest.param(state(S.FAILED), propose(S.PAUSED), False, (Status.ABORT, None, None),
                     "Run is already in terminal state FAILED.", None, id="failed_to_paused_aborts"),
        pytest.param(state(S.CANCELLED), propose(S.CRASHED), False, (Status.ABORT, None, None),
                     "Run is already in terminal state CANCELLED.", None, id="cancelled_to_crashed_aborts"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), propose(S.RUNNING), False, (Status.REJECT, None, None),
                     "Run is already COMPLETED.", None, id="completed_with_result_cannot_rerun"),
        pytest.param(state(S.COMPLETED, data=PERSISTED), propose(S.COMPLETED), False, (Status.REJECT, None, None),
                     "Cannot overwrite a COMPLETED state that carries persisted result data with one that does not.",
                     None, id="completed_result_cannot_be_overwritten_without_one"),
        pytest.param(state(S.COMPLETED, data={"type": "unpersisted"}), propose(S.RUNNING), False,
                     (Status.ACCEPT, S.RUNNING, "Running"), None, CLEAN, id="completed_without_result_may_rerun"),
        pytest.param(state(S.FAILED), propose(S.SCHEDULED), False, (Status.ABORT, None, None),
                     "Cannot reschedule a run without an associated deployment.", None,
                     id="rescheduling_needs_a_deployment"),
        pytest.param(state(S.FAILED), propose(S.SCHEDULED), True, (Status.ACCEPT, S.SCHEDULED, "Scheduled"), None,
                     {**CLEAN, "retry_type": "reschedule"}, id="manual_retry_of_a_deployment_run_reschedules"),
        pytest.param(state(S.COMPLETED), propose(S.FAILED), False, (Status.ACCEPT, S.FAILED, "Failed"), None, None,
                     id="terminal_to_terminal_keeps_the_policy"),
    ],
)
def test_leaving_a_terminal_state(
    current: State, proposed: ProposedState, deployment: bool, expected: tuple[Any, ...], reason: str | None,
    policy: dict[str, Any] | None,
) -> None:
    view = run(current, deployment=deployment, policy={"pause_keys": ["old"], "resuming": True, "retry_type": "in_process"}
               if policy else None)
    decision = decide(view, proposed)
    assert outcome(decision) == expected
    assert decision.reason == reason
    if policy is None:
        assert decision.empirical_policy is None
    else:
        assert decision.empirical_policy is not None
        assert {k: decision.empirical_policy[k] for k in policy} == policy


# EnforceCancellingToCancelledTransition and BypassCancellingFlowRunsWithNoInfra -----------


@pytest.mark.parametrize("target", [S.RUNNING, S.COMPLETED, S.FAILED, S.CRASHED, S.PENDING])
def test_a_cancelling_run_can_only_become_cancelled(target: StateType) -> None:
    decision = decide(run(state(S.CANCELLING)), propose(target))
    assert (decision.status, decision.state) == (Status.REJECT, None)
    assert decision.reason == "Cannot transition flows that are cancelling to a state other than Cancelled."


def test_a_cancelling_run_becomes_cancelled() -> None:
    assert outcome(decide(run(state(S.CANCELLING)), propose(S.CANCELLED))) == (Status.ACCEPT, S.CANCELLED, "Cancelled")


@pytest.mark.parametrize(
    ("current", "pid", "expected", "reason"),
    [
        pytest.param(state(S.SCHEDULED), None, (Status.REJECT, S.CANCELLED, "Cancelled"),
                     "Scheduled flow run has no infrastructure to terminate.", id="scheduled_without_infra"),
        pytest.param(state(S.SCHEDULED), "1234", (Status.ACCEPT, S.CANCELLING, "Cancelling"), None,
                     id="scheduled_with_infra_is_cancelling"),
        pytest.param(state(S.SCHEDULED, "Resuming"), "1234", (Status.REJECT, S.CANCELLED, "Cancelled"),
                     "Scheduled flow run has no infrastructure to terminate.", id="resuming_has_no_infra"),
        pytest.param(state(S.PAUSED, "Suspended", pause_reschedule=True), None, (Status.REJECT, S.CANCELLED, "Cancelled"),
                     "Suspended flow run has no infrastructure to terminate.", id="suspended_has_no_infra"),
        pytest.param(state(S.PAUSED), None, (Status.ACCEPT, S.CANCELLING, "Cancelling"), None,
                     id="blocking_pause_is_cancelling"),
    ],
)
def test_cancelling_a_run_without_infrastructure_cancels_it_outright(
    current: State, pid: str | None, expected: tuple[Any, ...], reason: str | None
) -> None:
    decision = decide(run(current, pid=pid), propose(S.CANCELLING))
    assert outcome(decision) == expected
    assert decision.reason == reason


# PreventPendingTransitions -----------------------------------------------------------------


@pytest.mark.parametrize("current", [S.PENDING, S.RUNNING, S.CANCELLED])
def test_a_second_pending_is_aborted(current: StateType) -> None:
    # (CANCELLING -> PENDING never gets here: EnforceCancellingToCancelledTransition rejects it first.)
    decision = decide(run(state(current)), propose(S.PENDING))
    assert (decision.status, decision.state) == (Status.ABORT, None)
    assert decision.reason == f"This run is in a {current.value} state and cannot transition to a PENDING state."


def test_a_pending_run_may_be_renamed_keeping_its_schedule_and_lease() -> None:
    lease, scheduled = uuid.uuid4(), EARLIER - timedelta(minutes=1)
    current = state(S.PENDING, scheduled_time=scheduled, deployment_concurrency_lease_id=lease)
    decision = decide(run(current), propose(S.PENDING, "Submitting"))
    assert outcome(decision) == (Status.ACCEPT, S.PENDING, "Submitting")
    assert decision.state is not None
    assert decision.state.state_details.scheduled_time == scheduled
    assert decision.state.state_details.deployment_concurrency_lease_id == lease


def test_a_renamed_pending_run_cannot_go_back_to_plain_pending() -> None:
    assert decide(run(state(S.PENDING, "Submitting")), propose(S.PENDING)).status is Status.ABORT


# EnsureOnlyScheduledFlowsMarkedLate --------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [
        pytest.param(state(S.SCHEDULED), (Status.ACCEPT, S.SCHEDULED, "Late"), None, id="scheduled_becomes_late"),
        pytest.param(state(S.RUNNING), (Status.REJECT, None, None), "Only scheduled flows can be marked late.",
                     id="running_cannot_be_late"),
        pytest.param(state(S.SCHEDULED, "Late"), (Status.REJECT, None, None), "This flow run is already marked late.",
                     id="late_is_late_once"),
    ],
)
def test_only_scheduled_runs_are_marked_late(current: State, expected: tuple[Any, ...], reason: str | None) -> None:
    decision = decide(run(current), propose(S.SCHEDULED, "Late"))
    assert outcome(decision) == expected
    assert decision.reason == reason


# HandlePausingFlows ------------------------------------------------------------------------


def test_pausing_a_running_run_records_its_pause_key() -> None:
    decision = decide(run(state(S.RUNNING), policy={"pause_keys": ["a"]}), propose(S.PAUSED, pause_key="b"))
    assert outcome(decision) == (Status.ACCEPT, S.PAUSED, "Paused")
    assert decision.empirical_policy is not None and decision.empirical_policy["pause_keys"] == ["a", "b"]


def test_a_pause_without_a_key_gets_a_unique_one() -> None:
    decision = decide(run(state(S.RUNNING)), propose(S.PAUSED))
    assert decision.empirical_policy is not None and decision.empirical_policy["pause_keys"] == [str(STATE_ID)]


@pytest.mark.parametrize(
    ("view", "proposed", "status", "reason"),
    [
        pytest.param(run(state(S.RUNNING), policy={"pause_keys": ["k"]}), propose(S.PAUSED, pause_key="k"),
                     Status.REJECT, "This pause has already fired.", id="a_pause_fires_once"),
        pytest.param(run(state(S.PENDING)), propose(S.PAUSED), Status.REJECT,
                     "Cannot pause flows that are not currently running.", id="only_running_runs_pause"),
        pytest.param(run(), propose(S.PAUSED), Status.ABORT, "Cannot pause flows with no state.",
                     id="a_run_without_state_cannot_pause"),
        pytest.param(run(state(S.RUNNING), deployment=True, parent_task_run_id=uuid.uuid4()),
                     propose(S.PAUSED, "Suspended", pause_reschedule=True), Status.ABORT, "Cannot suspend subflows.",
                     id="subflows_cannot_suspend"),
        pytest.param(run(state(S.RUNNING)), propose(S.PAUSED, "Suspended", pause_reschedule=True), Status.ABORT,
                     "Cannot suspend flows without a deployment.", id="suspending_needs_a_deployment"),
    ],
)
def test_refused_pauses_write_nothing(view: FlowRunView, proposed: ProposedState, status: Status, reason: str) -> None:
    decision = decide(view, proposed)
    assert (decision.status, decision.state, decision.reason) == (status, None, reason)


def test_a_deployment_run_may_suspend() -> None:
    decision = decide(run(state(S.RUNNING), deployment=True), propose(S.PAUSED, "Suspended", pause_reschedule=True))
    assert outcome(decision) == (Status.ACCEPT, S.PAUSED, "Suspended")


# HandleResumingPausedFlows -----------------------------------------------------------------


def test_resuming_a_paused_run_marks_it_resuming() -> None:
    decision = decide(run(state(S.PAUSED), policy={"pause_keys": ["k"]}), propose(S.RUNNING))
    assert outcome(decision) == (Status.ACCEPT, S.RUNNING, "Running")
    assert decision.empirical_policy is not None
    assert decision.empirical_policy["resuming"] is True and decision.empirical_policy["pause_keys"] == ["k"]


def test_a_suspended_deployment_run_resumes_by_rescheduling() -> None:
    current = state(S.PAUSED, "Suspended", pause_reschedule=True)
    decision = decide(run(current, deployment=True), propose(S.SCHEDULED, "Resuming"))
    assert outcome(decision) == (Status.ACCEPT, S.SCHEDULED, "Resuming")
    assert decision.empirical_policy is not None and decision.empirical_policy["resuming"] is True


@pytest.mark.parametrize(
    ("current", "proposed", "expected", "reason"),
    [
        pytest.param(state(S.PAUSED), propose(S.PENDING), (Status.REJECT, None, None),
                     "This run cannot transition to the StateType.PENDING state from the StateType.PAUSED state.",
                     id="paused_cannot_go_pending"),
        pytest.param(state(S.PAUSED, "Suspended", pause_reschedule=True), propose(S.SCHEDULED, "Resuming"),
                     (Status.REJECT, None, None), "Cannot reschedule a resuming flow run without a deployment.",
                     id="suspended_without_deployment_cannot_reschedule"),
        pytest.param(state(S.PAUSED, pause_timeout=NOW - timedelta(seconds=1)), propose(S.RUNNING),
                     (Status.REJECT, S.FAILED, "Failed"), "The flow run pause has timed out and can no longer resume.",
                     id="a_timed_out_pause_fails"),
        pytest.param(state(S.PAUSED, pause_timeout=NOW - timedelta(seconds=1)), propose(S.CANCELLING),
                     (Status.ACCEPT, S.CANCELLING, "Cancelling"), None, id="a_timed_out_pause_may_still_be_cancelled"),
        pytest.param(state(S.PAUSED, pause_timeout=NOW + timedelta(seconds=60)), propose(S.RUNNING),
                     (Status.ACCEPT, S.RUNNING, "Running"), None, id="a_pause_within_its_timeout_resumes"),
    ],
)
def test_leaving_a_pause(current: State, proposed: ProposedState, expected: tuple[Any, ...], reason: str | None) -> None:
    decision = decide(run(current), proposed)
    assert outcome(decision) == expected
    assert decision.reason == reason


def test_a_timed_out_pause_fails_with_a_message() -> None:
    decision = decide(run(state(S.PAUSED, pause_timeout=EARLIER)), propose(S.RUNNING))
    assert decision.state is not None and decision.state.message == "The flow was running and never resumed."


# CopyScheduledTime and WaitForScheduledTime ------------------------------------------------


def test_pending_keeps_the_scheduled_time() -> None:
    scheduled = NOW - timedelta(seconds=30)
    decision = decide(run(state(S.SCHEDULED, scheduled_time=scheduled)), propose(S.PENDING))
    assert decision.state is not None and decision.state.state_details.scheduled_time == scheduled


def test_pending_may_name_its_own_scheduled_time() -> None:
    own = NOW + timedelta(seconds=30)
    decision = decide(run(state(S.SCHEDULED, scheduled_time=NOW)), propose(S.PENDING, scheduled_time=own))
    assert decision.state is not None and decision.state.state_details.scheduled_time == own


@pytest.mark.parametrize(
    ("ahead", "status", "delay"),
    [
        pytest.param(timedelta(seconds=30), Status.WAIT, 30, id="thirty_seconds_early_waits_thirty"),
        pytest.param(timedelta(seconds=2.7), Status.WAIT, 3, id="fractions_round_up_past_a_half"),
        pytest.param(timedelta(seconds=1.5), Status.WAIT, 1, id="a_half_rounds_to_even"),
        pytest.param(timedelta(seconds=0.4), Status.ACCEPT, None, id="under_half_a_second_starts"),
        pytest.param(-timedelta(seconds=10), Status.ACCEPT, None, id="past_scheduled_time_starts"),
    ],
)
@pytest.mark.parametrize("current", [S.SCHEDULED, S.PENDING])
def test_running_waits_for_the_scheduled_time(
    current: StateType, ahead: timedelta, status: Status, delay: int | None
) -> None:
    decision = decide(run(state(current, scheduled_time=NOW + ahead)), propose(S.RUNNING))
    assert (decision.status, decision.delay_seconds) == (status, delay)
    if status is Status.WAIT:
        assert decision.state is None and decision.reason == "Scheduled time is in the future"


# RetryFailedFlows --------------------------------------------------------------------------


def test_a_failure_with_retries_left_becomes_awaiting_retry() -> None:
    lease = uuid.uuid4()
    view = run(state(S.RUNNING, deployment_concurrency_lease_id=lease), run_count=1,
               policy={"retries": 2, "retry_delay": 10, "pause_keys": ["p"], "resuming": True})
    decision = decide(view, propose(S.FAILED, message="boom", data=PERSISTED))
    assert outcome(decision) == (Status.REJECT, S.SCHEDULED, "AwaitingRetry")
    assert decision.reason == "Retrying"
    written = decision.state
    assert written is not None
    assert written.state_details.scheduled_time == NOW + timedelta(seconds=10)
    assert written.state_details.deployment_concurrency_lease_id == lease
    assert (written.message, written.data, written.id) == ("boom", PERSISTED, STATE_ID)
    assert decision.empirical_policy is not None
    assert decision.empirical_policy["retry_type"] == "in_process"
    assert (decision.empirical_policy["pause_keys"], decision.empirical_policy["resuming"]) == ([], False)


@pytest.mark.parametrize(
    ("policy", "run_count", "expected", "policy_change"),
    [
        pytest.param({"retries": 2}, 2, (Status.REJECT, S.SCHEDULED, "AwaitingRetry"), "in_process",
                     id="last_retry_is_still_a_retry"),
        pytest.param({"retries": 2, "retry_type": "in_process"}, 3, (Status.ACCEPT, S.FAILED, "Failed"), None,
                     id="exhausted_retries_fail_and_clear_the_retry_type"),
        pytest.param({"retries": None}, 1, (Status.ACCEPT, S.FAILED, "Failed"), "unchanged",
                     id="no_retries_fail"),
        pytest.param({"max_retries": 1}, 1, (Status.REJECT, S.SCHEDULED, "AwaitingRetry"), "in_process",
                     id="deprecated_max_retries_still_count"),
    ],
)
def test_failing_a_running_run(
    policy: dict[str, Any], run_count: int, expected: tuple[Any, ...], policy_change: str | None
) -> None:
    decision = decide(run(state(S.RUNNING), policy=policy, run_count=run_count), propose(S.FAILED))
    assert outcome(decision) == expected
    if policy_change == "unchanged":
        assert decision.empirical_policy is None
    else:
        assert decision.empirical_policy is not None and decision.empirical_policy["retry_type"] == policy_change


# force: MinimalFlowPolicy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"),
    [
        pytest.param(state(S.CANCELLING), S.RUNNING, id="cancelling_to_running"),
        pytest.param(state(S.COMPLETED), S.CRASHED, id="terminal_to_crashed"),
        pytest.param(state(S.RUNNING), S.PENDING, id="second_pending"),
        pytest.param(state(S.SCHEDULED, scheduled_time=NOW + timedelta(hours=1)), S.RUNNING, id="early_start"),
        pytest.param(None, S.PAUSED, id="pause_without_state"),
    ],
)
def test_force_skips_the_core_rules(current: State | None, target: StateType) -> None:
    view = run(current)
    decision = decide(view, propose(target), force=True)
    assert decision.status is Status.ACCEPT
    assert decision.state is not None
    assert (decision.state.id, decision.state.type, decision.state.timestamp) == (STATE_ID, target, NOW)
    assert decision.state.state_details.flow_run_id == view.id


def test_force_still_cancels_a_scheduled_run_without_infrastructure() -> None:
    decision = decide(run(state(S.SCHEDULED)), propose(S.CANCELLING), force=True)
    assert outcome(decision) == (Status.REJECT, S.CANCELLED, "Cancelled")


def test_force_still_protects_a_stored_result() -> None:
    decision = decide(run(state(S.COMPLETED, data=PERSISTED)), propose(S.COMPLETED), force=True)
    assert (decision.status, decision.state) == (Status.REJECT, None)


def test_force_does_not_retry_a_failure() -> None:
    decision = decide(run(state(S.RUNNING), policy={"retries": 3}, run_count=1), propose(S.FAILED), force=True)
    assert outcome(decision) == (Status.ACCEPT, S.FAILED, "Failed")


# Purity: the command layer re-decides with the same inputs after losing a race --------------


def test_deciding_changes_neither_the_run_nor_the_proposal() -> None:
    view = run(state(S.RUNNING, deployment_concurrency_lease_id=uuid.uuid4()), policy={"pause_keys": ["a"]})
    proposed = propose(S.PAUSED, pause_key="b")
    before = (msgspec.to_builtins(view), msgspec.to_builtins(proposed))
    first, second = decide(view, proposed), decide(view, proposed)
    assert first == second
    assert (msgspec.to_builtins(view), msgspec.to_builtins(proposed)) == before


def test_a_naive_scheduled_time_is_taken_as_utc() -> None:
    naive = (NOW + timedelta(seconds=8)).replace(tzinfo=None)
    decision = decide(run(state(S.SCHEDULED, scheduled_time=naive)), propose(S.RUNNING))
    assert (decision.status, decision.delay_seconds) == (Status.WAIT, 8)
