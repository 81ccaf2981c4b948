"""The deployment concurrency rules of decide_flow_run, table-tested without a database: what a
slot check (taken, full, zero, missing, kept, lost) makes of each transition."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from runlog.commands.deployment_concurrency import SlotCheck
from runlog.commands.orchestration import FlowRunContext, Status, decide_flow_run

from .test_flow_rules import NOW, STATE_ID, S, outcome, propose, run, state

LEASE = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def slot(outcome_: str, strategy: str = "ENQUEUE", lease: uuid.UUID | None = None) -> SlotCheck:
    return SlotCheck(state_id=None, outcome=outcome_, lease_id=lease, collision_strategy=strategy,  # type: ignore[arg-type]
                     slot_wait_seconds=30.0)


def decide(view, proposed, check):
    ctx = FlowRunContext(now=NOW, state_id=STATE_ID, deployment_slot=check)
    return decide_flow_run(view, proposed, ctx)


@pytest.mark.parametrize(
    ("initial", "check", "proposed", "expected"),
    [
        # SecureFlowConcurrencySlots, * -> PENDING
        (S.SCHEDULED, slot("taken", lease=LEASE), (S.PENDING, None), (Status.ACCEPT, S.PENDING, "Pending")),
        (S.SCHEDULED, slot("full"), (S.PENDING, None), (Status.REJECT, S.SCHEDULED, "AwaitingConcurrencySlot")),
        (S.SCHEDULED, slot("full", "CANCEL_NEW"), (S.PENDING, None), (Status.REJECT, S.CANCELLED, "Cancelled")),
        (S.SCHEDULED, slot("zero"), (S.PENDING, None), (Status.ABORT, None, None)),
        (S.SCHEDULED, slot("missing"), (S.PENDING, None), (Status.ABORT, None, None)),
        (S.SCHEDULED, None, (S.PENDING, None), (Status.ACCEPT, S.PENDING, "Pending")),
        # ValidateDeploymentConcurrencyAtRunning, PENDING -> RUNNING
        (S.PENDING, slot("kept", lease=LEASE), (S.RUNNING, None), (Status.ACCEPT, S.RUNNING, "Running")),
        (S.PENDING, slot("taken", lease=LEASE), (S.RUNNING, None), (Status.ACCEPT, S.RUNNING, "Running")),
        (S.PENDING, slot("lost"), (S.RUNNING, None), (Status.REJECT, S.CANCELLED, "Cancelled")),
        # EnforceDeploymentConcurrencyOnLate, SCHEDULED -> Late
        (S.SCHEDULED, slot("full", "CANCEL_NEW"), (S.SCHEDULED, "Late"), (Status.REJECT, S.CANCELLED, "Cancelled")),
        (S.SCHEDULED, None, (S.SCHEDULED, "Late"), (Status.ACCEPT, S.SCHEDULED, "Late")),
    ],
)
def test_slot_outcomes_decide_the_transition(initial, check, proposed, expected) -> None:
    view = run(state(initial, scheduled_time=NOW - timedelta(seconds=1)), deployment=True)
    assert outcome(decide(view, propose(*proposed), check)) == expected


def test_a_taken_slot_puts_its_lease_on_the_pending_state() -> None:
    decision = decide(run(state(S.SCHEDULED), deployment=True), propose(S.PENDING), slot("taken", lease=LEASE))
    assert decision.state is not None and decision.state.state_details.deployment_concurrency_lease_id == LEASE


def test_a_waiting_run_is_rescheduled_the_slot_wait_ahead_with_the_reason() -> None:
    decision = decide(run(state(S.SCHEDULED), deployment=True), propose(S.PENDING), slot("full"))
    assert decision.state is not None
    assert decision.state.state_details.scheduled_time == NOW + timedelta(seconds=30)
    assert decision.reason == "Deployment concurrency limit reached."
    assert decision.state.state_details.deployment_concurrency_lease_id is None


def test_cancel_new_says_why() -> None:
    decision = decide(run(state(S.SCHEDULED), deployment=True), propose(S.PENDING), slot("full", "CANCEL_NEW"))
    assert decision.state is not None and decision.state.message == "Deployment concurrency limit reached."


def test_a_lease_retaken_at_running_replaces_the_old_one() -> None:
    old = uuid.uuid4()
    view = run(state(S.PENDING, deployment_concurrency_lease_id=old, scheduled_time=NOW), deployment=True)
    decision = decide(view, propose(S.RUNNING), slot("taken", lease=LEASE))
    assert decision.state is not None and decision.state.state_details.deployment_concurrency_lease_id == LEASE


def test_a_second_submission_is_aborted_before_any_slot_matters() -> None:
    view = run(state(S.RUNNING), deployment=True)
    assert outcome(decide(view, propose(S.PENDING), slot("taken", lease=LEASE))) == (Status.ABORT, None, None)
