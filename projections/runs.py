"""The runs read model: each flow run's and task run's current state and bookkeeping.

``evolve_flow_run`` and ``evolve_task_run`` are the pure folds ``(view, event) -> view``. They do
what Prefect's global orchestration policy does on every written transition: copy the state
onto the run, set start and end times, add up run time, count runs, and track the expected and
next scheduled start times. The orchestration rules decide *which* state is written; these
folds only derive the run's fields from the states that were written, so replaying a run's
stream always rebuilds the same view.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema.events import (
    FlowRunCreated,
    FlowRunDeleted,
    FlowRunStateChanged,
    FlowRunUpdated,
    FlowRunWorkQueueCleared,
    State,
    StateType,
    TaskRunCreated,
    TaskRunDeleted,
    TaskRunStateChanged,
    TaskRunUpdated,
)

TERMINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})


class FlowRunView(msgspec.Struct, kw_only=True, gc=False):
    """A flow run as its stream made it. gc=False: a view holds decoded data and never itself,
    so it cannot be in a reference cycle, and the collector need not visit the ten thousand
    the view cache keeps (nor their thirty-odd fields) at every full pass."""

    id: UUID
    version: int = 0  # the run stream's version this view reflects
    created: datetime
    updated: datetime
    name: str
    flow_id: UUID
    state: State | None = None
    flow_version: str | None = None
    deployment_id: UUID | None = None
    deployment_version: str | None = None
    work_queue_name: str | None = None
    work_pool_name: str | None = None
    work_queue_id: UUID | None = None
    work_pool_id: UUID | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    parent_task_run_id: UUID | None = None
    empirical_policy: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)
    job_variables: dict[str, Any] = msgspec.field(default_factory=dict)
    infrastructure_pid: str | None = None
    run_count: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: float = 0.0  # seconds
    expected_start_time: datetime | None = None
    next_scheduled_start_time: datetime | None = None
    auto_scheduled: bool = False
    created_by: dict[str, Any] | None = None


class TaskRunView(msgspec.Struct, kw_only=True, gc=False):
    """A task run as its stream made it; gc=False as for FlowRunView."""

    id: UUID
    version: int = 0
    created: datetime
    updated: datetime
    name: str = ""
    flow_run_id: UUID | None = None
    task_key: str = ""
    dynamic_key: str = ""
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    task_version: str | None = None
    empirical_policy: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)
    task_inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    state: State | None = None
    run_count: int = 0
    flow_run_run_count: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: float = 0.0
    expected_start_time: datetime | None = None
    next_scheduled_start_time: datetime | None = None


def _track_times(view: FlowRunView | TaskRunView, initial: State | None, new: State) -> dict[str, Any]:
    """The bookkeeping Prefect's global policy applies to flow and task runs alike."""
    changes: dict[str, Any] = {"state": new, "updated": new.timestamp}
    start_time, end_time = view.start_time, view.end_time
    if new.type is StateType.RUNNING and start_time is None:
        start_time = new.timestamp
    if initial is not None and initial.type in TERMINAL and new.type not in TERMINAL:
        end_time = None
    if new.type in TERMINAL and end_time is None:
        start_time = start_time or new.timestamp
        end_time = new.timestamp
    changes["start_time"], changes["end_time"] = start_time, end_time
    if initial is not None and initial.type is StateType.RUNNING:
        changes["total_run_time"] = view.total_run_time + (new.timestamp - initial.timestamp).total_seconds()
    if view.expected_start_time is None:
        scheduled = new.state_details.scheduled_time if new.type is StateType.SCHEDULED else None
        changes["expected_start_time"] = scheduled or new.timestamp
    next_scheduled = view.next_scheduled_start_time
    if initial is not None and initial.type is StateType.SCHEDULED:
        next_scheduled = None
    if new.type is StateType.SCHEDULED:
        next_scheduled = new.state_details.scheduled_time
    changes["next_scheduled_start_time"] = next_scheduled
    return changes


_CREATED_FIELDS = tuple(f for f in FlowRunCreated.__struct_fields__ if f in FlowRunView.__struct_fields__)
"""The fields a flow run's view takes over from its FlowRunCreated event."""
_created_values = operator.attrgetter(*_CREATED_FIELDS)  # all of them in one C call, not a getattr each


def evolve_flow_run(view: FlowRunView | None, event: Any, version: int) -> FlowRunView | None:
    """Fold one event of a flow run's stream into its view."""
    if isinstance(event, FlowRunCreated):
        fields = dict(zip(_CREATED_FIELDS, _created_values(event)))
        return FlowRunView(id=event.flow_run_id, version=version, updated=event.created, **fields)
    if view is None:
        return None
    if isinstance(event, FlowRunStateChanged):
        new = event.state
        changes = _track_times(view, view.state, new)
        policy = dict(event.empirical_policy if event.empirical_policy is not None else view.empirical_policy)
        if new.type is StateType.RUNNING:
            # Resuming from a pause does not count as another run.
            if not policy.get("resuming"):
                changes["run_count"] = view.run_count + 1
        if (new.type is StateType.RUNNING or new.type in TERMINAL) and policy.get("resuming"):
            policy["resuming"] = False
        changes["empirical_policy"] = policy
        return msgspec.structs.replace(view, version=version, **changes)
    if isinstance(event, FlowRunUpdated):
        fields = {k: v for k, v in event.changes.items() if k in _FLOW_RUN_UPDATABLE}
        merged = msgspec.convert({**msgspec.to_builtins(view), **msgspec.to_builtins(fields)}, FlowRunView)
        return msgspec.structs.replace(merged, version=version)
    if isinstance(event, FlowRunDeleted):
        return None
    if isinstance(event, FlowRunWorkQueueCleared) and view.work_queue_id == event.work_queue_id:
        return msgspec.structs.replace(view, version=version, work_queue_id=None, work_pool_id=None, work_pool_name=None)
    return msgspec.structs.replace(view, version=version)


_FLOW_RUN_UPDATABLE = frozenset(
    {"name", "flow_version", "parameters", "empirical_policy", "tags", "labels", "job_variables",
     "infrastructure_pid", "context", "work_queue_name"}
) & frozenset(FlowRunView.__struct_fields__)


def _new_task_run(task_run_id: UUID, flow_run_id: UUID | None, fields: dict[str, Any], at: datetime) -> TaskRunView:
    return TaskRunView(id=task_run_id, flow_run_id=flow_run_id, created=at, updated=at, **_task_fields(fields))


def _task_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The task run fields in a client's snapshot that we know, each converted on its own.

    A field that does not convert is left out (it keeps its default) instead of failing the
    fold: the snapshot is client data stored in the log, and one odd value in it must neither
    fail the append that carries it nor, later, a rebuild.
    """
    try:
        # The common case, every field valid, in one conversion: a third of the field-by-field
        # cost, which was a seventh of an import's CPU (bench/bench_import.py).
        whole = _convert_task_fields(raw)
    except (msgspec.ValidationError, TypeError):
        return _task_fields_one_by_one(raw)
    fields = {}
    for name in raw:
        if name in _TASK_FIELD_TYPES:
            value = getattr(whole, name)
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)  # Prefect reads a naive time as UTC
            fields[name] = value
    return fields


def _task_fields_one_by_one(raw: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        kind = _TASK_FIELD_TYPES.get(name)
        if kind is None:
            continue
        try:
            converted = msgspec.convert(value, kind, strict=False)
        except msgspec.ValidationError:
            continue
        if isinstance(converted, datetime) and converted.tzinfo is None:
            converted = converted.replace(tzinfo=UTC)  # Prefect reads a naive time as UTC
        fields[name] = converted
    return fields


def evolve_task_run(view: TaskRunView | None, event: Any, version: int) -> TaskRunView | None:
    """Fold one event of a task run's stream into its view.

    A state change comes in one of two kinds. A *decided* one (set_state, POST /task_runs/)
    was decided against the current view and appended with its version, so it always becomes
    current and the bookkeeping is derived here. A *reported* one carries the client's own
    snapshot of the task run in ``task_run`` (client-side orchestration sends task runs only
    as events, and they may arrive out of order): as Prefect's task run recorder does, the
    newest state by timestamp wins and the run's fields are the newest snapshot's. An older
    report stays in the stream (the state history) but does not change the view. Reports
    with equal timestamps go by arrival order, which is the client's sending order.
    """
    if isinstance(event, TaskRunCreated):
        return msgspec.structs.replace(
            _new_task_run(event.task_run_id, event.flow_run_id, event.task_run, event.created), version=version
        )
    if isinstance(event, TaskRunDeleted):
        return None
    if isinstance(event, TaskRunUpdated) and view is not None:
        name = event.changes.get("name")
        return msgspec.structs.replace(view, version=version, name=name if isinstance(name, str) else view.name)
    if not isinstance(event, TaskRunStateChanged):
        return view if view is None else msgspec.structs.replace(view, version=version)
    new = event.state
    if event.task_run:
        return task_run_from_report(view, event, version)
    if view is None:
        view = _new_task_run(event.task_run_id, event.flow_run_id, event.task_run, new.timestamp)
    changes = _track_times(view, view.state, new)
    run_count = 0 if event.reset_run_count else view.run_count
    if new.type is StateType.RUNNING:
        run_count += 1
    changes["run_count"] = run_count
    if event.flow_run_run_count is not None:
        changes["flow_run_run_count"] = event.flow_run_run_count
    return msgspec.structs.replace(view, version=version, **changes)


def task_run_from_report(view: TaskRunView | None, event: TaskRunStateChanged, version: int) -> TaskRunView:
    """The task run after a client's report of its state (``event.task_run``, the snapshot, is
    not empty): what ``evolve_task_run`` folds such an event into.

    The client did the bookkeeping (run count, times), so its snapshot is the task run and the
    view before matters only for ``created``, or when the report is stale (older than the
    current state), when ``created`` is all it changes. A report that names ``created`` itself
    and is not stale therefore gives the same view whatever ``view`` was, which is what lets
    runs_batch.fold_task_run fold a stream from its last such report.
    """
    new = event.state
    if view is not None and view.state is not None and new.timestamp < view.state.timestamp:
        # Stale: a newer state was reported first. Only ``created`` may learn from it, so the
        # view is the same whichever order the reports arrived in.
        created = event.created if event.created is not None else min(view.created, new.timestamp)
        return msgspec.structs.replace(view, version=version, created=created)
    if event.created is not None:
        created = event.created  # the source's own record of it (an import)
    else:
        created = new.timestamp if view is None else min(view.created, new.timestamp)
    return TaskRunView(
        id=event.task_run_id, version=version, created=created, updated=new.timestamp,
        flow_run_id=event.flow_run_id, state=new, **_task_fields(event.task_run),
    )


# flow_run_id is not taken from a snapshot: the event names the run's flow run itself.
_TASK_FIELDS = frozenset(TaskRunView.__struct_fields__) - {"id", "version", "created", "updated", "state", "flow_run_id"}
_TASK_FIELD_TYPES = {f.name: f.type for f in msgspec.structs.fields(TaskRunView) if f.name in _TASK_FIELDS}
_TaskFields = msgspec.defstruct(
    "_TaskFields", [(name, kind, None) for name, kind in _TASK_FIELD_TYPES.items()], kw_only=True, gc=False,
)
"""The snapshot's known fields at once (the defaults are never read: only fields present are taken)."""


def _convert_task_fields(raw: dict[str, Any]) -> Any:
    return msgspec.convert(raw, _TaskFields, strict=False)


def estimated_run_time(view: FlowRunView | TaskRunView, now: datetime) -> float:
    """Run time so far, counting the current RUNNING stretch (computed at read time, as Prefect does)."""
    total = view.total_run_time
    if view.state is not None and view.state.type is StateType.RUNNING:
        total += max((now - view.state.timestamp).total_seconds(), 0.0)
    return total


def estimated_start_time_delta(view: FlowRunView | TaskRunView, now: datetime) -> float:
    """Lateness in seconds: how late the run started, or how late it is if it has not."""
    expected = view.expected_start_time
    if expected is None:
        return 0.0
    if view.start_time is not None:
        return max((view.start_time - expected).total_seconds(), 0.0)
    terminal = view.state is not None and view.state.type in TERMINAL
    if not terminal and expected < now:
        return (now - expected).total_seconds()
    return 0.0


