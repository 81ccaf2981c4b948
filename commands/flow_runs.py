"""Flow run commands: create (idempotently), update, delete, and set_state.

Every one goes through the command executor (runlog.commands.executor), which stands in for
Prefect's ``SELECT ... FOR UPDATE`` with the run stream's expected version. A new run is
described by ``NewFlowRun``, the domain input that the HTTP body (api/schemas/runs.py) extends
and that a scheduler builds directly.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections import runs_writer as reads
from runlog.projections import work_pools
from runlog.projections.cache import ViewCache
from runlog.projections.runs import FlowRunView, TaskRunView, evolve_flow_run
from runlog.projections.runs_writer import cache_key
from runlog.schema import events as catalogue
from runlog.schema import streams

from . import deployment_concurrency, integrity, run_keys, task_runs
from .clock import Clock, system_clock
from .entities import EntityStream
from .errors import Busy
from .executor import Decided
from .orchestration import Decision, FlowRunContext, ProposedState, Status, decide_flow_run
from .orchestration.common import state_from_proposal

DEFAULT_POLICY = {
    "max_retries": 0, "retry_delay_seconds": 0.0, "retries": None, "retry_delay": None,
    "pause_keys": [], "resuming": False, "retry_type": None,
}
"""Prefect's FlowRunPolicy defaults: a new run's empirical_policy starts from them."""


class FlowRunFields(msgspec.Struct, kw_only=True):
    """What a client may ask of a new flow run (the body of POST /flow_runs/ extends it)."""

    flow_id: UUID
    name: str | None = None
    state: ProposedState | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    parent_task_run_id: UUID | None = None
    idempotency_key: str | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | None = None
    deployment_id: UUID | None = None
    deployment_version: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None


class NewFlowRun(FlowRunFields, kw_only=True):
    """A flow run to create: what a client's POST /flow_runs/ or a scheduler asks for, with
    what only the server sets."""

    auto_scheduled: bool = False
    """Created by the scheduler from a deployment's schedule (Prefect's flag of the same name)."""
    created_by: dict[str, Any] | None = None
    """Who made the run (Prefect's CreatedBy: id, type, display_value): set by the server,
    never taken from a client's body (see created_by_schedule and created_by_automation)."""


def created_by_schedule(schedule_id: UUID, slug: str | None, schedule: dict[str, Any]) -> dict[str, Any]:
    """What Prefect's scheduler records as a scheduled run's creator: the schedule, shown by
    its slug or else its kind's class name."""
    kind = "IntervalSchedule" if "interval" in schedule else "CronSchedule" if "cron" in schedule else "RRuleSchedule"
    return {"id": str(schedule_id), "type": "SCHEDULE", "display_value": slug or kind}


def created_by_automation(automation_id: UUID, name: str) -> dict[str, Any]:
    """What Prefect records for a run an automation's action made."""
    return {"id": str(automation_id), "type": "AUTOMATION", "display_value": name}


RUN_NAMESPACE = uuid.UUID("9f1d6f0a-3c1e-4f7e-8a5b-72756e6c6f67")

_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fancy", "gentle", "hardy", "jolly", "keen",
               "lively", "mellow", "nimble", "plucky", "quiet", "rapid", "sturdy", "tidy", "vivid", "witty")
_NOUNS = ("otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "panda", "raven", "salmon",
          "tapir", "walrus", "yak", "zebra", "bison", "crane", "dingo", "egret", "gecko", "ibis")


def generated_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"  # noqa: S311 - a name, not a secret


def stream_of(run_id: UUID) -> str:
    return streams.flow_run(run_id)


FLOW_RUNS = EntityStream(stream_of, reads.get_flow_run, evolve_flow_run, cached_as="flow_runs")


def run_id_for_key(flow_id: UUID, idempotency_key: str, generation: int = 0) -> UUID:
    """The id of the run holding ``idempotency_key`` in its ``generation`` (commands/run_keys.py).

    Generation 0 is the id runlog has always derived, so runs created before generations keep theirs.
    """
    suffix = f"\x1f{generation}" if generation else ""
    return uuid.uuid5(RUN_NAMESPACE, f"{flow_id}\x1f{idempotency_key}{suffix}")


async def create(
    store: EventStore, body: NewFlowRun, *, cache: ViewCache | None = None, clock: Clock = system_clock,
    known_flows: integrity.KnownIds | None = None,
) -> tuple[FlowRunView, bool]:
    """The new run and True, or the live run with the same idempotency key and False.

    Raises IntegrityConflict when the flow or the parent task run does not exist; one read
    checks both and finds the run holding the key. A new run's view goes into ``cache``: its
    append has committed, and the client's next call is nearly always set_state on it.
    """
    if known_flows is not None and body.flow_id in known_flows and body.parent_task_run_id is None \
            and body.idempotency_key is None:
        flow_found, parent_found, existing = True, True, None  # nothing else to look up
    else:
        flow_found, parent_found, existing = await reads.flow_run_create_read(
            store, body.flow_id, body.parent_task_run_id, body.idempotency_key
        )
    integrity.require(flow_found, "flow_id", "flow", body.flow_id)
    if known_flows is not None:
        known_flows.add(body.flow_id)
    integrity.require(parent_found, "parent_task_run_id", "task run", body.parent_task_run_id)
    if existing is not None:
        return existing, False

    body, placed = await _in_work_queue(store, body)
    if body.idempotency_key is None:
        return await _append_new(store, uuid.uuid4(), body, cache, clock, placed), True
    key = body.idempotency_key
    # Concurrent creations with one key meet on one stream per generation; only one wins.
    return await run_keys.create_or_find(
        store, FLOW_RUNS, lambda generation: run_id_for_key(body.flow_id, key, generation),
        lambda run_id: _append_new(store, run_id, body, cache, clock, placed),
    )


Placement = tuple[UUID, UUID] | None
"""The (work queue id, work pool id) a new run is created in."""


async def _in_work_queue(store: EventStore, body: NewFlowRun) -> tuple[NewFlowRun, Placement]:
    """A run created in a work pool records its queue's id (the queue named, else the pool's
    default queue) and that queue's name; a pool or queue that does not exist leaves it unplaced."""
    if body.work_pool_name is None:
        return body, None
    found = await work_pools.resolve_queue(store, body.work_pool_name, body.work_queue_name)
    if found is None:
        return body, None
    pool, queue = found
    return msgspec.structs.replace(body, work_queue_name=queue.name), (queue.id, pool.id)


async def _append_new(
    store: EventStore, run_id: UUID, body: NewFlowRun, cache: ViewCache | None, clock: Clock, placed: Placement = None,
) -> FlowRunView:
    """Append a new run's first events (ConcurrencyError when its stream exists) and return its view."""

    def decide(_view: None, now: datetime) -> Decided[None]:
        state_id = uuid.uuid4()
        proposed = body.state or ProposedState(type=catalogue.StateType.PENDING)
        created = catalogue.FlowRunCreated(
            flow_run_id=run_id, flow_id=body.flow_id, name=body.name or generated_name(),
            flow_version=body.flow_version, deployment_id=body.deployment_id,
            deployment_version=body.deployment_version, parameters=body.parameters,
            context=body.context, idempotency_key=body.idempotency_key, parent_task_run_id=body.parent_task_run_id,
            empirical_policy={**DEFAULT_POLICY, **(body.empirical_policy or {})}, tags=body.tags,
            labels={"prefect.flow.id": str(body.flow_id), **(body.labels or {})},
            work_queue_name=body.work_queue_name, work_pool_name=body.work_pool_name,
            job_variables=body.job_variables or {}, created=now,
            work_queue_id=placed[0] if placed else None, work_pool_id=placed[1] if placed else None,
            auto_scheduled=body.auto_scheduled, created_by=body.created_by,
        )
        state = state_from_proposal(proposed, state_id, now, flow_run_id=run_id)
        first_state = catalogue.FlowRunStateChanged(flow_run_id=run_id, state=state, forced=True)
        return Decided([created, first_state], None, ids=[uuid.uuid4(), state_id])

    view = await FLOW_RUNS.create(store, run_id, decide, clock=clock)
    assert view.state is not None
    if placed is not None and await work_pools.get_queue(store, placed[0]) is None:
        # The queue was deleted after it was resolved for this run: its deletion may have
        # looked for the queue's runs before this one was appended, so the run clears it
        # itself (after this append, any deletion that missed the run has committed).
        await clear_work_queue(store, [placed[0]], run_ids=[run_id], clock=clock)
        view = await reads.get_flow_run(store, run_id) or view
    if cache is not None:
        cache.put(cache_key("flow_runs", run_id), view)  # the client's next call is nearly always set_state
    await mirror_to_parent_task(store, view, view.state, clock=clock)
    return view


CLEAR_CONCURRENCY = 32
"""Runs whose queue is cleared at once: their appends share the store's group commits."""


async def clear_work_queue(
    store: EventStore, queue_ids: Iterable[UUID], *, run_ids: list[UUID] | None = None, clock: Clock = system_clock,
) -> int:
    """After ``queue_ids`` were deleted, record on each run created in one of them that it no
    longer has a queue or pool, as Prefect's foreign key clears it; the runs cleared.

    The runs are found by flow_runs.work_queue_id (or are ``run_ids``). Each is decided on its
    own stream (a run whose queue was already cleared, or that was deleted meanwhile, is left
    alone), so this can be repeated safely."""
    cleared: set[UUID] = set()
    given = run_ids
    for queue_id in queue_ids:
        run_ids = given if given is not None else await reads.flow_run_ids_of_queue(store, queue_id)

        def changed(view: FlowRunView, _now: datetime, queue_id: UUID = queue_id) -> list[catalogue.Event]:
            if view.work_queue_id != queue_id:
                cleared.discard(view.id)  # decided again after a conflict: someone else cleared it
                return []
            cleared.add(view.id)
            return [catalogue.FlowRunWorkQueueCleared(flow_run_id=view.id, work_queue_id=queue_id)]

        for start in range(0, len(run_ids), CLEAR_CONCURRENCY):
            chunk = run_ids[start:start + CLEAR_CONCURRENCY]
            await asyncio.gather(*(FLOW_RUNS.if_exists(store, run_id, changed, clock=clock) for run_id in chunk))
    return len(cleared)


async def update(
    store: EventStore, run_id: UUID, fields: dict[str, Any], *,
    cache: ViewCache | None = None, clock: Clock = system_clock,
) -> bool:
    """Set ``fields`` (a PATCH's) against the run's current version; False when the run does not exist."""
    changed = [catalogue.FlowRunUpdated(flow_run_id=run_id, changes=fields)] if fields else []
    return await FLOW_RUNS.if_exists(store, run_id, lambda _view, _now: changed, cache=cache, clock=clock)


async def update_labels(
    store: EventStore, run_id: UUID, labels: dict[str, Any], *,
    cache: ViewCache | None = None, clock: Clock = system_clock,
) -> bool:
    """Merge ``labels`` into the run's current labels; False when the run does not exist.

    Decided against the labels as they are at the version appended after, so two concurrent
    edits both survive: the second is decided again against the first's result.
    """

    def merged(view: FlowRunView, _now: datetime) -> list[catalogue.Event]:
        labelled = {**view.labels, **labels}
        if labelled == view.labels:
            return []
        return [catalogue.FlowRunUpdated(flow_run_id=run_id, changes={"labels": labelled})]

    return await FLOW_RUNS.if_exists(store, run_id, merged, cache=cache, clock=clock)


async def delete(
    store: EventStore, run_id: UUID, *, cache: ViewCache | None = None, clock: Clock = system_clock
) -> bool:
    """Delete a flow run and its task runs (Prefect's foreign key cascades); False when it does not exist.

    The task runs go first, so a deletion cut short never leaves task runs of a deleted run.
    """
    run = await reads.get_flow_run(store, run_id)
    if run is None:
        return False
    task_run_ids = await reads.task_run_ids_of_flow_run(store, run_id)
    await in_chunks(task_run_ids, lambda task_run_id: task_runs.delete(store, task_run_id, cache=cache, clock=clock))
    deleted = await FLOW_RUNS.delete(
        store, run_id, catalogue.FlowRunDeleted(flow_run_id=run_id), cache=cache, clock=clock
    )
    if deleted and run.deployment_id is not None:
        await deployment_concurrency.release_for_deleted(store, run, clock=clock)  # its slot is free again
    return deleted


async def delete_runs_of_flow(store: EventStore, flow_id: UUID, *, cache: ViewCache | None = None) -> int:
    """Delete every run of a flow (and their task runs) before the flow goes; how many there were."""
    run_ids = await reads.flow_run_ids_of_flow(store, flow_id)
    await in_chunks(run_ids, lambda run_id: delete(store, run_id, cache=cache))
    return len(run_ids)


DELETE_CHUNK = 64
"""Deletions in flight at once: the store's group commit writes each chunk in few transactions."""


T = TypeVar("T")


async def in_chunks(items: Iterable[T], call: Callable[[T], Awaitable[Any]]) -> None:
    pending = list(items)
    for start in range(0, len(pending), DELETE_CHUNK):
        await asyncio.gather(*(call(item) for item in pending[start : start + DELETE_CHUNK]))


async def set_state(
    store: EventStore, run_id: UUID, proposed: ProposedState, *, force: bool = False, cache: ViewCache | None = None,
    clock: Clock = system_clock, only_if: Callable[[FlowRunView], bool] | None = None,
    slot_wait_seconds: float = deployment_concurrency.SLOT_WAIT_SECONDS,
) -> tuple[FlowRunView, Decision] | None:
    """Decide and record a transition; None when the run does not exist.

    ``only_if`` (a background service's guard) is asked about the run as it is when the
    transition is decided, on every retry: when it says no, nothing is written and None returned.

    A deployment run's transition that its deployment's concurrency limit governs is decided
    twice: the first pass finds that a slot must be taken (or renewed), which happens between
    the passes (commands/deployment_concurrency.py); other runs are decided once.
    """
    slot: deployment_concurrency.SlotCheck | None = None
    checked_for: tuple[UUID | None, str] | None = None  # (state id, kind) the slot was checked against
    initial: list[catalogue.State | None] = [None]

    def decide(view: FlowRunView | None, now: datetime) -> Decided[Decision | _SlotNeeded | None]:
        if view is None or (only_if is not None and not only_if(view)):
            return Decided((), None)
        kind = None if force else deployment_concurrency.kind_of(view, proposed.type, proposed.name)
        here = (view.state.id if view.state is not None else None, kind or "")
        if kind is not None and checked_for != here:
            return Decided((), _SlotNeeded(view, kind))
        initial[0] = view.state
        ctx = FlowRunContext(
            now=now, state_id=uuid.uuid4(), force=force,
            has_deployment=view.deployment_id is not None, is_subflow=view.parent_task_run_id is not None,
            deployment_slot=slot if kind is not None else None,
        )
        decision = decide_flow_run(view, proposed, ctx)
        if decision.state is None:
            return Decided((), decision)
        event = catalogue.FlowRunStateChanged(
            flow_run_id=run_id, state=decision.state, initial_state_type=view.state.type if view.state else None,
            forced=force, empirical_policy=decision.empirical_policy,
        )
        return Decided([event], decision, ids=[decision.state.id])  # a state's id is its event's id

    for _attempt in range(_SLOT_PASSES):
        outcome = await FLOW_RUNS.execute(store, run_id, decide, cache=cache, clock=clock)
        needed = outcome.result
        if not isinstance(needed, _SlotNeeded):
            break
        await deployment_concurrency.settle(store, slot, None, None, False, clock=clock)  # an earlier pass's lease
        slot = await deployment_concurrency.check(
            store, needed.view, needed.kind, slot_wait_seconds=slot_wait_seconds, clock=clock
        )
        checked_for = (needed.view.state.id if needed.view.state is not None else None, needed.kind)
    else:
        await deployment_concurrency.settle(store, slot, None, None, False, clock=clock)
        raise Busy("The flow run kept changing while its deployment concurrency slot was taken")
    decision = outcome.result
    if decision is None or outcome.view is None:
        await deployment_concurrency.settle(store, slot, None, None, False, clock=clock)
        return None
    assert isinstance(decision, Decision)
    if outcome.view.deployment_id is not None:
        await deployment_concurrency.settle(
            store, slot, initial[0], decision.state, decision.status is Status.REJECT, clock=clock
        )
    if decision.state is not None:
        await mirror_to_parent_task(store, outcome.view, decision.state, clock=clock)
    return outcome.view, decision


_SLOT_PASSES = 4
"""How many times a transition is decided again when the run moves on while its slot is taken."""


class _SlotNeeded(msgspec.Struct):
    """A decision pass's answer when the deployment's slot must be looked at first."""

    view: FlowRunView
    kind: str


async def mirror_to_parent_task(
    store: EventStore, run: FlowRunView, state: catalogue.State, *, clock: Clock = system_clock
) -> None:
    """A subflow's parent task run follows the subflow's state (Prefect's UpdateSubflowParentTask).

    The copy is forced onto the task run's stream with a new id and child_flow_run_id set, so
    the parent flow's task list shows where its subflow is.
    """
    if run.parent_task_run_id is None:
        return
    task_run_id = run.parent_task_run_id

    def decide(task: TaskRunView | None, _now: datetime) -> Decided[None]:
        if task is None:
            return Decided((), None)
        details = msgspec.structs.replace(
            state.state_details, child_flow_run_id=run.id, task_run_id=task.id, flow_run_id=task.flow_run_id
        )
        copy = msgspec.structs.replace(state, id=uuid.uuid4(), state_details=details)
        event = catalogue.TaskRunStateChanged(
            task_run_id=task.id, flow_run_id=task.flow_run_id, state=copy,
            initial_state_type=task.state.type if task.state else None, forced=True,
        )
        return Decided([event], None, ids=[copy.id])

    await task_runs.TASK_RUNS.execute(store, task_run_id, decide, clock=clock)


__all__ = [
    "DEFAULT_POLICY", "FlowRunFields", "NewFlowRun", "clear_work_queue", "created_by_automation",
    "created_by_schedule", "Status", "create", "delete", "mirror_to_parent_task", "set_state", "update",
    "update_labels",
]
