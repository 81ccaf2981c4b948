"""The shape of an automation's definition (Prefect 3's event trigger and actions) and of the
Prefect events a trigger is evaluated against.

Automation events store the definition as plain JSON values (schema/events.py), so that a
definition written by an older runlog always decodes; these structs are how commands check a
definition and how the notifier reads one back (``trigger_of``, ``actions_of``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Union
from uuid import UUID

import msgspec

ResourceSpec = dict[str, Union[str, list[str]]]
"""Prefect's ResourceSpecification: label -> glob pattern(s); ``!`` negates, empty matches all."""

Posture = Literal["Reactive", "Proactive"]
StateTypeName = Literal[
    "SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"
]

MIN_PROACTIVE_WITHIN = 10.0
"""Prefect's floor for a proactive trigger's ``within``, in seconds (0 becomes this)."""

DEFAULT_SUBJECT = "Prefect automated notification"


class EventTrigger(msgspec.Struct, kw_only=True, tag="event", tag_field="type"):
    """Prefect's EventTrigger; ``within`` in seconds, as Prefect's JSON has it."""

    id: UUID
    match: ResourceSpec = msgspec.field(default_factory=dict)
    match_related: Union[ResourceSpec, list[ResourceSpec]] = msgspec.field(default_factory=dict)
    after: list[str] = msgspec.field(default_factory=list)
    expect: list[str] = msgspec.field(default_factory=list)
    for_each: list[str] = msgspec.field(default_factory=list)
    posture: Posture
    threshold: int = 1
    within: float = 0.0


class _Action(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class SendNotification(_Action, tag="send-notification", kw_only=True):
    block_document_id: UUID
    subject: str = DEFAULT_SUBJECT
    body: str


class CallWebhook(_Action, tag="call-webhook", kw_only=True):
    block_document_id: UUID
    payload: str = ""


class DoNothing(_Action, tag="do-nothing", kw_only=True):
    pass


class CancelFlowRun(_Action, tag="cancel-flow-run", kw_only=True):
    pass


class ChangeFlowRunState(_Action, tag="change-flow-run-state", kw_only=True):
    name: str | None = None
    state: StateTypeName
    message: str | None = None
    force: bool = False


class SuspendFlowRun(_Action, tag="suspend-flow-run", kw_only=True):
    pass


class ResumeFlowRun(_Action, tag="resume-flow-run", kw_only=True):
    pass


Source = Literal["selected", "inferred"]


class RunDeployment(_Action, tag="run-deployment", kw_only=True):
    """Prefect's RunDeployment; ``schedule_after`` in seconds, as Prefect's JSON has it."""

    source: Source = "selected"
    deployment_id: UUID | None = None
    parameters: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None
    schedule_after: float = 0.0


class PauseDeployment(_Action, tag="pause-deployment", kw_only=True):
    source: Source = "selected"
    deployment_id: UUID | None = None


class ResumeDeployment(_Action, tag="resume-deployment", kw_only=True):
    source: Source = "selected"
    deployment_id: UUID | None = None


class PauseWorkPool(_Action, tag="pause-work-pool", kw_only=True):
    source: Source = "selected"
    work_pool_id: UUID | None = None


class ResumeWorkPool(_Action, tag="resume-work-pool", kw_only=True):
    source: Source = "selected"
    work_pool_id: UUID | None = None


class PauseWorkQueue(_Action, tag="pause-work-queue", kw_only=True):
    source: Source = "selected"
    work_queue_id: UUID | None = None


class ResumeWorkQueue(_Action, tag="resume-work-queue", kw_only=True):
    source: Source = "selected"
    work_queue_id: UUID | None = None


TARGET_FIELDS = {
    "run-deployment": "deployment_id", "pause-deployment": "deployment_id", "resume-deployment": "deployment_id",
    "pause-work-pool": "work_pool_id", "resume-work-pool": "work_pool_id",
    "pause-work-queue": "work_queue_id", "resume-work-queue": "work_queue_id",
}
"""The actions on deployments, work pools and work queues, and the field naming a selected target."""

Action = Union[
    SendNotification, CallWebhook, DoNothing, CancelFlowRun, ChangeFlowRunState, SuspendFlowRun, ResumeFlowRun,
    RunDeployment, PauseDeployment, ResumeDeployment, PauseWorkPool, ResumeWorkPool, PauseWorkQueue, ResumeWorkQueue,
]

ACTION_TYPES = frozenset(
    ("send-notification", "call-webhook", "do-nothing", "cancel-flow-run", "change-flow-run-state",
     "suspend-flow-run", "resume-flow-run", *TARGET_FIELDS)
)
TEMPLATED_FIELDS = {"send-notification": ("subject", "body"), "call-webhook": ("payload",)}
"""The fields of each action that are Jinja templates (checked when saved, rendered when fired)."""


class AutomationDefinition(msgspec.Struct, kw_only=True):
    """What a client defines (Prefect's AutomationCore); ids and times are the log's."""

    name: str
    description: str = ""
    enabled: bool = True
    tags: list[str] = msgspec.field(default_factory=list)
    trigger: EventTrigger
    actions: list[Action]
    actions_on_trigger: list[Action] = msgspec.field(default_factory=list)
    actions_on_resolve: list[Action] = msgspec.field(default_factory=list)


def definition_of(data: Any) -> AutomationDefinition:
    """A stored definition (JSON values) as structs."""
    return msgspec.convert(data, AutomationDefinition)


def trigger_of(data: Any) -> EventTrigger:
    return msgspec.convert(data, EventTrigger)


class ReceivedEvent(msgspec.Struct, kw_only=True, gc=False):
    """A Prefect event (Prefect's ReceivedEvent), with its fields in Prefect's order: what the
    event feed serves and triggers are evaluated against: a flow-run state change derived from
    the log (projections/prefect_events.py), or an event a client sent. ``resource`` and each of
    ``related`` are label dicts (``prefect.resource.id``, ``prefect.resource.role``, ...);
    ``received`` is when the log recorded it (the feed always sets it)."""

    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] = msgspec.field(default_factory=list)
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    id: UUID
    follows: UUID | None = None
    received: datetime | None = None


__all__ = [
    "ACTION_TYPES", "Action", "AutomationDefinition", "CallWebhook", "CancelFlowRun", "ChangeFlowRunState",
    "DEFAULT_SUBJECT", "DoNothing", "EventTrigger", "MIN_PROACTIVE_WITHIN", "PauseDeployment", "PauseWorkPool",
    "PauseWorkQueue", "Posture", "ReceivedEvent", "ResourceSpec", "ResumeDeployment", "ResumeFlowRun",
    "ResumeWorkPool", "ResumeWorkQueue", "RunDeployment", "SendNotification", "SuspendFlowRun", "TARGET_FIELDS",
    "TEMPLATED_FIELDS", "definition_of", "trigger_of",
]
