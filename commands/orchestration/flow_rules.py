"""Prefect's CoreFlowPolicy (and, under ``force``, its MinimalFlowPolicy) as one pure function.

``decide_flow_run`` runs the rules in Prefect's priority order over the run's current state and
the proposed one, then shapes the state to write the way Prefect's global policy does (id,
timestamp, run ids). The run's bookkeeping (run_count, start and end times, ...) is not done
here: the runs projection folds it from the written state and ``Decision.empirical_policy``.

The deployment-concurrency rules (SecureFlowConcurrencySlots, ValidateDeploymentConcurrencyAtRunning,
EnforceDeploymentConcurrencyOnLate) decide from ``ctx.deployment_slot``, which the command layer
fills in by taking or renewing the slot first (commands/deployment_concurrency.py); the release
happens there too, after the transition is written. RemoveDeploymentConcurrencyLeaseForOldClientVersions
does nothing: runlog serves Prefect 3 clients that renew their leases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runlog.projections.runs import FlowRunView
from runlog.schema.events import StateType

from . import Decision, FlowRunContext, ProposedState
from .common import (
    ALL_STATES,
    FINAL,
    PREVENT_PENDING_FROM,
    Draft,
    Rule,
    Transition,
    Verdict,
    abort,
    aware,
    copy_scheduled_time,
    govern,
    has_persisted_result,
    prevent_pending_transitions,
    reject,
    rule,
    wait_for_scheduled_time,
    write,
)

__all__ = ["decide_flow_run", "flow_run_policy"]

_POLICY_DEFAULTS: dict[str, Any] = {
    "max_retries": 0, "retry_delay_seconds": 0.0, "retries": None, "retry_delay": None,
    "pause_keys": [], "resuming": False, "retry_type": None,
}


def flow_run_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A flow run's empirical policy with every FlowRunPolicy key, as Prefect validates it.

    The deprecated ``max_retries`` / ``retry_delay_seconds`` fill ``retries`` / ``retry_delay``
    when those are unset (old clients still send them); ``pause_keys`` is a list without repeats.
    """
    policy = {**_POLICY_DEFAULTS, **(raw or {})}
    if not policy["retries"] and policy["max_retries"]:
        policy["retries"] = policy["max_retries"]
    if not policy["retry_delay"] and policy["retry_delay_seconds"]:
        policy["retry_delay"] = policy["retry_delay_seconds"]
    policy["pause_keys"] = list(dict.fromkeys(policy["pause_keys"] or ()))
    return policy


@dataclass
class _FlowTransition(Transition):
    run: FlowRunView | None = None
    ctx: FlowRunContext | None = None
    policy: dict[str, Any] | None = None  # the policy to record; rules edit it through effects

    @property
    def has_deployment(self) -> bool:
        assert self.run is not None and self.ctx is not None
        return self.ctx.has_deployment or self.run.deployment_id is not None

    @property
    def is_subflow(self) -> bool:
        assert self.run is not None and self.ctx is not None
        return self.ctx.is_subflow or self.run.parent_task_run_id is not None

    def update_policy(self, **changes: Any) -> None:
        """Change the run's policy if this rule's transition is the one written."""
        self.on_success(lambda: self.policy.update(changes))  # type: ignore[union-attr]


def _preserve_lease_id(t: _FlowTransition) -> None:
    """Workers send a null lease id; keep the run's deployment concurrency lease anyway."""
    assert t.draft is not None
    if t.initial is None:
        return
    lease_id = t.initial.state_details.deployment_concurrency_lease_id
    if lease_id is not None and t.draft.details.deployment_concurrency_lease_id is None:
        t.draft.details.deployment_concurrency_lease_id = lease_id


def _prevent_duplicate_transitions(t: _FlowTransition) -> Verdict | None:
    """A client that lost the response and retries with the same transition_id gets the
    current state back instead of making the transition twice."""
    if t.initial is None:
        return None
    assert t.draft is not None
    current, proposed = t.initial.state_details.transition_id, t.draft.details.transition_id
    if current is not None and current == proposed:
        return reject("This run has already made this state transition.")
    return None


def _reject_result_data_loss(t: _FlowTransition) -> Verdict | None:
    """COMPLETED with a stored result must not be overwritten by a COMPLETED without one
    (Prefect issue #21955); this check holds even under ``force``."""
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None
    if (initial.type is StateType.COMPLETED and draft.type is StateType.COMPLETED
            and has_persisted_result(initial.data) and not has_persisted_result(draft.data)):
        return reject("Cannot overwrite a COMPLETED state that carries persisted result data with one that does not.")
    return None


def _handle_terminal_state_transitions(t: _FlowTransition) -> Verdict | None:
    """Leaving a terminal state: never to CANCELLING/PAUSED/CRASHED, never away from a stored
    result, back to SCHEDULED only for deployment runs (a manual retry). A run that does leave
    for a non-final state starts over with a clean pause and retry record."""
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None
    if draft.type in (StateType.CANCELLING, StateType.PAUSED, StateType.CRASHED):
        return abort(f"Run is already in terminal state {initial.type.value}.")
    if initial.type is StateType.COMPLETED and draft.type not in FINAL and has_persisted_result(initial.data):
        return reject("Run is already COMPLETED.")
    if (verdict := _reject_result_data_loss(t)) is not None:
        return verdict
    if draft.type is StateType.SCHEDULED and not t.has_deployment:
        return abort("Cannot reschedule a run without an associated deployment.")
    if draft.type not in FINAL:
        retry_type = "reschedule" if draft.type is StateType.SCHEDULED else None
        t.update_policy(resuming=False, pause_keys=[], retry_type=retry_type)
    return None


def _enforce_cancelling_to_cancelled(t: _FlowTransition) -> Verdict | None:
    """A run being cancelled can only end up CANCELLED; anything else is refused."""
    return reject("Cannot transition flows that are cancelling to a state other than Cancelled.")


def _bypass_cancelling_without_infra(t: _FlowTransition) -> Verdict | None:
    """CANCELLING asks a worker to tear down infrastructure. A scheduled run without any (or one
    resuming from a suspension) and a suspended run have none, so they go straight to CANCELLED."""
    initial = t.initial
    assert initial is not None and t.run is not None
    infrastructure_pid = getattr(t.run, "infrastructure_pid", None)  # the view does not track it yet
    if (initial.type is StateType.SCHEDULED and not infrastructure_pid) or initial.name == "Resuming":
        return reject("Scheduled flow run has no infrastructure to terminate.", Draft.fresh(StateType.CANCELLED))
    if initial.type is StateType.PAUSED and initial.state_details.pause_reschedule:
        return reject("Suspended flow run has no infrastructure to terminate.", Draft.fresh(StateType.CANCELLED))
    return None


def _ensure_only_scheduled_flows_marked_late(t: _FlowTransition) -> Verdict | None:
    """A run marked Late is a SCHEDULED run that missed its time: the label applies once, and
    only to a run still scheduled (the late-runs service races with the workers)."""
    initial, draft = t.initial, t.draft
    assert draft is not None
    if initial is None or draft.name != "Late":
        return None
    if initial.type is not StateType.SCHEDULED:
        return reject("Only scheduled flows can be marked late.")
    if initial.name == "Late":
        return reject("This flow run is already marked late.")
    return None


def _handle_pausing_flows(t: _FlowTransition) -> Verdict | None:
    """Only a RUNNING run may pause, each pause (by key) only once; suspending (pausing with
    the infrastructure torn down) needs a deployment to restart from and is not for subflows."""
    draft, initial = t.draft, t.initial
    assert draft is not None and t.ctx is not None and t.policy is not None
    verb = "suspend" if draft.name == "Suspended" else "pause"
    if initial is None:
        return abort(f"Cannot {verb} flows with no state.")
    if initial.type is not StateType.RUNNING:
        return reject(f"Cannot {verb} flows that are not currently running.")
    # Prefect makes up a random key when the client sends none; this state's id is as unique.
    key = draft.details.pause_key or str(t.ctx.state_id)
    if key in t.policy["pause_keys"]:
        return reject(f"This {verb} has already fired.")
    if draft.details.pause_reschedule:
        if t.is_subflow:
            return abort(f"Cannot {verb} subflows.")
        if not t.has_deployment:
            return abort(f"Cannot {verb} flows without a deployment.")
    t.on_success(lambda: t.policy["pause_keys"].append(key))  # type: ignore[index]
    return None


def _handle_resuming_paused_flows(t: _FlowTransition) -> Verdict | None:
    """A paused run may resume (RUNNING, or SCHEDULED for a suspended one), be cancelled, or
    end; a suspended run needs a deployment to restart; a pause past its timeout has failed.
    Once the run leaves PAUSED its policy says it is resuming, so the restart is not a new run."""
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None
    t.update_policy(resuming=True)
    resumable = (StateType.RUNNING, StateType.SCHEDULED, StateType.CANCELLING, *FINAL)
    if draft.type not in resumable:
        # Prefect formats the enum members themselves here, "StateType.PENDING" and all.
        return reject(f"This run cannot transition to the StateType.{draft.type.value} state"
                      f" from the StateType.{initial.type.value} state.")
    verb = "suspend" if draft.name == "Suspended" else "pause"
    display_name = draft.name.lower() if draft.name else draft.type.value.lower()
    if initial.state_details.pause_reschedule and not t.has_deployment:
        return reject(f"Cannot reschedule a {display_name} flow run without a deployment.")
    if draft.type is StateType.CANCELLING:
        return None  # cancellation must reach the worker even after the pause timed out
    pause_timeout = initial.state_details.pause_timeout
    if pause_timeout is not None and aware(pause_timeout) < t.now:
        failed = Draft.fresh(StateType.FAILED, message=f"The flow was {display_name} and never resumed.")
        return reject(f"The flow run {verb} has timed out and can no longer resume.", failed)
    return None


def _retry_failed_flows(t: _FlowTransition) -> Verdict | None:
    """A failing run with retries left is sent back to AwaitingRetry (scheduled after the retry
    delay) and retries in the same process; with none left it fails for good."""
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None and t.run is not None and t.policy is not None
    retries = t.policy["retries"]
    if retries is None or t.run.run_count > retries:
        # No in-process retry is under way any more; a later manual retry may reschedule.
        t.update_policy(retry_type=None)
        return None
    t.update_policy(resuming=False, pause_keys=[], retry_type="in_process")
    awaiting_retry = Draft.fresh(
        StateType.SCHEDULED, "AwaitingRetry", message=draft.message, data=draft.data,
        scheduled_time=t.now + timedelta(seconds=t.policy["retry_delay"] or 0),
        # The run keeps renewing (and finally releases) its deployment slot across the retry.
        deployment_concurrency_lease_id=initial.state_details.deployment_concurrency_lease_id,
    )
    return reject("Retrying", awaiting_retry)


LIMIT_REACHED = "Deployment concurrency limit reached."


def _secure_flow_concurrency_slots(t: _FlowTransition) -> Verdict | None:
    """* -> PENDING for a deployment with a limit: the run goes on with the slot taken for it
    (its lease id in the new state), or, with none free, waits in AwaitingConcurrencySlot
    (ENQUEUE) or is cancelled (CANCEL_NEW)."""
    assert t.ctx is not None and t.draft is not None
    slot = t.ctx.deployment_slot
    if slot is None:
        return None
    if slot.outcome == "missing":
        return abort("Deployment not found.")
    if slot.outcome == "zero":
        return abort("The deployment concurrency limit is 0. The flow will deadlock if submitted again.")
    if slot.outcome == "taken":
        t.draft.details.deployment_concurrency_lease_id = slot.lease_id
        return None
    if slot.collision_strategy == "CANCEL_NEW":
        return reject(LIMIT_REACHED, Draft.fresh(StateType.CANCELLED, message=LIMIT_REACHED))
    waiting = Draft.fresh(StateType.SCHEDULED, "AwaitingConcurrencySlot",
                          scheduled_time=t.now + timedelta(seconds=slot.slot_wait_seconds))
    return reject(LIMIT_REACHED, waiting)


def _validate_deployment_concurrency_at_running(t: _FlowTransition) -> Verdict | None:
    """PENDING -> RUNNING: the run's lease was renewed, or re-taken under a new id; a run whose
    lease was reaped while provisioning and finds no slot free is cancelled."""
    assert t.ctx is not None and t.draft is not None
    slot = t.ctx.deployment_slot
    if slot is None or slot.outcome not in ("kept", "taken", "lost"):
        return None
    if slot.outcome == "lost":
        message = "Deployment concurrency slot lost during provisioning"
        return reject(message, Draft.fresh(StateType.CANCELLED, message=message))
    t.draft.details.deployment_concurrency_lease_id = slot.lease_id
    return None


def _enforce_deployment_concurrency_on_late(t: _FlowTransition) -> Verdict | None:
    """A CANCEL_NEW deployment whose limit is full cancels a run about to be marked Late."""
    assert t.ctx is not None and t.draft is not None
    slot = t.ctx.deployment_slot
    if slot is None or t.draft.name != "Late" or slot.outcome != "full" or slot.collision_strategy != "CANCEL_NEW":
        return None
    return reject("Deployment concurrency limit is full and uses the CANCEL_NEW strategy.",
                  Draft.fresh(StateType.CANCELLED, message=LIMIT_REACHED))


_S = StateType
_ALL_TO = ALL_STATES - {None}

CORE_FLOW_POLICY: tuple[Rule[_FlowTransition], ...] = (
    rule(ALL_STATES, _ALL_TO, _preserve_lease_id),
    rule(ALL_STATES, _ALL_TO, _prevent_duplicate_transitions),
    rule(FINAL, _ALL_TO, _handle_terminal_state_transitions),
    rule({_S.CANCELLING}, _ALL_TO - {_S.CANCELLED}, _enforce_cancelling_to_cancelled),
    rule({_S.SCHEDULED, _S.PAUSED}, {_S.CANCELLING}, _bypass_cancelling_without_infra),
    rule(PREVENT_PENDING_FROM, {_S.PENDING}, prevent_pending_transitions),
    rule({_S.PENDING}, {_S.RUNNING}, _validate_deployment_concurrency_at_running),
    rule(ALL_STATES - {_S.PENDING, _S.RUNNING, _S.CANCELLING}, {_S.PENDING}, _secure_flow_concurrency_slots),
    rule(ALL_STATES, {_S.SCHEDULED}, _ensure_only_scheduled_flows_marked_late),
    rule({_S.SCHEDULED}, {_S.SCHEDULED}, _enforce_deployment_concurrency_on_late),
    rule(ALL_STATES, {_S.PAUSED}, _handle_pausing_flows),
    rule({_S.PAUSED}, _ALL_TO, _handle_resuming_paused_flows),
    rule({_S.SCHEDULED}, {_S.PENDING}, copy_scheduled_time),
    rule({_S.SCHEDULED, _S.PENDING}, {_S.RUNNING}, wait_for_scheduled_time),
    rule({_S.RUNNING}, {_S.FAILED}, _retry_failed_flows),
)
"""Prefect's CoreFlowPolicy, in its priority order."""

MINIMAL_FLOW_POLICY: tuple[Rule[_FlowTransition], ...] = (
    rule(FINAL, FINAL, _reject_result_data_loss),
    rule({_S.SCHEDULED, _S.PAUSED}, {_S.CANCELLING}, _bypass_cancelling_without_infra),
)
"""What still applies under ``force``: no result data loss, and cancelling from the UI."""


def decide_flow_run(run: FlowRunView, proposed: ProposedState, ctx: FlowRunContext) -> Decision:
    """Decide a proposed flow run transition the way Prefect's server does.

    ACCEPT writes the proposed state; REJECT writes the server's replacement (AwaitingRetry,
    Cancelled, Failed) or nothing; WAIT and ABORT write nothing. The written state has its final
    id (``ctx.state_id``), timestamp, name and run ids.
    """
    policy = flow_run_policy(run.empirical_policy)
    t = _FlowTransition(initial=run.state, draft=Draft.from_proposal(proposed, ctx.now), now=ctx.now,
                        run=run, ctx=ctx, policy=dict(policy, pause_keys=list(policy["pause_keys"])))
    govern(MINIMAL_FLOW_POLICY if ctx.force else CORE_FLOW_POLICY, t)
    if t.draft is None:
        return Decision(status=t.status, reason=t.reason, delay_seconds=t.delay_seconds)
    details: dict[str, Any] = {"flow_run_id": run.id}
    if run.parent_task_run_id is not None:
        details["task_run_id"] = run.parent_task_run_id  # a subflow's states point at its task
    state = write(t.draft, state_id=ctx.state_id, now=ctx.now, initial=run.state, **details)
    changed = t.policy != policy
    return Decision(status=t.status, state=state, reason=t.reason, empirical_policy=t.policy if changed else None)
