"""Task run commands: create (idempotently per flow run, task key and dynamic key) and set_state.

Most task runs reach runlog as client events (api/services/events.py); these commands serve
POST /task_runs/ and /task_runs/{id}/set_state, which the client uses for subflow wrappers and
server-side orchestration. Before deciding, set_state finds what the pure rules cannot: the
parent flow run, the task run state cache entry for a RUNNING proposal's cache key, and a
random draw for retry jitter.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from uuid import UUID

import msgspec

from runlog.commands.clock import Clock, system_clock
from runlog.eventstore import NO_STREAM, ConcurrencyError, EventStore, NewEvent
from runlog.projections.cache import ViewCache
from runlog.projections.runs import TaskRunView, evolve_task_run
from runlog.projections.runs_writer import TASK_RUN_STREAM, cache_key
from runlog.projections.task_run_state_cache import MAX_CACHE_KEY_LENGTH, CacheEntry
from runlog.projections.task_run_state_cache import lookup as lookup_cached_state
from runlog.schema import events as catalogue

from ..orchestration import Decision, ProposedState, TaskRunContext, decide_task_run
from ..queries import runs as queries
from ..schemas.runs import TaskRunCreate
from ..writes import append_event
from .flow_runs import state_from_proposal
from .transitions import decide_and_append

TASK_NAMESPACE = uuid.UUID("2d0b8f5e-6a41-4c1a-9e77-72756e6c6f67")

TASK_POLICY = {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 0, "retry_delay": 0, "retry_jitter_factor": None}


def stream_of(run_id: UUID) -> str:
    return TASK_RUN_STREAM + str(run_id)


async def create(store: EventStore, body: TaskRunCreate, *, clock: Clock = system_clock) -> tuple[TaskRunView, bool]:
    run_id = body.id or uuid.uuid5(TASK_NAMESPACE, f"{body.flow_run_id}\x1f{body.task_key}\x1f{body.dynamic_key}")
    existing = await queries.get_task_run(store, run_id)
    if existing is not None:
        return existing, False
    now = clock()
    fields = msgspec.to_builtins(body)
    fields.pop("state", None)
    fields.pop("id", None)
    fields["empirical_policy"] = {**TASK_POLICY, **(body.empirical_policy or {})}
    fields["labels"] = body.labels or {}
    fields["name"] = body.name or f"{body.task_key}-{body.dynamic_key}"[:80]
    created = catalogue.TaskRunCreated(task_run_id=run_id, flow_run_id=body.flow_run_id, task_run=fields, created=now)
    proposed = body.state or ProposedState(type=catalogue.StateType.PENDING)
    state_id = uuid.uuid4()
    state = state_from_proposal(proposed, state_id, now, task_run_id=run_id, flow_run_id=body.flow_run_id)
    first = catalogue.TaskRunStateChanged(task_run_id=run_id, flow_run_id=body.flow_run_id, state=state, forced=True)
    events = [
        NewEvent(type=catalogue.event_type(created), data=catalogue.encode(created), id=uuid.uuid4()),
        NewEvent(type=catalogue.event_type(first), data=catalogue.encode(first), id=state_id),
    ]
    expected = NO_STREAM
    for attempt in range(3):
        try:
            await store.append(stream_of(run_id), events, expected_version=expected)
            break
        except ConcurrencyError as exc:
            existing = await queries.get_task_run(store, run_id)
            if existing is not None:
                return existing, False
            if attempt == 2:
                raise
            # The stream is there but the task run is not: it was deleted, and its keys (or
            # id) make a new one, as in Prefect. Appended after the deletion, at that version.
            expected = exc.actual
    view = await queries.get_task_run(store, run_id)
    assert view is not None
    return view, True


async def set_state(
    store: EventStore, run_id: UUID, proposed: ProposedState, *, force: bool = False, cache: ViewCache | None = None,
    clock: Clock = system_clock,
) -> tuple[TaskRunView, Decision] | None:
    """Decide and record a transition; None when the task run does not exist."""

    async def decide(view: TaskRunView) -> Decision:
        now = clock()
        parent = await queries.get_flow_run(store, view.flow_run_id) if view.flow_run_id else None
        ctx = TaskRunContext(
            now=now, state_id=uuid.uuid4(), force=force, flow_run=parent,
            cache_entry=await _cached_state(store, proposed, force, now),
            jitter_draw=random.random(),  # noqa: S311 - retry jitter, not a secret
        )
        return decide_task_run(view, proposed, ctx)

    def record(view: TaskRunView, decision: Decision) -> catalogue.Event:
        assert decision.state is not None
        return catalogue.TaskRunStateChanged(
            task_run_id=run_id, flow_run_id=view.flow_run_id, state=decision.state,
            initial_state_type=view.state.type if view.state else None, forced=force,
            reset_run_count=decision.reset_run_count, flow_run_run_count=decision.flow_run_run_count,
        )

    return await decide_and_append(
        store, stream_id=stream_of(run_id), cache=cache if cache is not None else ViewCache(0),
        cache_key=cache_key("task_runs", run_id), load=lambda: queries.get_task_run(store, run_id),
        decide=decide, record=record, evolve=evolve_task_run,
    )


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


async def update(store: EventStore, run_id: UUID, changes: dict) -> bool:
    """Apply a PATCH (the name); False when the task run does not exist."""
    if await queries.get_task_run(store, run_id) is None:
        return False
    if changes:
        await append_event(store, stream_of(run_id), catalogue.TaskRunUpdated(task_run_id=run_id, changes=changes))
    return True


async def delete(store: EventStore, run_id: UUID) -> bool:
    if await queries.get_task_run(store, run_id) is None:
        return False
    await append_event(store, stream_of(run_id), catalogue.TaskRunDeleted(task_run_id=run_id))
    return True
