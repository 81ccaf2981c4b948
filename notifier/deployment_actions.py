"""The deployment, work pool and work queue actions of an automation, carried out as Prefect
3.8.8's actions service does (prefect/server/events/actions.py): run-deployment,
pause-deployment, resume-deployment, pause-work-pool, resume-work-pool, pause-work-queue and
resume-work-queue, each through the commands the HTTP routes use, with the status code the
route would have answered and Prefect's reasons when one fails.

The target is the one the action selects, or (``source: inferred``) the first resource of the
kind among the triggering event's resource and related resources, as Prefect infers it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

from runlog.commands import deployments, work_pools
from runlog.commands.clock import Clock
from runlog.commands import parameter_templates as templates
from runlog.commands.errors import BadRequest, Conflict, Unprocessable
from runlog.commands.flow_runs import created_by_automation
from runlog.commands.orchestration import ProposedState
from runlog.eventstore import EventStore
from runlog.projections import variables as variable_reads
from runlog.projections import work_pools as pool_reads
from runlog.schema.automations import (
    Action,
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeDeployment,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
)
from runlog.schema.events import StateDetails, StateType

from .run_actions import ActionFailed, Outcome

DEPLOYMENT_ACTIONS = (RunDeployment, PauseDeployment, ResumeDeployment)
WORK_POOL_ACTIONS = (PauseWorkPool, ResumeWorkPool)
WORK_QUEUE_ACTIONS = (PauseWorkQueue, ResumeWorkQueue)
TARGET_ACTIONS = (*DEPLOYMENT_ACTIONS, *WORK_POOL_ACTIONS, *WORK_QUEUE_ACTIONS)

_KINDS = {**{a: "prefect.deployment" for a in DEPLOYMENT_ACTIONS}, **{a: "prefect.work-pool" for a in WORK_POOL_ACTIONS},
          **{a: "prefect.work-queue" for a in WORK_QUEUE_ACTIONS}}
_NOUNS = {"prefect.deployment": "deployment", "prefect.work-pool": "work pool", "prefect.work-queue": "work queue"}


def _selected(action: Action) -> UUID | None:
    return getattr(action, "deployment_id", None) or getattr(action, "work_pool_id", None) \
        or getattr(action, "work_queue_id", None)


def target(action: Action, event: Any | None) -> UUID | None:
    """The id the action acts on, None when it cannot be inferred (never for a selected one)."""
    if getattr(action, "source", "selected") == "selected":
        return _selected(action)
    if event is None:
        return None
    kind = _KINDS[type(action)]
    for resource in (event.resource, *event.related):
        found, _, raw = resource.get("prefect.resource.id", "").rpartition(".")
        if found == kind:
            try:
                return UUID(raw)
            except ValueError:
                return None
    return None


def _failed(action: Action, status: int, detail: str | None = None) -> ActionFailed:
    """Prefect's reason_from_response for a status the route would have answered."""
    kind = action.__struct_config__.tag
    if status == 422 or (status == 409 and detail):
        return ActionFailed(f"Validation error occurred for {kind!r}" + (f" - {detail}" if detail else ""))
    if status == 409:
        return ActionFailed(f"Conflict (409) occurred for {kind!r} - ''")
    return ActionFailed(f"Unexpected status from {kind!r} action: {status}")


async def carry_out(
    store: EventStore, action: Action, *, automation_id: UUID, invocation: UUID, action_index: int,
    event: Any | None, clock: Clock, automation_name: str = "",
    context: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> Outcome:
    """Carry out one deployment, work pool or work queue action; never raises for what Prefect
    reports as a failed action. ``context`` gives the template context a run-deployment's
    Jinja parameters render with (read only when they have Jinja); the runs it makes record
    the automation (``automation_name``) as their creator."""
    outcome = Outcome()
    kind = _KINDS[type(action)]
    try:
        target_id = target(action, event)
        if target_id is None:
            raise ActionFailed(f"No {_NOUNS[kind]} could be inferred" if event is not None
                               else f"No event to infer the {_NOUNS[kind]}")
        if isinstance(action, WORK_POOL_ACTIONS):
            await _on_pool(store, action, target_id, outcome, clock)
            return outcome
        outcome.related.append({"prefect.resource.id": f"{kind}.{target_id}", "prefect.resource.role": "target"})
        if isinstance(action, RunDeployment):
            key = f"automation {automation_id}, action {action_index}, invocation {invocation}"
            parameters = await _rendered(store, action.parameters or {}, context)
            creator = created_by_automation(automation_id, automation_name)
            await _run(store, action, target_id, key, parameters, creator, outcome, clock)
        elif isinstance(action, DEPLOYMENT_ACTIONS):
            found = await deployments.set_paused(store, target_id, isinstance(action, PauseDeployment), clock=clock)
            outcome.details["status_code"] = 200 if found else 404
            if not found:
                raise _failed(action, 404)
        else:
            paused = isinstance(action, PauseWorkQueue)
            found = await work_pools.update_queue(
                store, work_pools.queue_by_id(target_id), {"is_paused": paused}, clock=clock
            )
            outcome.details["status_code"] = 204 if found else 404
            if not found:
                raise _failed(action, 404)
    except ActionFailed as exc:
        outcome.reason = str(exc)
    return outcome


async def _rendered(
    store: EventStore, parameters: dict[str, Any], context: Callable[[], Awaitable[dict[str, Any]]] | None,
) -> dict[str, Any]:
    """A run-deployment's parameters as Prefect's action renders them before asking for the
    run: v1 templates upgraded, a first pass finding the Jinja and the variables, then rendered
    with the firing's context. ActionFailed with Prefect's reason for a problem."""
    parameters = templates.upgrade_v1_templates(parameters)
    if not templates.has_templates(parameters):
        return parameters
    found = templates.placeholders(templates.hydrate(parameters, templates.Context()))
    jinja_context = await context() if context is not None and any(
        isinstance(p, templates.ValidJinja) for p in found) else {}
    variables: dict[str, Any] = {}
    for name in templates.variable_names(parameters):
        variable = await variable_reads.get_by_name(store, name)
        if variable is not None:
            variables[name] = variable.value
    ctx = templates.Context(raise_on_error=True, render_jinja=True, jinja_context=jinja_context,
                            render_variables=True, variables=variables)
    try:
        return templates.hydrate(parameters, ctx)
    except templates.HydrationError as exc:
        # Prefect reports the error's repr, which shows its class and (keyword-built) no message
        raise ActionFailed(f"Unable to create flow run from deployment: {exc.kind}()") from None


async def _run(
    store: EventStore, action: RunDeployment, deployment_id: UUID, key: str, parameters: dict[str, Any],
    created_by: dict[str, Any], outcome: Outcome, clock: Clock,
) -> None:
    """A Scheduled run of the deployment (``schedule_after`` ahead), keyed by the invocation so
    that a firing carried out again finds the run it made."""
    scheduled = ProposedState(
        type=StateType.SCHEDULED,
        state_details=StateDetails(scheduled_time=clock() + timedelta(seconds=action.schedule_after)),
    )
    body = deployments.DeploymentRun(
        state=scheduled, parameters=parameters, idempotency_key=key, job_variables=action.job_variables,
    )
    try:
        created = await deployments.create_flow_run(store, deployment_id, body, created_by=created_by, clock=clock)
    except BadRequest:
        outcome.details["status_code"] = 400
        raise _failed(action, 400) from None
    except (Conflict, Unprocessable) as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        outcome.details["status_code"] = status
        if status == 409:
            outcome.details["validation_error"] = str(exc)
        raise _failed(action, status, str(exc)) from None
    if created is None:
        outcome.details["status_code"] = 404
        raise _failed(action, 404)
    run, new = created
    outcome.details["status_code"] = 201 if new else 200
    outcome.related.append({
        "prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.role": "flow-run",
        "prefect.resource.name": run.name,
    })


async def _on_pool(
    store: EventStore, action: PauseWorkPool | ResumeWorkPool, pool_id: UUID, outcome: Outcome, clock: Clock
) -> None:
    async with store.reading() as tx:
        pool = await pool_reads.pool_in(tx, pool_id)
    if pool is None:
        raise ActionFailed(f"Work pool {pool_id} not found")
    outcome.related.append({
        "prefect.resource.id": f"prefect.work-pool.{pool.id}", "prefect.resource.name": pool.name,
        "prefect.resource.role": "target",
    })
    found = await work_pools.update_pool(store, pool.name, {"is_paused": isinstance(action, PauseWorkPool)}, clock=clock)
    outcome.details["status_code"] = 204 if found else 404
    if not found:
        raise _failed(action, 404)


__all__ = ["TARGET_ACTIONS", "carry_out", "target"]
