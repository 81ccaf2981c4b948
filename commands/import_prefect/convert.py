"""Prefect's rows as runlog's events: pure functions, one per kind of record.

Each returns the appends that record needs, ``(stream, [(event id, event), ...])``. Event ids
are Prefect's own where an event *is* a Prefect record (a state's id is its event's id, as
runlog's states are; a log line keeps its id), and otherwise derived from the record's id and
what the event says (``derived``), so that importing the same row again yields the same ids and
the store keeps each event once: what makes an import idempotent and resumable.

Flows, deployments and concurrency limits are keyed by name in runlog (their ids derive from
the name, so that concurrent creations meet on one stream): they are imported under runlog's
id for their name, and ``Ids`` maps Prefect's ids to those wherever a record refers to one. Every
other record keeps its Prefect id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.ids import id_text
from runlog.schema.automations import AutomationDefinition

from ..concurrency import limit_id_for
from ..deployments import deployment_id_for
from ..flows import flow_id_for
from .source import Row, flag, js, seconds, uid, when

IMPORT_NAMESPACE = uuid.UUID("6a3e4f52-9d1c-4b7e-8e0a-696d706f7274")

Append = tuple[str, list[tuple[UUID, catalogue.Event]]]


_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes
_VERSION_5 = ~(0xC000 << 48) & ~(0xF000 << 64)
"""uuid5's bits: the variant (RFC 4122) and the version cleared, then set below."""


def derived(kind: str, *parts: object) -> UUID:
    """The id of the event ``kind`` made from the Prefect record(s) ``parts``: the same every import.

    It is ``uuid.uuid5(IMPORT_NAMESPACE, name)`` (a test holds them equal: every import ever made
    must find its ids again), computed without uuid5's UUID(bytes=..., version=...), which took
    two thirds of its time.
    """
    digest = hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join((kind, *map(id_text, parts))).encode(), usedforsecurity=False)
    return UUID(int=int.from_bytes(digest.digest()[:16]) & _VERSION_5 | (0x8000 << 48) | (5 << 76))


@dataclass
class Ids:
    """Prefect's ids of name-keyed records, and runlog's for them; what queues and pools are called."""

    flows: dict[UUID, UUID] = field(default_factory=dict)
    deployments: dict[UUID, UUID] = field(default_factory=dict)
    queues: dict[UUID, tuple[UUID, str]] = field(default_factory=dict)
    """Work queue id -> (its pool's id, its pool's name)."""

    def flow(self, prefect_id: UUID | None) -> UUID | None:
        return None if prefect_id is None else self.flows.get(prefect_id, prefect_id)

    def deployment(self, prefect_id: UUID | None) -> UUID | None:
        return None if prefect_id is None else self.deployments.get(prefect_id, prefect_id)

    def run_key(self, key: str | None) -> str | None:
        """An auto-scheduled run's key ("scheduled <deployment> <schedule> <time>") names the
        deployment as runlog knows it, so runlog's scheduler sees the run as the one that
        schedule already has at that time and does not make it again."""
        if key is None or not key.startswith("scheduled "):
            return key
        parts = key.split(" ", 2)
        try:
            parts[1] = str(self.deployment(UUID(parts[1])))
        except (ValueError, IndexError):
            return key
        return " ".join(parts)

    def limit_name(self, name: str) -> str:
        """A deployment's own limit is named after it ("deployment:<id>"): after runlog's id for it."""
        kind, sep, rest = name.partition(":")
        if kind != "deployment" or not sep:
            return name
        try:
            return f"deployment:{self.deployment(UUID(rest))}"
        except ValueError:
            return name

    def labels(self, labels: dict[str, Any] | None) -> dict[str, Any]:
        """Labels with the flow's and deployment's ids as runlog knows them."""
        labels = dict(labels or {})
        for key, remap in (("prefect.flow.id", self.flow), ("prefect.deployment.id", self.deployment)):
            value = labels.get(key)
            if isinstance(value, str):
                try:
                    labels[key] = str(remap(UUID(value)))
                except ValueError:
                    pass
        return labels


def _aware(value: Any) -> Any:
    """Naive datetimes inside decoded JSON are UTC, as Prefect reads them."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_decode_details = msgspec.json.Decoder(catalogue.StateDetails, strict=False).decode


def state_details(raw: Any) -> catalogue.StateDetails:
    if isinstance(raw, (str, bytes)):
        details = _decode_details(raw)  # straight from the column's text: most of a state's cost
    else:
        details = msgspec.convert(raw or {}, catalogue.StateDetails, strict=False)
    if details.scheduled_time is None and details.cache_expiration is None and details.pause_timeout is None:
        return details  # most states: no time to make aware
    changes = {
        name: _aware(getattr(details, name))
        for name in ("scheduled_time", "cache_expiration", "pause_timeout")
        if getattr(details, name) is not None
    }
    return msgspec.structs.replace(details, **changes)


_STATE_TYPES = {member.value: member for member in catalogue.StateType}


def state(row: Row, timestamp: datetime | None = None) -> catalogue.State:
    """The state of a ``*_run_state`` row (``timestamp``: its time, when already parsed)."""
    return catalogue.State(
        id=uid(row["id"]), type=_STATE_TYPES.get(row["type"]) or catalogue.StateType(row["type"]), name=row["name"],
        timestamp=when(row["timestamp"]) if timestamp is None else timestamp,
        message=row["message"], state_details=state_details(row["state_details"]), data=js(row["data"]),
    )


def ordered_states(rows: Iterable[Row]) -> list[catalogue.State]:
    """A run's states in the order they were taken: by timestamp, then by when they were
    stored (then as read); each time parsed once, and the times stored only when two states
    share a timestamp (where they decide the order)."""
    rows = list(rows)
    times = [when(row["timestamp"]) for row in rows]
    if len(set(times)) == len(times):
        order = sorted(range(len(rows)), key=times.__getitem__)
    else:
        keyed = [(at, when(row["created"]), index) for index, (at, row) in enumerate(zip(times, rows, strict=True))]
        order = [index for _at, _created, index in sorted(keyed)]
    return [state(rows[index], times[index]) for index in order]


# -- flows and runs ------------------------------------------------------------------------------


def flow(row: Row, ids: Ids) -> Append:
    flow_id = flow_id_for(row["name"])
    ids.flows[uid(row["id"])] = flow_id
    created = catalogue.FlowCreated(
        flow_id=flow_id, name=row["name"], tags=js(row["tags"]) or [], labels=js(row["labels"]) or {},
        created=when(row["created"]),
    )
    return streams.flow(flow_id), [(derived("flow.created", flow_id), created)]


def flow_run(row: Row, states: Iterable[Row], ids: Ids) -> Append:
    run_id = uid(row["id"])
    queue_id = uid(row["work_queue_id"])
    pool_id, pool_name = ids.queues.get(queue_id, (None, None)) if queue_id is not None else (None, None)
    created = catalogue.FlowRunCreated(
        flow_run_id=run_id, flow_id=ids.flow(uid(row["flow_id"])), name=row["name"], flow_version=row["flow_version"],
        deployment_id=ids.deployment(uid(row["deployment_id"])), deployment_version=row["deployment_version"],
        parameters=js(row["parameters"]) or {}, context=js(row["context"]) or {},
        idempotency_key=ids.run_key(row["idempotency_key"]), parent_task_run_id=uid(row["parent_task_run_id"]),
        empirical_policy=js(row["empirical_policy"]) or {}, tags=js(row["tags"]) or [],
        labels=ids.labels(js(row["labels"])), work_queue_name=row["work_queue_name"], work_pool_name=pool_name,
        job_variables=js(row["job_variables"]) or {}, created=when(row["created"]), work_queue_id=queue_id,
        work_pool_id=pool_id, auto_scheduled=flag(row["auto_scheduled"]), created_by=js(row["created_by"]),
    )
    events: list[tuple[UUID, catalogue.Event]] = [(derived("flow_run.created", run_id), created)]
    previous: catalogue.StateType | None = None
    for new in ordered_states(states):
        events.append((new.id, catalogue.FlowRunStateChanged(flow_run_id=run_id, state=new, initial_state_type=previous)))
        previous = new.type
    if row["infrastructure_pid"] is not None:
        changed = catalogue.FlowRunUpdated(flow_run_id=run_id, changes={"infrastructure_pid": row["infrastructure_pid"]})
        events.append((derived("flow_run.infrastructure_pid", run_id, row["infrastructure_pid"]), changed))
    return streams.flow_run(run_id), events


def task_run_fields(row: Row) -> dict[str, Any]:
    """The task run as Prefect keeps it, in the shape of a client's snapshot (TaskRunStateChanged.task_run)."""
    return {
        "name": row["name"], "task_key": row["task_key"], "dynamic_key": row["dynamic_key"],
        "cache_key": row["cache_key"], "cache_expiration": _iso(row["cache_expiration"]),
        "task_version": row["task_version"], "empirical_policy": js(row["empirical_policy"]) or {},
        "tags": js(row["tags"]) or [], "labels": js(row["labels"]) or {}, "task_inputs": js(row["task_inputs"]) or {},
        "run_count": row["run_count"], "flow_run_run_count": row["flow_run_run_count"],
        "start_time": _iso(row["start_time"]), "end_time": _iso(row["end_time"]),
        "total_run_time": seconds(row["total_run_time"]), "expected_start_time": _iso(row["expected_start_time"]),
        "next_scheduled_start_time": _iso(row["next_scheduled_start_time"]),
    }


def _iso(value: Any) -> str | None:
    moment = when(value)
    return None if moment is None else moment.isoformat()


def task_run(row: Row, states: Iterable[Row]) -> Append:
    """The task run's creation with its fields, its states, and on the last one the fields again:
    that report makes the task run exactly Prefect's row (its run count and times as Prefect
    counted them), whatever the states alone would derive."""
    run_id, flow_run_id = uid(row["id"]), uid(row["flow_run_id"])
    fields, created_at = task_run_fields(row), when(row["created"])
    events: list[tuple[UUID, catalogue.Event]] = [
        (derived("task_run.created", run_id), catalogue.TaskRunCreated(
            task_run_id=run_id, flow_run_id=flow_run_id, task_run=fields, created=created_at,
        )),
    ]
    ordered = ordered_states(states)
    previous: catalogue.StateType | None = None
    for index, new in enumerate(ordered):
        last = index == len(ordered) - 1
        events.append((new.id, catalogue.TaskRunStateChanged(
            task_run_id=run_id, flow_run_id=flow_run_id, state=new, initial_state_type=previous,
            task_run=fields if last else {}, created=created_at if last else None,
        )))
        previous = new.type
    return streams.task_run(run_id), events


# -- configuration -------------------------------------------------------------------------------


def variable(row: Row) -> Append:
    variable_id = uid(row["id"])
    created = catalogue.VariableCreated(
        variable_id=variable_id, name=row["name"], value=js(row["value"]), tags=js(row["tags"]) or [],
        created=when(row["created"]),
    )
    return streams.VARIABLES, [(derived("variable.created", variable_id), created)]


def artifact(row: Row) -> Append:
    artifact_id = uid(row["id"])
    created = catalogue.ArtifactCreated(
        artifact_id=artifact_id, key=row["key"], type=row["type"], description=row["description"],
        data=js(row["data"]), metadata_=js(row["metadata_"]), flow_run_id=uid(row["flow_run_id"]),
        task_run_id=uid(row["task_run_id"]), created=when(row["created"]),
    )
    return streams.artifact(artifact_id), [(derived("artifact.created", artifact_id), created)]


def work_pool(row: Row, queues: Iterable[Row], ids: Ids) -> Append:
    """A pool and its queues, on the one work-pools stream."""
    pool_id = uid(row["id"])
    events: list[tuple[UUID, catalogue.Event]] = [(derived("work_pool.created", pool_id), catalogue.WorkPoolCreated(
        work_pool_id=pool_id, name=row["name"], type=row["type"], description=row["description"],
        base_job_template=js(row["base_job_template"]) or {}, is_paused=flag(row["is_paused"]),
        concurrency_limit=row["concurrency_limit"], storage_configuration=js(row["storage_configuration"]) or {},
        default_queue_id=uid(row["default_queue_id"]), created=when(row["created"]),
    ))]
    for queue in queues:
        queue_id = uid(queue["id"])
        ids.queues[queue_id] = (pool_id, row["name"])
        events.append((derived("work_queue.created", queue_id), catalogue.WorkQueueCreated(
            work_queue_id=queue_id, work_pool_id=pool_id, name=queue["name"], description=queue["description"],
            is_paused=flag(queue["is_paused"]), concurrency_limit=queue["concurrency_limit"],
            priority=queue["priority"], created=when(queue["created"]),
        )))
    return streams.WORK_POOLS, events


DEPLOYMENT_FIELDS = (
    "version", "description", "paused", "enforce_parameter_schema", "parameter_openapi_schema",
    "parameters", "tags", "pull_steps", "work_queue_name", "storage_document_id", "infrastructure_document_id",
    "path", "entrypoint", "last_polled",
)
JSON_FIELDS = frozenset({"parameter_openapi_schema", "parameters", "tags", "pull_steps", "concurrency_options"})


def deployment(row: Row, schedules: Iterable[Row], ids: Ids, concurrency_limit: int | None = None) -> Append:
    """The deployment, its schedules and its status; ``concurrency_limit`` is its limit's (kept
    apart from the row in Prefect's concurrency_limit_v2)."""
    flow_id = ids.flow(uid(row["flow_id"]))
    assert flow_id is not None
    deployment_id = deployment_id_for(flow_id, row["name"])
    ids.deployments[uid(row["id"])] = deployment_id
    fields: dict[str, Any] = {}
    for name in DEPLOYMENT_FIELDS:
        value = row[name]
        if name in JSON_FIELDS:
            value = js(value)
        elif name in ("paused", "enforce_parameter_schema"):
            value = flag(value)
        elif name == "last_polled":
            value = _iso(value)
        elif isinstance(value, UUID):
            value = str(value)
        fields[name] = value
    fields["concurrency_limit"] = concurrency_limit
    fields["concurrency_options"] = js(row.get("concurrency_options"))
    fields["job_variables"] = js(row["infra_overrides"]) or {}
    fields["labels"] = ids.labels(js(row["labels"]))
    queue_id = uid(row["work_queue_id"])
    if queue_id is not None and queue_id in ids.queues:
        fields["work_pool_name"] = ids.queues[queue_id][1]
    events: list[tuple[UUID, catalogue.Event]] = [(derived("deployment.created", deployment_id), catalogue.DeploymentCreated(
        deployment_id=deployment_id, flow_id=flow_id, name=row["name"], fields=fields, created=when(row["created"]),
    ))]
    for schedule in schedules:
        schedule_id = uid(schedule["id"])
        events.append((derived("deployment_schedule.created", schedule_id), catalogue.DeploymentScheduleCreated(
            deployment_id=deployment_id, schedule_id=schedule_id, schedule=js(schedule["schedule"]) or {},
            active=flag(schedule["active"]), max_scheduled_runs=schedule["max_scheduled_runs"],
            parameters=js(schedule["parameters"]) or {}, slug=schedule["slug"], created=when(schedule["created"]),
        )))
    if row["status"]:
        events.append((derived("deployment.status", deployment_id, row["status"]), catalogue.DeploymentStatusChanged(
            deployment_id=deployment_id, status=row["status"], changed=when(row["updated"]),
        )))
    return streams.deployment(deployment_id), events


def block_type(row: Row) -> tuple[UUID, catalogue.Event]:
    block_type_id = uid(row["id"])
    return derived("block_type.created", block_type_id), catalogue.BlockTypeCreated(
        block_type_id=block_type_id, name=row["name"], slug=row["slug"], logo_url=row["logo_url"],
        documentation_url=row["documentation_url"], description=row["description"],
        code_example=row["code_example"], is_protected=flag(row["is_protected"]), created=when(row["created"]),
    )


def block_schema(row: Row, block_type_id: UUID) -> tuple[UUID, catalogue.Event]:
    block_schema_id = uid(row["id"])
    return derived("block_schema.created", block_schema_id), catalogue.BlockSchemaCreated(
        block_schema_id=block_schema_id, checksum=row["checksum"], fields=js(row["fields"]) or {},
        block_type_id=block_type_id, capabilities=js(row["capabilities"]) or [], version=row["version"],
        created=when(row["created"]),
    )


def block_document(
    row: Row, sealed: str, block_schema_id: UUID, block_type_id: UUID, references: dict[str, UUID],
) -> tuple[UUID, catalogue.Event]:
    """A document with its values already sealed with runlog's key (``sealed``)."""
    document_id = uid(row["id"])
    return derived("block_document.created", document_id), catalogue.BlockDocumentCreated(
        block_document_id=document_id, name=row["name"], block_schema_id=block_schema_id,
        block_type_id=block_type_id, block_type_name=row["block_type_name"], is_anonymous=flag(row["is_anonymous"]),
        data=sealed, references=references, created=when(row["created"]),
    )


def _remap_deployments(value: Any, ids: Ids) -> Any:
    """An automation's actions with the deployments they run named as runlog knows them."""
    if isinstance(value, dict):
        out = {k: _remap_deployments(v, ids) for k, v in value.items()}
        if isinstance(out.get("deployment_id"), str):
            try:
                out["deployment_id"] = str(ids.deployment(UUID(out["deployment_id"])))
            except ValueError:
                pass
        return out
    if isinstance(value, list):
        return [_remap_deployments(v, ids) for v in value]
    return value


def automation(row: Row, ids: Ids) -> Append:
    """An automation as runlog carries it out; msgspec.ValidationError for one it cannot."""
    automation_id = uid(row["id"])
    definition = msgspec.convert({
        "name": row["name"], "description": row["description"] or "", "enabled": flag(row["enabled"]),
        "tags": js(row["tags"]) or [], "trigger": js(row["trigger"]),
        "actions": _remap_deployments(js(row["actions"]) or [], ids),
        "actions_on_trigger": _remap_deployments(js(row["actions_on_trigger"]) or [], ids),
        "actions_on_resolve": _remap_deployments(js(row["actions_on_resolve"]) or [], ids),
    }, AutomationDefinition, strict=False)
    created = catalogue.AutomationCreated(
        automation_id=automation_id, definition=msgspec.to_builtins(definition), created=when(row["created"]),
    )
    return streams.automation(automation_id), [(derived("automation.created", automation_id), created)]


def concurrency_limit(name: str, limit: int, active: bool, decay: float, created: datetime) -> Append:
    """A v2 limit, or a v1 tag limit as runlog keeps it (``tag:<tag>``); no slots are taken over."""
    limit_id = limit_id_for(name)
    event = catalogue.ConcurrencyLimitCreated(
        limit_id=limit_id, name=name, limit=limit, active=active, slot_decay_per_second=decay, created=created,
    )
    return streams.concurrency_limit(limit_id), [(derived("concurrency_limit.created", limit_id), event)]


__all__ = [
    "Append", "Ids", "artifact", "automation", "block_document", "block_schema", "block_type", "concurrency_limit", "deployment", "derived", "flow", "flow_run", "state",
    "task_run", "variable", "work_pool",
]
