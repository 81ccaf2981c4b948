"""The flow-run actions of an automation, carried out as Prefect 3.8.8's actions service does
(prefect/server/events/actions.py): cancel-flow-run, change-flow-run-state, suspend-flow-run and
resume-flow-run, each through commands/flow_runs.set_state, with the states, messages and
``force`` Prefect proposes and its reasons when one fails.

The target is Prefect's: the run named by the firing's ``prefect.resource.id`` label (a
proactive trigger's for_each), else the first flow run among the triggering event's resource
and related resources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from runlog.commands import flow_runs
from runlog.commands.clock import Clock
from runlog.commands.orchestration import ProposedState, Status
from runlog.eventstore import EventStore
from runlog.projections.runs_writer import get_flow_run
from runlog.schema.automations import Action, CancelFlowRun, ChangeFlowRunState, ResumeFlowRun, SuspendFlowRun
from runlog.schema.events import StateDetails, StateType

FLOW_RUN_KIND = "prefect.flow-run"
SUSPEND_TIMEOUT = timedelta(seconds=3600)
"""Prefect's SuspendFlowRun suspends for an hour (``Suspended(timeout_seconds=3600)``)."""
RUN_ACTIONS = (CancelFlowRun, ChangeFlowRunState, SuspendFlowRun, ResumeFlowRun)


@dataclass
class Outcome:
    """What an action came to: ``reason`` is None when it was executed; ``details`` joins the
    payload of its executed or failed event, ``related`` the related resources of both."""

    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    related: list[dict[str, str]] = field(default_factory=list)


class ActionFailed(Exception):
    pass


def flow_run_of(resource_id: str | None) -> UUID | None:
    """The flow run a resource id names, None when it names something else."""
    return _id_of(resource_id, FLOW_RUN_KIND)


def _id_of(resource_id: str | None, kind: str) -> UUID | None:
    if not resource_id:
        return None
    found, _, raw = resource_id.rpartition(".")
    if found != kind:
        return None
    try:
        return UUID(raw)
    except ValueError:
        return None


def target(labels: Mapping[str, str], event: Any | None) -> UUID | None:
    """The flow run an action acts on (Prefect's FlowRunAction.flow_run), None when none can be inferred."""
    if (run_id := _id_of(labels.get("prefect.resource.id"), FLOW_RUN_KIND)) is not None:
        return run_id
    if event is None:
        return None
    for resource in (event.resource, *event.related):
        kind, _, _ = resource.get("prefect.resource.id", "").rpartition(".")
        if kind == FLOW_RUN_KIND:
            return _id_of(resource["prefect.resource.id"], FLOW_RUN_KIND)
    return None


async def carry_out(
    store: EventStore, action: Action, *, automation_id: UUID, labels: Mapping[str, str], event: Any | None,
    clock: Clock,
) -> Outcome:
    """Carry out one flow-run action; never raises for what Prefect reports as a failed action."""
    outcome = Outcome()
    try:
        run_id = target(labels, event)
        if run_id is None:
            raise ActionFailed("No flow run could be inferred")
        outcome.related.append({"prefect.resource.id": f"{FLOW_RUN_KIND}.{run_id}", "prefect.resource.role": "target"})
        if isinstance(action, ResumeFlowRun):
            await _resume(store, run_id, clock)
        else:
            proposed, force = _proposal(action, automation_id, clock)
            await _set_state(store, run_id, proposed, force, action.__struct_config__.tag, outcome, clock)
    except ActionFailed as exc:
        outcome.reason = str(exc)
    return outcome


def _proposal(action: Action, automation_id: UUID, clock: Clock) -> tuple[ProposedState, bool]:
    if isinstance(action, CancelFlowRun):
        return ProposedState(type=StateType.CANCELLING, message=f"Cancelled by Automation {automation_id}"), False
    if isinstance(action, ChangeFlowRunState):
        message = action.message or f"State changed by Automation {automation_id}"
        return ProposedState(type=StateType(action.state), name=action.name, message=message), action.force
    assert isinstance(action, SuspendFlowRun)
    details = StateDetails(pause_timeout=clock() + SUSPEND_TIMEOUT, pause_reschedule=True)
    message = f"Suspended by Automation {automation_id}"
    return ProposedState(type=StateType.PAUSED, name="Suspended", message=message, state_details=details), False


async def _set_state(
    store: EventStore, run_id: UUID, proposed: ProposedState, force: bool, action_type: str, outcome: Outcome,
    clock: Clock,
) -> None:
    result = await flow_runs.set_state(store, run_id, proposed, force=force, clock=clock)
    if result is None:
        # Prefect's orchestration API answers 404, which its action reports as such.
        outcome.details["status_code"] = 404
        raise ActionFailed(f"Unexpected status from {action_type!r} action: 404")
    _view, decision = result
    # The status code Prefect's set_state answers: 201 when a state was written, else 200.
    outcome.details["status_code"] = 201 if decision.state is not None else 200
    if decision.status is not Status.ACCEPT:
        raise ActionFailed(f"Failed to set state: {decision.reason}")


async def _resume(store: EventStore, run_id: UUID, clock: Clock) -> None:
    """Prefect's POST /flow_runs/{id}/resume without run input: a suspended run is scheduled
    again ("Resuming"), a paused one runs."""
    run = await get_flow_run(store, run_id)
    if run is None:
        raise ActionFailed("Unexpected status from 'resume-flow-run' action: 404")
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        raise ActionFailed("Failed to resume flow run: Cannot resume a flow run that is not paused.")
    if state.state_details.pause_reschedule:
        proposed = ProposedState(
            type=StateType.SCHEDULED, name="Resuming", state_details=StateDetails(scheduled_time=clock()),
        )
    else:
        proposed = ProposedState(type=StateType.RUNNING)
    result = await flow_runs.set_state(store, run_id, proposed, clock=clock)
    if result is None:
        raise ActionFailed("Unexpected status from 'resume-flow-run' action: 404")
    if result[1].status is not Status.ACCEPT:
        raise ActionFailed(f"Failed to resume flow run: {result[1].reason}")


__all__ = ["RUN_ACTIONS", "Outcome", "carry_out", "flow_run_of", "target"]
