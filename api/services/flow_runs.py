"""Flow run commands: create (idempotently), update, delete, and set_state.

set_state goes through api/services/transitions.py's decide-and-append loop, which stands in
for Prefect's ``SELECT ... FOR UPDATE`` with the run stream's expected version.
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

from runlog.schema import streams
from runlog.commands.clock import Clock, system_clock
from runlog.eventstore import NO_STREAM, EventStore, NewEvent
from runlog.projections.cache import ViewCache
from runlog.projections.runs import FlowRunView, evolve_flow_run
from runlog.projections.runs_writer import cache_key
from runlog.schema import events as catalogue

from ..orchestration import Decision, FlowRunContext, ProposedState, Status, decide_flow_run
from ..queries import runs as queries
from ..schemas.runs import DEFAULT_POLICY, FlowRunCreate, FlowRunUpdate
from ..writes import append_event
from . import integrity, run_keys
from .transitions import decide_and_append

RUN_NAMESPACE = uuid.UUID("9f1d6f0a-3c1e-4f7e-8a5b-72756e6c6f67")

_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fancy", "gentle", "hardy", "jolly", "keen",
               "lively", "mellow", "nimble", "plucky", "quiet", "rapid", "sturdy", "tidy", "vivid", "witty")
_NOUNS = ("otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "panda", "raven", "salmon",
          "tapir", "walrus", "yak", "zebra", "bison", "crane", "dingo", "egret", "gecko", "ibis")


def generated_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"  # noqa: S311 - a name, not a secret


def stream_of(run_id: UUID) -> str:
    return streams.flow_run(run_id)


def state_from_proposal(
    proposed: ProposedState, state_id: UUID, now: datetime, **references: UUID | None
) -> catalogue.State:
    """A run's initial state, written with force at creation, shaped as the rules shape states.

    ``references`` are the state_details ids to set (flow_run_id, task_run_id).
    """
    details = msgspec.structs.replace(proposed.state_details, **references)
    if proposed.type is catalogue.StateType.SCHEDULED and details.scheduled_time is None:
        details = msgspec.structs.replace(details, scheduled_time=proposed.timestamp or now)
    return catalogue.State(
        id=state_id, type=proposed.type, name=proposed.name or proposed.type.value.title(),
        timestamp=proposed.timestamp or now, message=proposed.message, state_details=details, data=proposed.data,
    )


def run_id_for_key(flow_id: UUID, idempotency_key: str, generation: int = 0) -> UUID:
    """The id of the run holding ``idempotency_key`` in its ``generation`` (api/services/run_keys.py).

    Generation 0 is the id runlog has always derived, so runs created before generations keep theirs.
    """
    suffix = f"\x1f{generation}" if generation else ""
    return uuid.uuid5(RUN_NAMESPACE, f"{flow_id}\x1f{idempotency_key}{suffix}")


async def create(
    store: EventStore, body: FlowRunCreate, *, cache: ViewCache | None = None, clock: Clock = system_clock,
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
        flow_found, parent_found, existing = await queries.flow_run_create_read(
            store, body.flow_id, body.parent_task_run_id, body.idempotency_key
        )
    if not flow_found:
        raise integrity.missing("flow_id", "flow", body.flow_id)
    if known_flows is not None:
        known_flows.add(body.flow_id)
    if not parent_found:
        assert body.parent_task_run_id is not None
        raise integrity.missing("parent_task_run_id", "task run", body.parent_task_run_id)
    if existing is not None:
        return existing, False

    async def append_new(run_id: UUID) -> FlowRunView:
        return await _append_new(store, run_id, body, cache, clock)

    if body.idempotency_key is None:
        return await append_new(uuid.uuid4()), True
    key = body.idempotency_key
    # Concurrent creations with one key meet on one stream per generation; only one wins.
    return await run_keys.create_or_find(
        store, derive=lambda generation: run_id_for_key(body.flow_id, key, generation), stream_of=stream_of,
        load=lambda run_id: queries.get_flow_run(store, run_id), append_new=append_new,
    )


async def _append_new(
    store: EventStore, run_id: UUID, body: FlowRunCreate, cache: ViewCache | None, clock: Clock
) -> FlowRunView:
    """Append a new run's first events (ConcurrencyError when its stream exists) and return its view."""
    now = clock()
    state_id = uuid.uuid4()
    proposed = body.state or ProposedState(type=catalogue.StateType.PENDING)
    created = catalogue.FlowRunCreated(
        flow_run_id=run_id, flow_id=body.flow_id, name=body.name or generated_name(),
        flow_version=body.flow_version, deployment_id=body.deployment_id, parameters=body.parameters,
        context=body.context, idempotency_key=body.idempotency_key, parent_task_run_id=body.parent_task_run_id,
        empirical_policy={**DEFAULT_POLICY, **(body.empirical_policy or {})}, tags=body.tags,
        labels={"prefect.flow.id": str(body.flow_id), **(body.labels or {})},
        work_queue_name=body.work_queue_name, work_pool_name=body.work_pool_name,
        job_variables=body.job_variables or {}, created=now,
    )
    state = state_from_proposal(proposed, state_id, now, flow_run_id=run_id)
    first_state = catalogue.FlowRunStateChanged(flow_run_id=run_id, state=state, forced=True)
    events = [
        NewEvent(type=catalogue.event_type(created), data=catalogue.encode(created), id=uuid.uuid4()),
        NewEvent(type=catalogue.event_type(first_state), data=catalogue.encode(first_state), id=state_id),
    ]
    await store.append(stream_of(run_id), events, expected_version=NO_STREAM)
    # The view the runs projection just wrote, folded here from the same stored events instead
    # of read back: the run's stream holds exactly these two.
    view = None
    for version, event in enumerate(events, start=1):
        view = evolve_flow_run(view, catalogue.decode(event.data), version)
    assert view is not None
    if cache is not None:
        cache.put(cache_key("flow_runs", run_id), view)
    await mirror_to_parent_task(store, view, state)
    return view


async def update(store: EventStore, run_id: UUID, changes: FlowRunUpdate | dict[str, Any]) -> bool:
    """Apply a PATCH; False when the run does not exist."""
    if await queries.get_flow_run(store, run_id) is None:
        return False
    fields = msgspec.to_builtins(changes) if not isinstance(changes, dict) else changes
    if fields:
        await append_event(store, stream_of(run_id), catalogue.FlowRunUpdated(flow_run_id=run_id, changes=fields))
    return True


async def delete(store: EventStore, run_id: UUID, *, cache: ViewCache | None = None) -> bool:
    """Delete a flow run and its task runs (Prefect's foreign key cascades); False when it does not exist.

    The task runs go first, so a deletion cut short never leaves task runs of a deleted run.
    """
    if await queries.get_flow_run(store, run_id) is None:
        return False
    task_run_ids = await queries.task_run_ids_of_flow_run(store, run_id)
    await in_chunks(task_run_ids, lambda task_run_id: append_event(
        store, streams.task_run(task_run_id), catalogue.TaskRunDeleted(task_run_id=task_run_id)
    ))
    await append_event(store, stream_of(run_id), catalogue.FlowRunDeleted(flow_run_id=run_id))
    if cache is not None:
        cache.drop(cache_key("flow_runs", run_id))
    return True


async def delete_runs_of_flow(store: EventStore, flow_id: UUID, *, cache: ViewCache | None = None) -> int:
    """Delete every run of a flow (and their task runs) before the flow goes; how many there were."""
    run_ids = await queries.flow_run_ids_of_flow(store, flow_id)
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
    clock: Clock = system_clock,
) -> tuple[FlowRunView, Decision] | None:
    """Decide and record a transition; None when the run does not exist."""

    async def decide(view: FlowRunView) -> Decision:
        ctx = FlowRunContext(
            now=clock(), state_id=uuid.uuid4(), force=force,
            has_deployment=view.deployment_id is not None, is_subflow=view.parent_task_run_id is not None,
        )
        return decide_flow_run(view, proposed, ctx)

    def record(view: FlowRunView, decision: Decision) -> catalogue.Event:
        assert decision.state is not None
        return catalogue.FlowRunStateChanged(
            flow_run_id=run_id, state=decision.state, initial_state_type=view.state.type if view.state else None,
            forced=force, empirical_policy=decision.empirical_policy,
        )

    outcome = await decide_and_append(
        store, stream_id=stream_of(run_id), cache=cache if cache is not None else ViewCache(0),
        cache_key=cache_key("flow_runs", run_id), load=lambda: queries.get_flow_run(store, run_id),
        decide=decide, record=record, evolve=evolve_flow_run,
    )
    if outcome is not None and outcome[1].state is not None:
        await mirror_to_parent_task(store, outcome[0], outcome[1].state)
    return outcome


async def mirror_to_parent_task(store: EventStore, run: FlowRunView, state: catalogue.State) -> None:
    """A subflow's parent task run follows the subflow's state (Prefect's UpdateSubflowParentTask).

    The copy is forced onto the task run's stream with a new id and child_flow_run_id set, so
    the parent flow's task list shows where its subflow is.
    """
    if run.parent_task_run_id is None:
        return
    task = await queries.get_task_run(store, run.parent_task_run_id)
    if task is None:
        return
    details = msgspec.structs.replace(
        state.state_details, child_flow_run_id=run.id, task_run_id=task.id, flow_run_id=task.flow_run_id
    )
    copy = msgspec.structs.replace(state, id=uuid.uuid4(), state_details=details)
    event = catalogue.TaskRunStateChanged(
        task_run_id=task.id, flow_run_id=task.flow_run_id, state=copy,
        initial_state_type=task.state.type if task.state else None, forced=True,
    )
    await append_event(store, streams.task_run(task.id), event, event_id=copy.id)


__all__ = ["Status", "create", "delete", "mirror_to_parent_task", "set_state", "update"]
