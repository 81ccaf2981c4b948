"""Receiving Prefect client events: every one is appended to the log, idempotently by its id.

Each event becomes a PrefectEventReceived on its resource's stream. A client-orchestrated
task-run event (``prefect.task-run.*`` with ``prefect.orchestration=client``) is also what
Prefect's task run recorder turns into a task run: here it becomes a TaskRunStateChanged on
the task run's stream, whose record id is the Prefect event id (so the state's id is the
event's id, as in Prefect). The received event then takes an id derived from the Prefect id,
so both records are idempotent and a client re-sending after a reconnect never duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog

from runlog.eventstore import EventStore
from runlog.projections.cache import ViewCache
from runlog.projections.runs_writer import cache_key, flow_run_exists
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.events import StateDetails, StateType

from .executor import record

log = structlog.get_logger("runlog.api.events")

MAX_EVENT_NAME_LENGTH = 1024
MAX_EVENT_BYTES = 1_500_000
"""Prefect's defaults (server.events.maximum_*); a larger event is dropped with a warning."""
MAX_STREAM_ID_LENGTH = 1000  # the event store's limit on stream ids
TASK_RUN_EVENT = "prefect.task-run."
TASK_RUN_RESOURCE = "prefect.task-run."
FLOW_RUN_RESOURCE = "prefect.flow-run."

RECEIVED_NAMESPACE = uuid.UUID("6c3f2a71-0d4b-4e0e-9c55-72756e6c6f67")
"""Derives a received event's record id from a task-run event's id, which its state took."""


class Event(msgspec.Struct, kw_only=True):
    """Prefect's ``Event``: the id is the client's, and it is the event's idempotency key."""

    occurred: datetime
    event: Annotated[str, msgspec.Meta(max_length=MAX_EVENT_NAME_LENGTH)]
    resource: dict[str, str]
    related: list[dict[str, str]] = msgspec.field(default_factory=list)
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    id: UUID
    follows: UUID | None = None


class ReportedState(msgspec.Struct, kw_only=True):
    """``payload.validated_state`` of a task-run event; id and timestamp come from the event."""

    type: StateType
    name: str | None = None
    message: str | None = None
    state_details: StateDetails = msgspec.field(default_factory=StateDetails)
    data: Any = None


class TaskRunSnapshot(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``payload.task_run``: the client's task run, without id, flow run and state.

    task_key and dynamic_key are required, as on Prefect's TaskRun; a snapshot without them
    is not recorded as a task run. ``total_run_time`` comes as seconds (Prefect's float
    serialisation of a timedelta); an ISO 8601 duration is accepted too.
    """

    task_key: str
    dynamic_key: str
    name: str | None = None
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    task_version: str | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] | None = None
    labels: dict[str, Any] | None = None
    task_inputs: dict[str, Any] | None = None
    run_count: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    flow_run_run_count: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    expected_start_time: datetime | None = None
    next_scheduled_start_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: float | timedelta = 0.0


_encoder = msgspec.json.Encoder()
_STATE_TYPES = frozenset(t.value for t in catalogue.StateType)


def resource_stream(resource_id: str | None) -> str:
    """The stream of a resource's events: ``resource-<prefect.resource.id>``.

    An id the store cannot take as a stream name (too long, or with a NUL character) is
    replaced by its SHA-256, so its events still share one stream.
    """
    if not resource_id:
        return streams.UNKNOWN_RESOURCE
    stream = streams.RESOURCE + resource_id
    if len(stream) <= MAX_STREAM_ID_LENGTH and "\x00" not in resource_id:
        return stream
    return streams.RESOURCE + "sha256-" + hashlib.sha256(resource_id.encode()).hexdigest()


def received_event(event: Event, *, event_id: UUID | None = None) -> catalogue.PrefectEventReceived:
    return catalogue.PrefectEventReceived(
        occurred=event.occurred, event=event.event, resource=event.resource, related=event.related,
        payload=event.payload, follows=event.follows, event_id=event_id,
    )


class NotATaskRun(Exception):
    """A task-run event the recorder cannot build a task run from (Prefect logs and drops it)."""


def is_task_run_event(event: Event) -> bool:
    return event.event.startswith(TASK_RUN_EVENT) and event.resource.get("prefect.orchestration") == "client"


def task_run_state_changed(event: Event) -> catalogue.TaskRunStateChanged:
    """What Prefect's TaskRunRecorder builds from a client task-run event, as our event.

    Raises NotATaskRun when the resource, the flow-run related resource, the validated state
    or the task run snapshot is not what the recorder expects.
    """
    task_run_id = _object_id(event.resource["prefect.resource.id"], TASK_RUN_RESOURCE)
    flow_run_id = None
    # Prefect's resource_in_role: the first related resource in the role.
    flow_run = next((r for r in event.related if r.get("prefect.resource.role") == "flow-run"), None)
    if flow_run is not None:
        flow_run_id = _object_id(flow_run.get("prefect.resource.id", ""), FLOW_RUN_RESOURCE)
    try:
        reported = msgspec.convert(event.payload.get("validated_state"), ReportedState, strict=False)
        snapshot = msgspec.convert(event.payload.get("task_run"), TaskRunSnapshot, strict=False)
    except msgspec.ValidationError as exc:
        raise NotATaskRun(f"payload: {exc}") from None
    initial_type = None
    initial = event.payload.get("initial_state")
    if isinstance(initial, dict) and initial.get("type") in _STATE_TYPES:
        initial_type = catalogue.StateType(initial["type"])
    state = catalogue.State(
        id=event.id,
        type=reported.type,
        name=reported.name or reported.type.value.title(),
        timestamp=event.occurred,
        message=reported.message,
        state_details=msgspec.structs.replace(reported.state_details, task_run_id=task_run_id, flow_run_id=flow_run_id),
        data=reported.data,
    )
    return catalogue.TaskRunStateChanged(
        task_run_id=task_run_id, flow_run_id=flow_run_id, state=state, initial_state_type=initial_type,
        task_run=_snapshot_fields(snapshot),
    )


def _object_id(resource_id: str, prefix: str) -> UUID:
    if not resource_id.startswith(prefix):
        raise NotATaskRun(f"resource id {resource_id[:200]!r} does not start with {prefix!r}")
    try:
        return UUID(resource_id[len(prefix):])
    except ValueError:
        raise NotATaskRun(f"resource id {resource_id[:200]!r} does not end in a UUID") from None


def _snapshot_fields(snapshot: TaskRunSnapshot) -> dict[str, Any]:
    fields = msgspec.to_builtins(snapshot)  # omit_defaults: only what the client set
    if isinstance(snapshot.total_run_time, (int, float)):
        return fields
    fields["total_run_time"] = snapshot.total_run_time.total_seconds()
    return fields


async def receive(store: EventStore, event: Event, *, cache: ViewCache | None = None) -> None:
    """Append one checked client event to the log (a no-op if its id is already there).

    A task-run event naming a flow run that does not exist is kept as an event but builds no
    task run, as Prefect's recorder drops it (its foreign key refuses the row). ``cache`` may
    hold the flow run's view, which saves the read that checks it.

    Raises the store's errors: InvalidEvent for something the log cannot take,
    StorageUnavailable when the database is away (the caller decides what the client hears).
    """
    size = len(_encoder.encode(event))
    if size > MAX_EVENT_BYTES:
        log.warning("event_too_large", event_id=str(event.id), event_name=event.event[:200], size=size)
        return
    stream = resource_stream(event.resource.get("prefect.resource.id"))
    if not is_task_run_event(event):
        await _append(store, stream, received_event(event), event.id)
        return
    try:
        changed = task_run_state_changed(event)
        if changed.flow_run_id is not None and not await _flow_run_exists(store, changed.flow_run_id, cache):
            raise NotATaskRun(f"flow run {changed.flow_run_id} does not exist")
    except NotATaskRun as exc:
        log.warning("task_run_event_not_recorded", event_id=str(event.id), event_name=event.event[:200], reason=str(exc))
        await _append(store, stream, received_event(event), event.id)
        return
    # Two streams, so two appends; both are idempotent, so a failure between them is healed by
    # the client's re-send. Issued together, the store's group commit usually writes both in
    # one transaction.
    outcomes = await asyncio.gather(
        _append(store, streams.task_run(changed.task_run_id), changed, event.id),
        _append(store, stream, received_event(event, event_id=event.id), uuid.uuid5(RECEIVED_NAMESPACE, str(event.id))),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _flow_run_exists(store: EventStore, flow_run_id: UUID, cache: ViewCache | None) -> bool:
    # The client nearly always moved the flow run to Running through this server just before
    # its tasks report, so its view is usually cached and this costs no read.
    if cache is not None and cache.get(cache_key("flow_runs", flow_run_id)) is not None:
        return True
    return await flow_run_exists(store, flow_run_id)


async def _append(store: EventStore, stream: str, event: catalogue.Event, event_id: UUID) -> None:
    # A client's event keeps its id, so a re-send is a no-op; no decision, any version.
    await record(store, stream, [event], ids=[event_id])
