"""Prefect's client event (POST /events, the /events/in websocket) and the parts of it the task
run recorder reads: the reported state and the task run snapshot in the payload.

msgspec checks the types; ``check_event`` adds the rules Prefect's pydantic validators add
(a resource needs a non-empty ``prefect.resource.id``, a related resource a role, label and
name limits). Unknown fields are ignored, as Prefect's event models ignore them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec

from runlog.schema.events import StateDetails, StateType

MAX_EVENT_NAME_LENGTH = 1024
MAX_LABELS_PER_RESOURCE = 500
MAX_RELATED_RESOURCES = 100
MAX_EVENT_BYTES = 1_500_000
"""Prefect's defaults (server.events.maximum_*); a larger event is dropped with a warning."""


class Event(msgspec.Struct, kw_only=True):
    """Prefect's ``Event``: the id is the client's, and it is the event's idempotency key."""

    occurred: datetime
    event: Annotated[str, msgspec.Meta(max_length=MAX_EVENT_NAME_LENGTH)]
    resource: dict[str, str]
    related: list[dict[str, str]] = msgspec.field(default_factory=list)
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    id: UUID
    follows: UUID | None = None


def check_event(event: Event, path: str = "$") -> Event:
    """Apply Prefect's validators; raise msgspec.ValidationError naming the field at fault.

    Returns the event with a naive ``occurred`` read as UTC, as Prefect reads it.
    """
    _check_resource(event.resource, f"{path}.resource", role=False)
    if len(event.related) > MAX_RELATED_RESOURCES:
        raise _invalid(f"The maximum number of related resources is {MAX_RELATED_RESOURCES}", f"{path}.related")
    for index, related in enumerate(event.related):
        _check_resource(related, f"{path}.related[{index}]", role=True)
    if event.occurred.tzinfo is None:
        event = msgspec.structs.replace(event, occurred=event.occurred.replace(tzinfo=UTC))
    return event


def _check_resource(labels: dict[str, str], path: str, *, role: bool) -> None:
    if len(labels) > MAX_LABELS_PER_RESOURCE:
        raise _invalid(f"The maximum number of labels per resource is {MAX_LABELS_PER_RESOURCE}", path)
    if not labels.get("prefect.resource.id"):
        raise _invalid("Resources must include a non-empty prefect.resource.id label", path)
    if role and not labels.get("prefect.resource.role"):
        raise _invalid("Related Resources must include a non-empty prefect.resource.role label", path)


def _invalid(message: str, path: str) -> msgspec.ValidationError:
    # The same "message - at `path`" shape msgspec gives its own errors.
    return msgspec.ValidationError(f"{message} - at `{path}`")


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
