"""Task run commands: create (idempotently per flow run, task key and dynamic key) and set_state.

Most task runs reach runlog as client events (commands/client_events.py); these commands serve
POST /task_runs/ and /task_runs/{id}/set_state, which the client uses for subflow wrappers and
server-side orchestration. Before deciding, set_state finds what the pure rules cannot: the
parent flow run, the task run state cache entry for a RUNNING proposal's cache key, and a
random draw for retry jitter.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import ConcurrencyError, EventStore
from runlog.projections import runs_writer as reads
from runlog.projections.cache import ViewCache
from runlog.projections.runs import TaskRunView, evolve_task_run
from runlog.projections.task_run_state_cache import MAX_CACHE_KEY_LENGTH, CacheEntry
from runlog.projections.task_run_state_cache import lookup as lookup_cached_state
from runlog.schema import events as catalogue
from runlog.schema import streams

from . import integrity, run_keys
from .clock import Clock, system_clock
from .entities import EntityStream
from .executor import Decided
from .orchestration import Decision, ProposedState, TaskRunContext, decide_task_run
from .orchestration.common import state_from_proposal

TASK_NAMESPACE = uuid.UUID("2d0b8f5e-6a41-4c1a-9e77-72756e6c6f67")

TASK_POLICY = {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0, "retry_delay": 0, "retry_jitter_factor": None}


class NewTaskRun(msgspec.Struct, kw_only=True):
    """A task run to create (POST /task_runs/ takes it as it is, named as Prefect names it)."""

    task_key: str
    dynamic_key: str
    name: str | None = None
    flow_run_id: UUID | None = None
    id: UUID | None = None
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    task_version: str | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | None = None
    task_inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    state: ProposedState | None = None


def stream_of(run_id: UUID) -> str:
    return streams.task_run(run_id)


TASK_RUNS = EntityStream(stream_of, reads.get_task_run, evolve_task_run, cached_as="task_runs")


def run_id_for_key(flow_run_id: UUID | None, task_key: str, dynamic_key: str, generation: int = 0) -> UUID:
    """The id of the task run holding this key in its ``generation`` (commands/run_keys.py).

    Generation 0 is the id runlog has always derived, so task runs created before keep theirs.
    """
    suffix = f"\x1f{generation}" if generation else ""
    return uuid.uuid5(TASK_NAMESPACE, f"{flow_run_id}\x1f{task_key}\x1f{dynamic_key}{suffix}")


async def create(store: EventStore, body: NewTaskRun, *, clock: Clock = system_clock) -> tuple[TaskRunView, bool]:
    """The new task run and True, or the existing one and False.

    Without an ``id`` the task run is found by its flow run, task key and dynamic key. Raises
    IntegrityConflict when the flow run does not exist, or when ``id`` is that of a deleted
    task run (its stream keeps the deleted run's history).
    """
    first_id = body.id or run_id_for_key(body.flow_run_id, body.task_key, body.dynamic_key)
    flow_run_found, existing = await reads.task_run_create_read(store, body.flow_run_id, first_id)
    integrity.require(flow_run_found, "flow_run_id", "flow run", body.flow_run_id)
    if existing is not None:
        return existing, False

    if body.id is None:
        return await run_keys.create_or_find(
            store, TASK_RUNS,
            lambda generation: run_id_for_key(body.flow_run_id, body.task_key, body.dynamic_key, generation),
            lambda run_id: _append_new(store, run_id, body, clock),
        )
    try:
        return await _append_new(store, body.id, body, clock), True
    except ConcurrencyError:
        existing = await reads.get_task_run(store, body.id)
        if existing is not None:
            return existing, False  # created meanwhile with this id
    raise integrity.IntegrityConflict(
        f"{integrity.PREFECT_CONFLICT}: task run {body.id} was deleted and its id cannot be used again; "
        "create the task run without an id or with a new one."
    )


async def _append_new(store: EventStore, run_id: UUID, body: NewTaskRun, clock: Clock) -> TaskRunView:
    """Append a new task run's first events (ConcurrencyError when its stream exists); its view."""

    def decide(_view: None, now: datetime) -> Decided[None]:
        fields = msgspec.to_builtins(body)
        fields.pop("state", None)
        fields.pop("id", None)
        fields["empirical_policy"] = {**TASK_POLICY, **(body.empirical_policy or {})}
        fields["labels"] = body.labels or {}
        fields["name"] = body.name or f"{body.task_key}-{body.dynamic_key}"[:80]
        created = catalogue.TaskRunCreated(
            task_run_id=run_id, flow_run_id=body.flow_run_id, task_run=fields, created=now
        )
        proposed = body.state or ProposedState(type=catalogue.StateType.PENDING)
        state_id = uuid.uuid4()
        state = state_from_proposal(proposed, state_id, now, task_run_id=run_id, flow_run_id=body.flow_run_id)
        first = catalogue.TaskRunStateChanged(
            task_run_id=run_id, flow_run_id=body.flow_run_id, state=state, forced=True
        )
        return Decided([created, first], None, ids=[uuid.uuid4(), state_id])

    return await TASK_RUNS.create(store, run_id, decide, clock=clock)


async def set_state(
    store: EventStore, run_id: UUID, proposed: ProposedState, *, force: bool = False, cache: ViewCache | None = None,
    clock: Clock = system_clock,
) -> tuple[TaskRunView, Decision] | None:
    """Decide and record a transition; None when the task run does not exist."""

    async def decide(view: TaskRunView | None, now: datetime) -> Decided[Decision | None]:
        if view is None:
            return Decided((), None)
        parent = await reads.get_flow_run(store, view.flow_run_id) if view.flow_run_id else None
        ctx = TaskRunContext(
            now=now, state_id=uuid.uuid4(), force=force, flow_run=parent,
            cache_entry=await _cached_state(store, proposed, force, now),
            jitter_draw=random.random(),  # noqa: S311 - retry jitter, not a secret
        )
        decision = decide_task_run(view, proposed, ctx)
        if decision.state is None:
            return Decided((), decision)
        event = catalogue.TaskRunStateChanged(
            task_run_id=run_id, flow_run_id=view.flow_run_id, state=decision.state,
            initial_state_type=view.state.type if view.state else None, forced=force,
            reset_run_count=decision.reset_run_count, flow_run_run_count=decision.flow_run_run_count,
        )
        return Decided([event], decision, ids=[decision.state.id])  # a state's id is its event's id

    outcome = await TASK_RUNS.execute(store, run_id, decide, cache=cache, clock=clock)
    if outcome.result is None or outcome.view is None:
        return None
    return outcome.view, outcome.result


async def _cached_state(store: EventStore, proposed: ProposedState, force: bool, now: datetime) -> CacheEntry | None:
    """The cache entry CacheRetrieval would consult for this proposal, or None.

    Only a RUNNING proposal with a cache key and without ``refresh_cache`` can be answered from
    the cache, and only if the rules run (``force`` skips them, except for background tasks).
    """
    details = proposed.state_details
    if proposed.type is not catalogue.StateType.RUNNING or not details.cache_key or details.refresh_cache:
        return None
    if len(details.cache_key) > MAX_CACHE_KEY_LENGTH:
        return None  # never filed
    if force and not details.deferred:
        return None
    async with store.reading() as tx:
        return await lookup_cached_state(tx, details.cache_key, now)


async def update(
    store: EventStore, run_id: UUID, changes: dict, *, cache: ViewCache | None = None, clock: Clock = system_clock
) -> bool:
    """Apply a PATCH (the name) against the task run's current version; False when it does not exist."""
    changed = [catalogue.TaskRunUpdated(task_run_id=run_id, changes=changes)] if changes else []
    return await TASK_RUNS.if_exists(store, run_id, lambda _view, _now: changed, cache=cache, clock=clock)


async def delete(store: EventStore, run_id: UUID, *, cache: ViewCache | None = None, clock: Clock = system_clock) -> bool:
    """Delete a task run at its current version; False when it does not exist."""
    return await TASK_RUNS.delete(store, run_id, catalogue.TaskRunDeleted(task_run_id=run_id), cache=cache, clock=clock)
