"""Deployment concurrency: the slot a deployment run takes on entering PENDING, keeps while it
runs, and gives back when it leaves PENDING/RUNNING/CANCELLING, as Prefect's
SecureFlowConcurrencySlots, ValidateDeploymentConcurrencyAtRunning, ReleaseFlowConcurrencySlots
and EnforceDeploymentConcurrencyOnLate do.

A deployment's ``concurrency_limit`` is a global concurrency limit named ``deployment:<id>``
(commands/concurrency.py); a run's slot is a lease on it, so taking and freeing it are events
on the limit's stream and survive a restart. The lease id travels in the run's state details
(``deployment_concurrency_lease_id``), where the engine finds it to renew it.

The slot is taken here, before the transition is decided (``check``), and the pure rules
(commands/orchestration/flow_rules.py) decide from the outcome; a lease taken for a
transition that was then not written with it is released again (``settle``), as Prefect's
rule does in its cleanup.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections import deployments as deployment_reads
from runlog.projections.concurrency import LimitView
from runlog.projections.runs import FlowRunView
from runlog.schema import events as catalogue
from runlog.schema.events import State, StateType

from . import concurrency
from .clock import Clock, system_clock

SLOT_WAIT_SECONDS = 30.0
"""Prefect's server.deployments.concurrency_slot_wait_seconds: how far ahead a run that found
no slot is rescheduled (AwaitingConcurrencySlot)."""
LEASE_SECONDS = 300.0
"""Prefect's server.concurrency.initial_deployment_lease_duration: the lease length when the
deployment's concurrency_options name no grace_period_seconds."""

HOLDING = frozenset({StateType.PENDING, StateType.RUNNING, StateType.CANCELLING})
"""A run in one of these states holds its deployment's slot."""

Kind = Literal["pending", "running", "late"]
Outcome = Literal["missing", "zero", "taken", "full", "kept", "lost"]


def limit_name(deployment_id: UUID) -> str:
    return f"deployment:{deployment_id}"


class SlotCheck(msgspec.Struct, kw_only=True):
    """What the command layer found before the rules decide a deployment run's transition.

    ``outcome``: missing (no such deployment), zero (a limit of 0), taken (a new lease,
    ``lease_id``), full (no slot free), kept (the run's lease was renewed), lost (its lease
    was gone and no slot was free). None of them when no limit applies (no check at all).
    """

    state_id: UUID | None  # the run state the check was made against
    outcome: Outcome
    lease_id: UUID | None = None
    collision_strategy: str = "ENQUEUE"
    slot_wait_seconds: float = SLOT_WAIT_SECONDS
    acquired: UUID | None = None  # a lease this check took, to release if it ends up unused


def kind_of(run: FlowRunView, proposed_type: StateType, proposed_name: str | None) -> Kind | None:
    """Which deployment concurrency rule governs this transition, if any."""
    if run.deployment_id is None:
        return None
    initial = run.state.type if run.state is not None else None
    if proposed_type is StateType.PENDING and initial not in HOLDING:
        return "pending"
    if proposed_type is StateType.RUNNING and initial is StateType.PENDING:
        return "running" if run.state is not None and run.state.state_details.deployment_concurrency_lease_id else None
    if proposed_type is StateType.SCHEDULED and initial is StateType.SCHEDULED and proposed_name == "Late":
        return "late"
    return None


def _options(options: dict[str, Any] | None) -> tuple[str, float]:
    options = options or {}
    strategy = options.get("collision_strategy") or "ENQUEUE"
    grace = options.get("grace_period_seconds")
    return strategy, float(grace) if grace is not None else LEASE_SECONDS


async def limit_of(store: EventStore, deployment: deployment_reads.DeploymentView) -> LimitView | None:
    """The global concurrency limit governing the deployment's runs, if it has one."""
    if deployment.global_concurrency_limit_id is not None:
        return await concurrency.read_limit(store, deployment.global_concurrency_limit_id)
    return await concurrency.read_limit_by_name(store, limit_name(deployment.id))


async def check(
    store: EventStore, run: FlowRunView, kind: Kind, *, slot_wait_seconds: float = SLOT_WAIT_SECONDS,
    clock: Clock = system_clock,
) -> SlotCheck | None:
    """Take, renew or look at the run's deployment slot for a transition of ``kind``; None
    when no limit applies (the rules then do nothing)."""
    assert run.deployment_id is not None
    state_id = run.state.id if run.state is not None else None
    deployment = await deployment_reads.get(store, run.deployment_id)
    if deployment is None:
        return SlotCheck(state_id=state_id, outcome="missing") if kind == "pending" else None
    limit = await limit_of(store, deployment)
    if limit is None or not limit.active:
        return None
    strategy, grace = _options(deployment.concurrency_options)
    found = SlotCheck(state_id=state_id, outcome="full", collision_strategy=strategy,
                      slot_wait_seconds=slot_wait_seconds)
    if kind == "late":
        if strategy != "CANCEL_NEW" or limit.active_slots(clock()) < limit.limit:
            return None
        return found
    if kind == "running":
        assert run.state is not None
        lease_id = run.state.state_details.deployment_concurrency_lease_id
        assert lease_id is not None
        if await concurrency.renew(store, lease_id, grace, clock=clock):
            found.outcome, found.lease_id = "kept", lease_id
            return found
    elif limit.limit == 0:
        found.outcome = "zero"
        return found
    holder = catalogue.ConcurrencyLeaseHolder(type="flow_run", id=run.id)
    granted = await concurrency.acquire(store, [limit.name], 1, lease_duration=grace, holder=holder, clock=clock)
    if isinstance(granted, concurrency.Granted) and granted.limits:
        found.outcome, found.lease_id, found.acquired = "taken", granted.lease_id, granted.lease_id
    elif isinstance(granted, concurrency.Granted):
        return None  # the limit went away meanwhile
    elif kind == "running":
        found.outcome = "lost"
    return found


async def settle(
    store: EventStore, slot: SlotCheck | None, initial: State | None, written: State | None, rejected: bool,
    *, clock: Clock = system_clock,
) -> None:
    """After a transition: release a lease taken for it that the written state does not carry,
    and the run's lease when the run left the holding states (not for an in-process retry)."""
    carried = written.state_details.deployment_concurrency_lease_id if written is not None else None
    if slot is not None and slot.acquired is not None and carried != slot.acquired:
        await concurrency.release(store, slot.acquired, clock=clock)
    if written is None or initial is None or initial.type not in HOLDING or written.type in HOLDING:
        return
    if written.type is StateType.SCHEDULED and written.name == "AwaitingRetry" and rejected:
        return  # RetryFailedFlows: the engine keeps the slot across the retry delay
    lease_id = initial.state_details.deployment_concurrency_lease_id
    if lease_id is not None:
        await concurrency.release(store, lease_id, clock=clock)


async def release_for_deleted(store: EventStore, run: FlowRunView, *, clock: Clock = system_clock) -> None:
    """A run deleted while holding its slot gives it back (Prefect's cleanup on delete)."""
    if run.state is None or run.state.type not in HOLDING:
        return
    lease_id = run.state.state_details.deployment_concurrency_lease_id
    if lease_id is not None:
        await concurrency.release(store, lease_id, clock=clock)


async def sync_limit(
    store: EventStore, deployment_id: UUID, limit: int | None, *, clock: Clock = system_clock
) -> None:
    """Make ``deployment:<id>`` match the deployment's concurrency_limit: created, changed, or
    deleted (with its leases) when the limit is unset, as Prefect keeps it."""
    name = limit_name(deployment_id)
    if limit is None:
        existing = await concurrency.read_limit_by_name(store, name)
        if existing is not None:
            await concurrency.delete_limit(store, existing.id, clock=clock)
        return
    await concurrency.upsert_limit(store, name, limit, clock=clock)


__all__ = [
    "HOLDING", "LEASE_SECONDS", "SLOT_WAIT_SECONDS", "SlotCheck", "check", "kind_of", "limit_name", "limit_of",
    "release_for_deleted", "settle", "sync_limit",
]
