"""The event catalogue: every kind of event runlog stores, as one msgspec tagged union.

Schema evolution, the rule every change here follows:

* A tag names one event type forever. Tags are explicit strings and are never reused.
* A new field always has a default, so events written before it existed still decode.
* A field's type never changes. A change that old readers or old events cannot absorb is a
  new event type with a new tag (``flow_run.state_changed.v2``, say); the old tag stays in
  the union and stays decodable forever, because the log is never rewritten.
* Stored events never forbid unknown fields, so an older runlog can read what a newer one wrote.

Payload encoding. Events are stored as MessagePack with ids as 16 raw bytes: replaying the log
is mostly decoding, and parsing a UUID from its 36-character text is most of the cost of
decoding a JSON state change (four ids in ~500 bytes), so the binary form decodes about twice
as fast. ``decode`` also reads JSON payloads (what runlog stored before, and what a hand-written
import may hold), told apart by the first byte: a JSON object starts with ``{``, a MessagePack
map never does. ``runlog events export`` renders payloads as JSON through ``to_json``.

No catalogue field is typed ``bytes``: binary values in a stored payload are always ids. Values
under ``Any`` are whatever the JSON the client sent decoded to (str, int, float, bool, None,
lists and dicts), so they read back unchanged. An integer MessagePack cannot hold (beyond 64
bits) makes ``encode`` fall back to JSON for that one event.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Union
from uuid import UUID

import msgspec

__all__ = [
    "AnyEvent",
    "BlockTypeCreated",
    "BlockTypeUpdated",
    "BlockTypeDeleted",
    "BlockSchemaCreated",
    "BlockSchemaDeleted",
    "BlockDocumentCreated",
    "BlockDocumentUpdated",
    "BlockDocumentDeleted",
    "ArtifactCreated",
    "ArtifactDeleted",
    "ArtifactUpdated",
    "AutomationCreated",
    "AutomationDeleted",
    "AutomationEnabledChanged",
    "AutomationMuted",
    "AutomationUpdated",
    "ConcurrencyLeaseHolder",
    "ConcurrencyLeaseRenewed",
    "ConcurrencyLimitCreated",
    "ConcurrencyLimitDeleted",
    "ConcurrencyLimitUpdated",
    "ConcurrencySlotsAcquired",
    "ConcurrencySlotsReleased",
    "DeliveryAttempted",
    "DeliveryDeadLettered",
    "DeliveryReplayed",
    "DeliveryScheduled",
    "DeliverySent",
    "DeploymentCreated",
    "DeploymentDeleted",
    "DeploymentPolled",
    "DeploymentScheduleCreated",
    "DeploymentScheduleDeleted",
    "DeploymentScheduleUpdated",
    "DeploymentStatusChanged",
    "DeploymentUpdated",
    "Event",
    "FlowCreated",
    "FlowDeleted",
    "FlowUpdated",
    "TaskRunDeleted",
    "TaskRunUpdated",
    "FlowRunDeleted",
    "FlowRunUpdated",
    "FlowRunWorkQueueCleared",
    "TaskRunCreated",
    "FlowRunCreated",
    "FlowRunStateChanged",
    "PrefectEventReceived",
    "State",
    "StateDetails",
    "StateType",
    "TaskRunStateChanged",
    "VariableCreated",
    "VariableDeleted",
    "SavedSearchSaved",
    "SavedSearchDeleted",
    "VariableUpdated",
    "WorkPoolCreated",
    "WorkPoolDeleted",
    "WorkPoolStatusChanged",
    "WorkPoolUpdated",
    "WorkQueueCreated",
    "WorkQueueDeleted",
    "WorkQueueStatusChanged",
    "WorkQueueUpdated",
    "WorkQueuesPolled",
    "WorkerDeleted",
    "WorkerHeartbeat",
    "WorkerStatusChanged",
    "decode",
    "encode",
    "event_type",
]


class StateType(enum.Enum):
    """Prefect's state types; the wire form is the upper-case name."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    __hash__ = object.__hash__  # identity, in C: Enum's hash(self._name_) is a Python call per set or dict lookup


class StateDetails(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """Prefect's StateDetails: every field optional, as on the wire."""

    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    child_flow_run_id: UUID | None = None
    scheduled_time: datetime | None = None
    cache_key: str | None = None
    cache_expiration: datetime | None = None
    deferred: bool | None = None
    untrackable_result: bool = False
    pause_timeout: datetime | None = None
    pause_reschedule: bool = False
    pause_key: str | None = None
    run_input_keyset: dict[str, str] | None = None
    refresh_cache: bool | None = None
    retriable: bool | None = None
    transition_id: UUID | None = None
    task_parameters_id: UUID | None = None
    traceparent: str | None = None
    deployment_concurrency_lease_id: UUID | None = None


class State(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """A run state as Prefect defines it. Its id is the id of the event that recorded it."""

    id: UUID
    type: StateType
    name: str | None = None
    timestamp: datetime
    message: str | None = None
    state_details: StateDetails = msgspec.field(default_factory=StateDetails)
    data: Any = None


class Event(msgspec.Struct, tag_field="kind", omit_defaults=True, kw_only=True, gc=False):
    """Base of every stored event. Subclasses set an explicit, never-reused tag.

    gc=False (inherited): decoded events are plain data that cannot form reference cycles,
    and leaving them out of the cycle collector makes replaying millions of them several
    times cheaper (the collector otherwise runs every few hundred decoded events).
    """


class FlowCreated(Event, tag="flow.created", kw_only=True):
    """A flow was registered (POST /flows/ with a new name)."""

    flow_id: UUID
    name: str
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)
    created: datetime


class FlowDeleted(Event, tag="flow.deleted", kw_only=True):
    flow_id: UUID


class FlowUpdated(Event, tag="flow.updated", kw_only=True):
    """PATCH /flows/{id}: the fields in ``changes`` (tags, labels) replace the flow's."""

    flow_id: UUID
    changes: dict[str, Any]
    updated: datetime


class FlowRunCreated(Event, tag="flow_run.created", kw_only=True):
    """A flow run came into being (POST /flow_runs/ or an imported run)."""

    flow_run_id: UUID
    flow_id: UUID
    name: str
    flow_version: str | None = None
    deployment_id: UUID | None = None
    deployment_version: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    idempotency_key: str | None = None
    parent_task_run_id: UUID | None = None
    empirical_policy: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)
    work_queue_name: str | None = None
    work_pool_name: str | None = None
    job_variables: dict[str, Any] = msgspec.field(default_factory=dict)
    created: datetime
    work_queue_id: UUID | None = None
    """The queue work_pool_name and work_queue_name named when the run was created (its pool's
    default queue when no queue was named); None when the pool or queue did not exist."""
    work_pool_id: UUID | None = None
    auto_scheduled: bool = False
    """Created by the scheduler from one of its deployment's schedules."""
    created_by: dict[str, Any] | None = None
    """Who made the run, as Prefect's CreatedBy ({"id", "type", "display_value"}): the schedule
    (type SCHEDULE) for the scheduler's runs, the automation (type AUTOMATION) for a request
    an automation made; None for a client's own."""


class FlowRunStateChanged(Event, tag="flow_run.state_changed", kw_only=True):
    """The server accepted (or forced) a new state for a flow run.

    ``empirical_policy``, when set, is the run's retry/pause policy after the transition (the
    orchestration rules change it on retries, pauses and resumes).
    """

    flow_run_id: UUID
    state: State
    initial_state_type: StateType | None = None
    forced: bool = False
    empirical_policy: dict[str, Any] | None = None


class FlowRunUpdated(Event, tag="flow_run.updated", kw_only=True):
    """PATCH /flow_runs/{id} or /labels: the fields in ``changes`` replace the run's."""

    flow_run_id: UUID
    changes: dict[str, Any]


class FlowRunDeleted(Event, tag="flow_run.deleted", kw_only=True):
    flow_run_id: UUID


class FlowRunWorkQueueCleared(Event, tag="flow_run.work_queue_cleared", kw_only=True):
    """The run's work queue (``work_queue_id``) was deleted, or its pool was: as Prefect's
    foreign key does, the run no longer names a queue or a pool (its work_queue_name stays)."""

    flow_run_id: UUID
    work_queue_id: UUID


class TaskRunCreated(Event, tag="task_run.created", kw_only=True):
    """POST /task_runs/: ``task_run`` holds the task run's fields as the client sent them."""

    task_run_id: UUID
    flow_run_id: UUID | None = None
    task_run: dict[str, Any] = msgspec.field(default_factory=dict)
    created: datetime


class TaskRunUpdated(Event, tag="task_run.updated", kw_only=True):
    """PATCH /task_runs/{id}: the fields in ``changes`` (the name) replace the task run's."""

    task_run_id: UUID
    changes: dict[str, Any]


class TaskRunDeleted(Event, tag="task_run.deleted", kw_only=True):
    task_run_id: UUID


class TaskRunStateChanged(Event, tag="task_run.state_changed", kw_only=True):
    """A task run took a new state, reported by set_state or by a client event.

    ``task_run`` carries the task run's own fields (task_key, dynamic_key, name, tags, ...) as
    the client sent them, so a task run can be built from this event alone.
    """

    task_run_id: UUID
    flow_run_id: UUID | None = None
    state: State
    initial_state_type: StateType | None = None
    task_run: dict[str, Any] = msgspec.field(default_factory=dict)
    forced: bool = False
    reset_run_count: bool = False  # a flow-level retry starts the task's run count again
    flow_run_run_count: int | None = None  # the flow run's run_count when the task started
    created: datetime | None = None
    """With a ``task_run`` snapshot: the task run's creation time as its source recorded it (an
    import from a Prefect server, where a task run's row may be written after its first state);
    None: the earliest state's time."""


class PrefectEventReceived(Event, tag="prefect.event", kw_only=True):
    """A Prefect client event (POST /events or the /events/in websocket), kept as received.

    The record's id is the Prefect event's id, except for task-run events the recorder turns
    into a TaskRunStateChanged: that record takes the Prefect id (it is the state's id) and
    this one a derived id, with the original in ``event_id``.
    """

    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] = msgspec.field(default_factory=list)
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    follows: UUID | None = None
    event_id: UUID | None = None


class ConcurrencyLeaseHolder(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    """Who holds a concurrency lease, as Prefect names it (flow_run, task_run or deployment)."""

    type: str
    id: UUID


class ConcurrencyLimitCreated(Event, tag="concurrency_limit.created", kw_only=True):
    """A concurrency limit came into being: a v2 limit, or a v1 tag limit stored as "tag:<tag>".

    Its stream (concurrency-limit-<id>) also carries every slot taken and freed on it.
    """

    limit_id: UUID
    name: str
    limit: int
    active: bool = True
    slot_decay_per_second: float = 0.0
    created: datetime


class ConcurrencyLimitUpdated(Event, tag="concurrency_limit.updated", kw_only=True):
    """The fields that are set replace the limit's; None leaves a field as it was."""

    limit_id: UUID
    limit: int | None = None
    active: bool | None = None
    slot_decay_per_second: float | None = None
    updated: datetime


class ConcurrencyLimitDeleted(Event, tag="concurrency_limit.deleted", kw_only=True):
    """The limit is gone; its leases were released (reason "revoked") just before, in the same append."""

    limit_id: UUID


class ConcurrencySlotsAcquired(Event, tag="concurrency_slots.acquired", kw_only=True):
    """A lease took ``slots`` slots of one limit until ``expires_at``, unless renewed or released.

    A lease over several limits is one such event on each limit's stream, all with one lease_id.
    """

    limit_id: UUID
    name: str
    lease_id: UUID
    slots: int
    holder: ConcurrencyLeaseHolder | None = None
    acquired_at: datetime
    expires_at: datetime


class ConcurrencySlotsReleased(Event, tag="concurrency_slots.released", kw_only=True):
    """A lease's slots on one limit were freed.

    ``reason`` is a string, not an enum, so that a reason added later still decodes here:
    "released" (by its holder), "expired" (found past its expiry by the sweeper, an acquire
    or a renewal), "revoked" (the limit was deleted or reset), "rolled_back" (part of an
    acquire over several limits that found a later limit full).
    """

    limit_id: UUID
    lease_id: UUID
    reason: str = "released"
    occupancy_seconds: float | None = None


class ConcurrencyLeaseRenewed(Event, tag="concurrency_lease.renewed", kw_only=True):
    """The holder renewed the lease before it expired; it now holds its slots until ``expires_at``."""

    limit_id: UUID
    lease_id: UUID
    expires_at: datetime


class VariableCreated(Event, tag="variable.created", kw_only=True):
    """POST /variables/: a named JSON value came into being.

    Every variable event is on the one stream "variables", so that a name is decided free or
    taken against every variable at once (see commands/variables.py).
    """

    variable_id: UUID
    name: str
    value: Any = None
    tags: list[str] = msgspec.field(default_factory=list)
    created: datetime


class VariableUpdated(Event, tag="variable.updated", kw_only=True):
    """PATCH /variables/...: the fields in ``changes`` (name, value, tags) replace the variable's."""

    variable_id: UUID
    changes: dict[str, Any]
    updated: datetime


class VariableDeleted(Event, tag="variable.deleted", kw_only=True):
    variable_id: UUID


class SavedSearchSaved(Event, tag="saved_search.saved", kw_only=True):
    """PUT /saved_searches/: a named set of the UI's run filters, created, or its filters replaced
    when the name exists (Prefect's upsert). Every saved search event is on the one stream
    "saved_searches"; the UI keeps a handful, so reads fold that stream."""

    saved_search_id: UUID
    name: str
    filters: list[dict[str, Any]] = msgspec.field(default_factory=list)
    at: datetime


class SavedSearchDeleted(Event, tag="saved_search.deleted", kw_only=True):
    saved_search_id: UUID


class ArtifactCreated(Event, tag="artifact.created", kw_only=True):
    """POST /artifacts/: an artifact as the client sent it, on its own stream artifact-<id>.

    An artifact with a key also becomes the latest of its key (projections/artifacts.py).
    """

    artifact_id: UUID
    key: str | None = None
    type: str | None = None
    description: str | None = None
    data: Any = None
    metadata_: dict[str, str] | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    created: datetime


class ArtifactUpdated(Event, tag="artifact.updated", kw_only=True):
    """PATCH /artifacts/{id}: the fields in ``changes`` (data, description, metadata_) replace the artifact's."""

    artifact_id: UUID
    changes: dict[str, Any]
    updated: datetime


class ArtifactDeleted(Event, tag="artifact.deleted", kw_only=True):
    artifact_id: UUID


class AutomationCreated(Event, tag="automation.created", kw_only=True):
    """POST /automations/ (or ``runlog notification create``), on its own stream automation-<id>.

    ``definition`` is Prefect's AutomationCore as JSON values (name, description, enabled, tags,
    trigger, actions, actions_on_trigger, actions_on_resolve; schema/automations.py), checked
    when it was accepted; plain values, so that a definition always decodes.
    """

    automation_id: UUID
    definition: dict[str, Any]
    owner_resource: str | None = None
    created: datetime


class AutomationUpdated(Event, tag="automation.updated", kw_only=True):
    """PUT /automations/{id}: ``definition`` replaces the automation's whole definition."""

    automation_id: UUID
    definition: dict[str, Any]
    updated: datetime


class AutomationEnabledChanged(Event, tag="automation.enabled_changed", kw_only=True):
    """PATCH /automations/{id} (``prefect automation pause/resume``, ``runlog notification pause/resume``)."""

    automation_id: UUID
    enabled: bool
    updated: datetime


class AutomationMuted(Event, tag="automation.muted", kw_only=True):
    """``runlog notification mute --until``: no action fires before ``until`` (None: unmuted).
    A runlog field: Prefect's automations have no mute."""

    automation_id: UUID
    until: datetime | None = None
    updated: datetime


class AutomationDeleted(Event, tag="automation.deleted", kw_only=True):
    automation_id: UUID
# -- notifier deliveries: one stream per delivery, delivery-<id> (see commands/deliveries.py) -------


class DeliveryScheduled(Event, tag="delivery.scheduled", kw_only=True):
    """A notification rule's action decided to send a message to a channel, recorded before any send.

    ``delivery_id`` is uuid5 of (triggering event, rule, action index) and the stream must not
    exist yet, so a replayed or redelivered triggering event collapses onto this delivery.
    ``subject`` and ``body`` are the rendered message in full (a channel may truncate what it
    sends; the log keeps the whole text). ``resolve``: the message resolves an alert opened
    earlier (PagerDuty, Opsgenie) instead of opening one; ``resolves`` is then the delivery that
    opened it, whose id is the alert's key (``dedup_key``, ``alias``). ``occurred``: when the
    triggering event happened (a run's Completed resolves only the alerts of earlier states).
    """

    delivery_id: UUID
    rule_id: UUID
    rule_name: str | None = None
    """The rule's name when the delivery was scheduled, so the delivery log filters by it."""
    action_index: int = 0
    channel_id: UUID
    """The channel: the id of its block document."""
    event_id: UUID
    """The triggering event."""
    flow_run_id: UUID | None = None
    subject: str = ""
    body: str = ""
    scheduled_at: datetime
    resolve: bool = False
    resolves: UUID | None = None
    occurred: datetime | None = None


class DeliveryAttempted(Event, tag="delivery.attempted", kw_only=True):
    """One attempt at sending, and what came of it.

    ``outcome`` is a string, so that an outcome added later still decodes: "sent", "retry"
    (a transient failure: the next attempt is at ``next_attempt_at``), "permanent" (the receiver
    refused it for good) or "gone" (404/410: the channel's endpoint no longer exists).
    ``excerpt`` is the start of the receiver's answer, redacted; ``error`` says what failed
    without any secret in it. ``parts_sent``: for a channel that sends one request per
    recipient (Twilio numbers, Mattermost channels), the recipients that have the message after
    this attempt, as part ids (notifier/http.part_id, a digest: no phone number in the log); the
    next attempt leaves them out.
    """

    delivery_id: UUID
    channel_id: UUID | None = None
    attempt: int
    started: datetime
    finished: datetime
    status_code: int | None = None
    outcome: str
    excerpt: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    parts_sent: list[str] = msgspec.field(default_factory=list)


class DeliverySent(Event, tag="delivery.sent", kw_only=True):
    """The receiver accepted the message.

    ``attempt``: the attempt that succeeded, recorded in this one event. A delivery's outcome
    is the record every consumer of the log reads (the feed derives the action's executed
    event from it), so a successful attempt is one record, not an attempt and then its
    outcome. Logs written before carry it as a ``DeliveryAttempted`` just before this event,
    with ``attempt`` None here; both fold to the same delivery."""

    delivery_id: UUID
    at: datetime
    attempt: DeliveryAttempted | None = None


class DeliveryDeadLettered(Event, tag="delivery.dead_lettered", kw_only=True):
    """The delivery was given up: a permanent refusal, or not delivered within the maximum age."""

    delivery_id: UUID
    reason: str
    at: datetime


class DeliveryReplayed(Event, tag="delivery.replayed", kw_only=True):
    """A dead letter was put back in the queue by hand; its maximum age counts from ``at``."""

    delivery_id: UUID
    at: datetime
class BlockTypeCreated(Event, tag="block_type.created", kw_only=True):
    """POST /block_types/: a kind of block (its slug unique). Every block event is on the one
    stream "blocks" (see commands/blocks.py)."""

    block_type_id: UUID
    name: str
    slug: str
    logo_url: str | None = None
    documentation_url: str | None = None
    description: str | None = None
    code_example: str | None = None
    is_protected: bool = False
    created: datetime


class BlockTypeUpdated(Event, tag="block_type.updated", kw_only=True):
    """PATCH /block_types/{id}: ``changes`` (logo_url, documentation_url, description,
    code_example) replace the type's."""

    block_type_id: UUID
    changes: dict[str, Any]
    updated: datetime


class BlockTypeDeleted(Event, tag="block_type.deleted", kw_only=True):
    """The type, and with it its schemas and documents (Prefect's cascade)."""

    block_type_id: UUID


class BlockSchemaCreated(Event, tag="block_schema.created", kw_only=True):
    """POST /block_schemas/: the JSON schema of one version of a block type's fields."""

    block_schema_id: UUID
    checksum: str
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    block_type_id: UUID
    capabilities: list[str] = msgspec.field(default_factory=list)
    version: str
    created: datetime


class BlockSchemaDeleted(Event, tag="block_schema.deleted", kw_only=True):
    """The schema, and with it the documents written against it (Prefect's cascade)."""

    block_schema_id: UUID


class BlockDocumentCreated(Event, tag="block_document.created", kw_only=True):
    """POST /block_documents/: a block's values. ``data`` is the Fernet token of the document's
    own values as JSON (secrets never reach the log in clear); ``references`` names the other
    documents nested in it, by field."""

    block_document_id: UUID
    name: str
    block_schema_id: UUID
    block_type_id: UUID
    block_type_name: str
    is_anonymous: bool = False
    data: str
    references: dict[str, UUID] = msgspec.field(default_factory=dict)
    created: datetime


class BlockDocumentUpdated(Event, tag="block_document.updated", kw_only=True):
    """PATCH /block_documents/{id}: the document's whole new values (already merged with the
    old ones, encrypted like a creation's), references and schema."""

    block_document_id: UUID
    block_schema_id: UUID
    data: str
    references: dict[str, UUID] = msgspec.field(default_factory=dict)
    updated: datetime


class BlockDocumentDeleted(Event, tag="block_document.deleted", kw_only=True):
    block_document_id: UUID


class DeploymentCreated(Event, tag="deployment.created", kw_only=True):
    """POST /deployments/ for a (flow, name) that has no deployment, on the stream deployment-<id>.

    ``fields`` holds the deployment's settings as plain JSON values (description, version,
    parameters, tags, work_pool_name, ...; see projections/deployments.py), so that a field
    Prefect adds later needs no new event; its schedules follow as DeploymentScheduleCreated.
    """

    deployment_id: UUID
    flow_id: UUID
    name: str
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    created: datetime


class DeploymentUpdated(Event, tag="deployment.updated", kw_only=True):
    """A re-create (upsert), PATCH, pause or resume: the fields in ``changes`` replace the deployment's."""

    deployment_id: UUID
    changes: dict[str, Any]
    updated: datetime


class DeploymentDeleted(Event, tag="deployment.deleted", kw_only=True):
    """DELETE /deployments/{id}: the deployment and its schedules are gone."""

    deployment_id: UUID
    deleted: datetime | None = None


class DeploymentPolled(Event, tag="deployment.polled", kw_only=True):
    """A runner (``flow.serve()``) asked for the deployment's scheduled runs
    (/deployments/get_scheduled_flow_runs), on the stream runner-polls-<id>; recorded at most
    every few seconds."""

    deployment_id: UUID
    polled: datetime


class DeploymentStatusChanged(Event, tag="deployment.status_changed", kw_only=True):
    """The deployment's status became ``status`` (READY on a poll of it or of its work queue,
    NOT_READY when neither was polled for 60 s), once per change."""

    deployment_id: UUID
    status: str
    changed: datetime


class DeploymentScheduleCreated(Event, tag="deployment_schedule.created", kw_only=True):
    """A schedule of a deployment, on the deployment's stream. ``schedule`` is Prefect's
    interval, cron or rrule schedule as JSON values, checked when it was accepted."""

    deployment_id: UUID
    schedule_id: UUID
    schedule: dict[str, Any]
    active: bool = True
    max_scheduled_runs: int | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    slug: str | None = None
    created: datetime


class DeploymentScheduleUpdated(Event, tag="deployment_schedule.updated", kw_only=True):
    """The fields in ``changes`` (schedule, active, max_scheduled_runs, parameters, slug) replace the schedule's."""

    deployment_id: UUID
    schedule_id: UUID
    changes: dict[str, Any]
    updated: datetime


class DeploymentScheduleDeleted(Event, tag="deployment_schedule.deleted", kw_only=True):
    deployment_id: UUID
    schedule_id: UUID


class FlowRunInputCreated(Event, tag="flow_run_input.created", kw_only=True):
    """POST /flow_runs/{id}/input (or a resume with run input): a keyed value for a flow run,
    on the stream run-input-<flow run id>, where keys are decided unique per run."""

    input_id: UUID
    flow_run_id: UUID
    key: str
    value: str
    sender: str | None = None
    created: datetime


class FlowRunInputDeleted(Event, tag="flow_run_input.deleted", kw_only=True):
    input_id: UUID
    flow_run_id: UUID
    key: str


# Work pools, work queues and workers. Pools and queues (their configuration and their status
# changes) are decided on the one "work-pools" stream: names are unique and a status changes
# once. A worker's heartbeats go to its own stream (streams.worker), polls to the pool's polls
# stream (streams.work_pool_polls): frequent facts that need no decision and meet nothing else.


class WorkPoolCreated(Event, tag="work_pool.created", kw_only=True):
    """A work pool and its default queue came into being."""

    work_pool_id: UUID
    name: str
    type: str
    description: str | None = None
    base_job_template: dict[str, Any] = msgspec.field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = None
    storage_configuration: dict[str, Any] = msgspec.field(default_factory=dict)
    default_queue_id: UUID
    created: datetime


class WorkPoolUpdated(Event, tag="work_pool.updated", kw_only=True):
    """``changes`` holds the fields a PATCH set (description, is_paused, base_job_template,
    concurrency_limit, storage_configuration)."""

    work_pool_id: UUID
    changes: dict[str, Any]
    updated: datetime


class WorkPoolDeleted(Event, tag="work_pool.deleted", kw_only=True):
    """The pool went, with its queues and workers."""

    work_pool_id: UUID
    deleted: datetime | None = None


class WorkPoolStatusChanged(Event, tag="work_pool.status_changed", kw_only=True):
    """The pool's status became ``status`` (READY, NOT_READY or PAUSED), once per change."""

    work_pool_id: UUID
    status: str
    changed: datetime


class WorkQueueCreated(Event, tag="work_queue.created", kw_only=True):
    work_queue_id: UUID
    work_pool_id: UUID
    name: str
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: int | None = None
    priority: int = 1
    created: datetime


class WorkQueueUpdated(Event, tag="work_queue.updated", kw_only=True):
    """``changes`` holds the fields a PATCH set (name, description, is_paused, concurrency_limit,
    priority, last_polled). ``moved`` marks a priority that moved to make room for another
    queue's (Prefect reports no ``prefect.work-queue.updated`` for those)."""

    work_queue_id: UUID
    changes: dict[str, Any]
    updated: datetime
    moved: bool = False


class WorkQueueDeleted(Event, tag="work_queue.deleted", kw_only=True):
    work_queue_id: UUID
    deleted: datetime | None = None


class WorkQueueStatusChanged(Event, tag="work_queue.status_changed", kw_only=True):
    work_queue_id: UUID
    status: str
    changed: datetime


class WorkQueuesPolled(Event, tag="work_queue.polled", kw_only=True):
    """A worker asked a pool for scheduled runs from these queues (get_scheduled_flow_runs)."""

    work_pool_id: UUID
    work_queue_ids: list[UUID]
    polled: datetime


class WorkerHeartbeat(Event, tag="worker.heartbeat", kw_only=True):
    """A worker said it is alive. The first heartbeat of a name in a pool creates the worker."""

    worker_id: UUID
    work_pool_id: UUID
    name: str
    heartbeat_interval_seconds: int | None = None
    occurred: datetime


class WorkerStatusChanged(Event, tag="worker.status_changed", kw_only=True):
    """ONLINE or OFFLINE, once per change."""

    worker_id: UUID
    work_pool_id: UUID
    name: str
    status: str
    changed: datetime


class WorkerDeleted(Event, tag="worker.deleted", kw_only=True):
    worker_id: UUID
    work_pool_id: UUID
    name: str


AnyEvent = Union[
    ConcurrencyLimitCreated,
    ConcurrencyLimitUpdated,
    ConcurrencyLimitDeleted,
    ConcurrencySlotsAcquired,
    ConcurrencySlotsReleased,
    ConcurrencyLeaseRenewed,
    FlowCreated,
    FlowDeleted,
    FlowUpdated,
    FlowRunCreated,
    FlowRunStateChanged,
    FlowRunUpdated,
    FlowRunDeleted,
    FlowRunWorkQueueCleared,
    TaskRunCreated,
    TaskRunUpdated,
    TaskRunDeleted,
    TaskRunStateChanged,
    PrefectEventReceived,
    VariableCreated,
    VariableUpdated,
    VariableDeleted,
    SavedSearchSaved,
    SavedSearchDeleted,
    ArtifactCreated,
    ArtifactUpdated,
    ArtifactDeleted,
    AutomationCreated,
    AutomationUpdated,
    AutomationEnabledChanged,
    AutomationMuted,
    AutomationDeleted,
    DeliveryScheduled,
    DeliveryAttempted,
    DeliverySent,
    DeliveryDeadLettered,
    DeliveryReplayed,
    BlockTypeCreated,
    BlockTypeUpdated,
    BlockTypeDeleted,
    BlockSchemaCreated,
    BlockSchemaDeleted,
    BlockDocumentCreated,
    BlockDocumentUpdated,
    BlockDocumentDeleted,
    DeploymentCreated,
    DeploymentUpdated,
    DeploymentDeleted,
    DeploymentScheduleCreated,
    DeploymentScheduleUpdated,
    DeploymentScheduleDeleted,
    DeploymentPolled,
    DeploymentStatusChanged,
    FlowRunInputCreated,
    FlowRunInputDeleted,
    WorkPoolCreated,
    WorkPoolUpdated,
    WorkPoolDeleted,
    WorkPoolStatusChanged,
    WorkQueueCreated,
    WorkQueueUpdated,
    WorkQueueDeleted,
    WorkQueueStatusChanged,
    WorkQueuesPolled,
    WorkerHeartbeat,
    WorkerStatusChanged,
    WorkerDeleted,
]

_encoder = msgspec.msgpack.Encoder(uuid_format="bytes")
_decoder = msgspec.msgpack.Decoder(AnyEvent)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(AnyEvent)


def event_type(event: Event) -> str:
    """The tag an event is stored under (the log's ``type`` column)."""
    return type(event).__struct_config__.tag  # type: ignore[return-value]


def encode(event: Event) -> bytes:
    """The stored form of an event: MessagePack, or JSON when a value does not fit it."""
    try:
        return _encoder.encode(event)
    except OverflowError:  # an integer beyond 64 bits, e.g. in a run's parameters
        return _json_encoder.encode(event)


def decode(data: bytes) -> AnyEvent:
    """An event from its stored form, MessagePack or JSON.

    Raises msgspec.DecodeError (or its subclass ValidationError) for anything else.
    """
    if data[:1] == b"{":
        return _json_decoder.decode(data)
    return _decoder.decode(data)


def to_json(data: bytes) -> bytes:
    """A stored event as JSON, for export and display, keeping every field it holds.

    The payload must decode as an event of this catalogue; it is then rendered from the raw
    MessagePack rather than from the decoded struct, so fields a newer runlog added survive an
    export and import. Binary values are ids (see the module docstring) and become their text.
    Raises msgspec.DecodeError (or ValidationError) for anything else.
    """
    if data[:1] == b"{":
        _json_decoder.decode(data)
        return data
    _decoder.decode(data)
    return _json_encoder.encode(_ids_as_text(msgspec.msgpack.decode(data)))


def _ids_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _ids_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_ids_as_text(item) for item in value]
    if isinstance(value, bytes):
        return UUID(bytes=value) if len(value) == 16 else value
    return value
