"""The deployments read model: one row per deployment and one per schedule, kept inline, and the
reads of one deployment that commands and routes share.

A deployment is its own stream (deployment-<id>) holding its schedules' events too, so a
deployment and its schedules are always decided together (a runner's polls of it, on
runner-polls-<id>, fold into its view too); the view carries the schedules, and
the deployment_schedules table copies them out for whoever lists schedules (the scheduler).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .tables import changes_needed, read_view, us, view_in

_TYPES = frozenset({
    "deployment.created", "deployment.updated", "deployment.deleted",
    "deployment_schedule.created", "deployment_schedule.updated", "deployment_schedule.deleted",
    "deployment.polled", "deployment.status_changed",
})

FIELDS = (
    "version", "version_info", "description", "paused", "concurrency_limit", "concurrency_options",
    "global_concurrency_limit_id", "enforce_parameter_schema", "parameter_openapi_schema", "parameters", "tags",
    "labels", "pull_steps", "work_queue_name", "work_pool_name", "storage_document_id",
    "infrastructure_document_id", "path", "entrypoint", "job_variables", "last_polled",
)
"""The deployment's settings an event may set (DeploymentCreated.fields, DeploymentUpdated.changes)."""

SCHEDULE_FIELDS = ("schedule", "active", "max_scheduled_runs", "parameters", "slug")


class ScheduleView(msgspec.Struct, kw_only=True):
    id: UUID
    deployment_id: UUID
    created: datetime
    updated: datetime
    schedule: dict[str, Any]
    active: bool = True
    max_scheduled_runs: int | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    slug: str | None = None


class DeploymentView(msgspec.Struct, kw_only=True):
    id: UUID
    flow_id: UUID
    name: str
    created: datetime
    updated: datetime
    version: str | None = None
    version_info: dict[str, Any] | None = None
    description: str | None = None
    paused: bool = False
    concurrency_limit: int | None = None
    concurrency_options: dict[str, Any] | None = None
    global_concurrency_limit_id: UUID | None = None
    enforce_parameter_schema: bool = True
    parameter_openapi_schema: dict[str, Any] | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] = msgspec.field(default_factory=dict)
    pull_steps: list[dict[str, Any]] | None = None
    work_queue_name: str | None = None
    work_pool_name: str | None = None
    storage_document_id: UUID | None = None
    infrastructure_document_id: UUID | None = None
    path: str | None = None
    entrypoint: str | None = None
    job_variables: dict[str, Any] = msgspec.field(default_factory=dict)
    last_polled: datetime | None = None
    status: str = "NOT_READY"
    """The status last recorded (DeploymentStatusChanged); Prefect's answer, which its status
    service (commands/deployment_status.py) keeps."""
    schedules: list[ScheduleView] = msgspec.field(default_factory=list)


_encoder = msgspec.json.Encoder()
decode_deployment = msgspec.json.Decoder(DeploymentView).decode
decode_schedule = msgspec.json.Decoder(ScheduleView).decode


def stream_of(deployment_id: UUID) -> str:
    return streams.deployment(deployment_id)


def _merged(view: msgspec.Struct, changes: dict[str, Any], allowed: Sequence[str], kind: type) -> Any:
    kept = {k: v for k, v in changes.items() if k in allowed}
    return msgspec.convert({**msgspec.to_builtins(view), **kept}, kind, strict=False)


def evolve_deployment(view: DeploymentView | None, event: Any) -> DeploymentView | None:
    """Fold one event of a deployment's stream."""
    if isinstance(event, catalogue.DeploymentCreated):
        fields = {k: v for k, v in event.fields.items() if k in FIELDS}
        return msgspec.convert({
            **fields, "id": event.deployment_id, "flow_id": event.flow_id, "name": event.name,
            "created": event.created, "updated": event.created,
        }, DeploymentView, strict=False)
    if view is None or isinstance(event, catalogue.DeploymentDeleted):
        return None
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.DeploymentUpdated):
        return replace(_merged(view, event.changes, FIELDS, DeploymentView), updated=event.updated)
    # A poll or a status change leaves ``updated`` alone, as Prefect does (the scheduler reads
    # ``updated`` as "its settings changed").
    if isinstance(event, catalogue.DeploymentPolled):
        return replace(view, last_polled=event.polled)
    if isinstance(event, catalogue.DeploymentStatusChanged):
        return replace(view, status=event.status)
    if isinstance(event, catalogue.DeploymentScheduleCreated):
        schedule = ScheduleView(
            id=event.schedule_id, deployment_id=event.deployment_id, created=event.created, updated=event.created,
            schedule=event.schedule, active=event.active, max_scheduled_runs=event.max_scheduled_runs,
            parameters=event.parameters, slug=event.slug,
        )
        return replace(view, schedules=[*(s for s in view.schedules if s.id != event.schedule_id), schedule])
    if isinstance(event, catalogue.DeploymentScheduleUpdated):
        return replace(view, schedules=[
            replace(_merged(s, event.changes, SCHEDULE_FIELDS, ScheduleView), updated=event.updated)
            if s.id == event.schedule_id else s
            for s in view.schedules
        ])
    if isinstance(event, catalogue.DeploymentScheduleDeleted):
        return replace(view, schedules=[s for s in view.schedules if s.id != event.schedule_id])
    return view


# -- storage ----------------------------------------------------------------------------------

DEPLOYMENTS = Table(
    "deployments",
    ("id", "flow_id", "name", "paused", "work_queue_name", "work_pool_name", "created", "updated", "view", "status"),
    key=("id",),
)
DEPLOYMENT_SCHEDULES = Table(
    "deployment_schedules", ("id", "deployment_id", "active", "slug", "created", "updated", "view"), key=("id",),
)

SQL_GET = "SELECT view FROM deployments WHERE id = ?"
SQL_BY_NAME = (
    "SELECT d.view FROM deployments d JOIN flows f ON f.id = d.flow_id WHERE f.name = ? AND d.name = ? "
    "ORDER BY d.created, d.id LIMIT 1"
)


async def by_id(tx: Tx, deployment_id: UUID) -> DeploymentView | None:
    return await view_in(tx, SQL_GET, str(deployment_id), decode_deployment)


async def get(store: EventStore, deployment_id: UUID) -> DeploymentView | None:
    return await read_view(store, SQL_GET, str(deployment_id), decode_deployment)


async def get_by_name(store: EventStore, flow_name: str, name: str) -> DeploymentView | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_BY_NAME, flow_name, name)
    return decode_deployment(bytes(rows[0][0])) if rows else None


_SCHEDULABLE = (
    "SELECT d.view FROM deployments d WHERE d.paused = 0 AND d.id > ? "
    "AND EXISTS (SELECT 1 FROM deployment_schedules s WHERE s.deployment_id = d.id AND s.active = 1) "
)
SQL_SCHEDULABLE = _SCHEDULABLE + "ORDER BY d.id LIMIT ?"
SQL_SCHEDULABLE_SINCE = (
    _SCHEDULABLE + "AND (d.updated >= ? OR EXISTS (SELECT 1 FROM deployment_schedules s "
    "WHERE s.deployment_id = d.id AND s.updated >= ?)) ORDER BY d.id LIMIT ?"
)


async def schedulable(
    store: EventStore, *, after: str = "", limit: int = 200, updated_since: datetime | None = None,
) -> list[DeploymentView]:
    """Unpaused deployments with an active schedule, by id after ``after`` (the scheduler's
    batches); with ``updated_since``, only those it or one of its schedules changed since."""
    async with store.reading() as tx:
        if updated_since is None:
            rows = await tx.fetch(SQL_SCHEDULABLE, after, limit)
        else:
            since = us(updated_since)
            rows = await tx.fetch(SQL_SCHEDULABLE_SINCE, after, since, since, limit)
    return [decode_deployment(bytes(row[0])) for row in rows]


async def get_many(store: EventStore, deployment_ids: Sequence[UUID]) -> dict[UUID, DeploymentView]:
    """The deployments of ``deployment_ids`` that exist, by id."""
    if not deployment_ids:
        return {}
    sql = f"SELECT view FROM deployments WHERE id IN ({', '.join('?' for _ in deployment_ids)})"
    async with store.reading() as tx:
        rows = await tx.fetch(sql, *(str(d) for d in deployment_ids))
    views = [decode_deployment(bytes(row[0])) for row in rows]
    return {view.id: view for view in views}


SQL_WITH_STATUS = "SELECT view FROM deployments WHERE status = ? ORDER BY id"


async def with_status(store: EventStore, status: str) -> list[DeploymentView]:
    """Every deployment whose recorded status is ``status`` (the status service's sweep)."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_WITH_STATUS, status)
    return [decode_deployment(bytes(row[0])) for row in rows]


async def on_queues_with_status(
    store: EventStore, pool_name: str, queue_names: Sequence[str], status: str
) -> list[DeploymentView]:
    """The deployments of ``pool_name``'s queues ``queue_names`` whose recorded status is ``status``."""
    if not queue_names:
        return []
    sql = (
        "SELECT view FROM deployments WHERE status = ? AND work_pool_name = ? "
        f"AND work_queue_name IN ({', '.join('?' for _ in queue_names)}) ORDER BY id"
    )
    async with store.reading() as tx:
        rows = await tx.fetch(sql, status, pool_name, *queue_names)
    return [decode_deployment(bytes(row[0])) for row in rows]


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class DeploymentsProjection:
    name = "deployments"
    version = VERSION
    tables = (DEPLOYMENTS, DEPLOYMENT_SCHEDULES)
    per_event = True  # an update reads the view the batch's previous event may have written
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        return changes_needed(_TYPES, rows)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for record in events:
            if record.type not in _TYPES or not record.stream_id.startswith((streams.DEPLOYMENT, streams.RUNNER_POLLS)):
                continue
            event = catalogue.decode(record.data)
            deployment_id = event.deployment_id  # type: ignore[union-attr]
            current = None if isinstance(event, catalogue.DeploymentCreated) else await by_id(tx, deployment_id)
            view = evolve_deployment(current, event)
            old = {s.id: s for s in current.schedules} if current is not None else {}
            new = {s.id: s for s in view.schedules} if view is not None else {}
            for schedule_id in old.keys() - new.keys():
                changes.delete(DEPLOYMENT_SCHEDULES, str(schedule_id))
            for schedule_id, schedule in new.items():
                if old.get(schedule_id) != schedule:
                    changes.upsert(DEPLOYMENT_SCHEDULES, (
                        str(schedule.id), str(schedule.deployment_id), int(schedule.active), schedule.slug,
                        us(schedule.created), us(schedule.updated), _encoder.encode(schedule),
                    ))
            if view is None:
                changes.delete(DEPLOYMENTS, str(deployment_id))
            else:
                changes.upsert(DEPLOYMENTS, (
                    str(view.id), str(view.flow_id), view.name, int(view.paused), view.work_queue_name,
                    view.work_pool_name, us(view.created), us(view.updated), _encoder.encode(view), view.status,
                ))
        return changes


__all__ = [
    "DeploymentView", "DeploymentsProjection", "ScheduleView", "by_id", "decode_deployment", "decode_schedule",
    "evolve_deployment", "get", "get_by_name", "get_many", "on_queues_with_status", "schedulable", "stream_of",
    "with_status",
]
