"""Deployments and their schedules: create (Prefect's upsert by flow and name), update, pause,
delete, schedule CRUD, and creating a flow run from a deployment.

A deployment's id is derived from its flow and name, so concurrent creations of one deployment
meet on one stream (deployment-<id>) and the executor makes one of them the creation, the other
an update, as Prefect's upsert does. A deleted deployment's stream keeps its history, so the name
moves on to a next generation (as run ids do, commands/run_keys.py): re-created, the deployment
has a new id and the old one's runs keep pointing at the old id. Its schedules live on the same
stream, so a deployment and its schedules are always decided together.

As Prefect does, a change that makes a deployment's future runs stale deletes its Scheduled runs
that never ran right after the change is appended (commands/scheduler.delete_scheduled_runs):
an update or upsert, a schedule changed, the future auto-scheduled ones; pausing the deployment
or deleting a schedule, every auto-scheduled one; deleting the deployment, all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections import deployments as reads
from runlog.projections import flows as flow_reads
from runlog.projections import variables as variable_reads
from runlog.projections import work_pools as pool_reads
from runlog.projections.cache import ViewCache
from runlog.projections.deployments import DeploymentView, ScheduleView, evolve_deployment, stream_of
from runlog.projections.runs import FlowRunView
from runlog.schema import events as catalogue

from . import deployment_concurrency, flow_runs, integrity, run_keys, work_pools
from . import parameter_templates as templates
from .clock import Clock, system_clock
from .deployment_schedules import check_max_scheduled_runs, normalized_schedule
from .entities import EntityStream
from .errors import BadRequest, Conflict, Unprocessable
from .executor import Decided, Versioned
from .flow_runs import NewFlowRun
from .orchestration import ProposedState
from .scheduler import delete_scheduled_runs

DEPLOYMENT_NAMESPACE = uuid.UUID("c0b5e7d2-1f0a-4d3e-9a6b-72756e6c6f67")

DEFAULT_PARAMETER_SCHEMA = {"type": "object", "properties": {}}
"""Prefect's DeploymentCreate default for parameter_openapi_schema."""

DEPLOYMENTS = EntityStream(stream_of, reads.get, evolve_deployment, versioned=True)


def deployment_id_for(flow_id: UUID, name: str, generation: int = 0) -> UUID:
    """Deployments are keyed by (flow, name): the id is derived from both, so that re-creating
    a deployment (the client's upsert) answers with the same id; ``generation`` counts the
    deletions of that name before (0: the id runlog always derived)."""
    suffix = f"\x1f{generation}" if generation else ""
    return uuid.uuid5(DEPLOYMENT_NAMESPACE, f"{flow_id}\x1f{name}{suffix}")


class NewSchedule(msgspec.Struct, kw_only=True):
    """A schedule to create or (with a slug) to update: Prefect's DeploymentScheduleCreate/Update."""

    schedule: dict[str, Any] | None = None
    active: bool | None = None
    max_scheduled_runs: int | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    slug: str | None = None
    replaces: str | None = None


class DeploymentRun(msgspec.Struct, kw_only=True):
    """A flow run to create from a deployment: Prefect's DeploymentFlowRunCreate."""

    state: ProposedState | None = None
    name: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    enforce_parameter_schema: bool | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    infrastructure_document_id: UUID | None = None
    empirical_policy: dict[str, Any] | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None
    labels: dict[str, Any] | None = None
    parent_task_run_id: UUID | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None


class InvalidDeployment(Unprocessable):
    """A deployment Prefect would refuse: answered with 422."""


class SlugTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("Schedule slugs must be unique within a deployment.")


def check_fields(fields: dict[str, Any]) -> None:
    if fields.get("concurrency_limit") and fields.get("global_concurrency_limit_id"):
        raise InvalidDeployment(
            "A deployment cannot have both a concurrency limit and a global concurrency limit."
        )
    limit = fields.get("concurrency_limit")
    if limit is not None and limit <= 0:
        raise InvalidDeployment("concurrency_limit must be greater than 0")
    options = fields.get("concurrency_options")
    if options is not None:
        if options.get("collision_strategy") not in ("ENQUEUE", "CANCEL_NEW"):
            raise InvalidDeployment("concurrency_options.collision_strategy must be ENQUEUE or CANCEL_NEW")
        grace = options.get("grace_period_seconds")
        if grace is not None and not (isinstance(grace, int) and 60 <= grace <= 86400):
            raise InvalidDeployment("concurrency_options.grace_period_seconds must be between 60 and 86400")


def _schedule_created(deployment_id: UUID, schedule: NewSchedule, now: datetime) -> catalogue.DeploymentScheduleCreated:
    if schedule.schedule is None:
        raise InvalidDeployment("Unable to create new deployment schedules without a schedule configuration.")
    check_max_scheduled_runs(schedule.max_scheduled_runs)
    return catalogue.DeploymentScheduleCreated(
        deployment_id=deployment_id, schedule_id=uuid.uuid4(), schedule=normalized_schedule(schedule.schedule, now),
        active=True if schedule.active is None else schedule.active, max_scheduled_runs=schedule.max_scheduled_runs,
        parameters=schedule.parameters, slug=schedule.slug, created=now,
    )


def _schedule_changes(schedule: NewSchedule, now: datetime, *, sent: Sequence[str] | None = None) -> dict[str, Any]:
    """The fields a schedule update sets; ``sent`` names the fields the client sent (None: those not null)."""
    changes: dict[str, Any] = {}
    for field in ("schedule", "active", "max_scheduled_runs", "parameters", "slug"):
        value = getattr(schedule, field)
        if (sent is None and value is not None and not (field == "parameters" and not value)) or (
            sent is not None and field in sent
        ):
            changes[field] = value
    if changes.get("schedule") is not None:
        changes["schedule"] = normalized_schedule(changes["schedule"], now)
    elif "schedule" in changes:
        del changes["schedule"]  # a schedule cannot be removed from a schedule
    if "active" in changes and changes["active"] is None:
        del changes["active"]
    check_max_scheduled_runs(changes.get("max_scheduled_runs"))
    return changes


def _check_unique_slugs(schedules: Sequence[ScheduleView | catalogue.DeploymentScheduleCreated]) -> None:
    slugs = [s.slug for s in schedules if s.slug is not None]
    if len(slugs) != len(set(slugs)):
        raise SlugTaken()


async def placed_in_pool(
    store: EventStore, fields: dict[str, Any], *, updating: bool = False, clock: Clock = system_clock
) -> dict[str, Any]:
    """``fields`` with the queue a deployment's runs go to, as Prefect's create and update
    decide: with a ``work_pool_name``, the pool must exist (PoolNotFound otherwise); the queue
    named is used, created in the pool when it has none of that name, and without a name the
    pool's default queue, whose name the deployment then records. A ``work_queue_name`` with
    no pool places it in the default agent pool (commands/work_pools.ensure_queue_named),
    whose name the deployment records; except in an update that sets the pool to null, which
    takes the deployment out of any pool."""
    pool_name = fields.get("work_pool_name")
    if not pool_name:
        queue_name = fields.get("work_queue_name")
        if not queue_name or (updating and "work_pool_name" in fields):
            return fields
        pool, queue = await work_pools.ensure_queue_named(store, queue_name, clock=clock)
        return {**fields, "work_pool_name": pool.name, "work_queue_name": queue.name}
    queue_name = fields.get("work_queue_name") or None
    found = await pool_reads.resolve_queue(store, pool_name, queue_name)
    if found is None:
        if queue_name is None or await pool_reads.get_pool_by_name(store, pool_name) is None:
            raise work_pools.PoolNotFound(pool_name)
        try:
            await work_pools.create_queue(store, pool_name, work_pools.NewWorkQueue(name=queue_name), clock=clock)
        except work_pools.QueueNameTaken:
            pass  # another deployment of this queue created it meanwhile: use that one
        found = await pool_reads.resolve_queue(store, pool_name, queue_name)
        if found is None:  # the pool was deleted meanwhile
            raise work_pools.PoolNotFound(pool_name)
    return {**fields, "work_queue_name": found[1].name}


async def upsert(
    store: EventStore, flow_id: UUID, name: str, fields: dict[str, Any], schedules: Sequence[NewSchedule], *,
    clock: Clock = system_clock,
) -> tuple[DeploymentView, bool]:
    """Create the deployment of ``flow_id`` named ``name``, or update the one there is with the
    ``fields`` sent (its schedules replaced by ``schedules``, as Prefect replaces them). The
    deployment and whether it was created. Raises IntegrityConflict for an unknown flow."""
    check_fields(fields)
    if await flow_reads.get(store, flow_id) is None:
        raise integrity.missing("flow_id", "flow", flow_id)
    fields = await placed_in_pool(store, fields, clock=clock)
    tried = 0
    for _round in range(run_keys.MAX_ROUNDS):
        deployment_id = deployment_id_for(flow_id, name, tried)
        outcome = await _upsert_on(store, deployment_id, flow_id, name, fields, schedules, clock)
        if outcome is not None:
            view, created = outcome
            if not created:
                await delete_scheduled_runs(store, view.id, clock(), future_only=True)
            return view, created
        # That generation was deleted: the live one, if any, is the last whose stream exists.
        unused = await run_keys.first_unused_generation(
            store, lambda g: stream_of(deployment_id_for(flow_id, name, g)), tried,
        )
        tried = unused - 1 if unused - 1 > tried else unused
    raise Conflict("The deployment keeps being created and deleted; try again.")


async def _upsert_on(
    store: EventStore, deployment_id: UUID, flow_id: UUID, name: str, fields: dict[str, Any],
    schedules: Sequence[NewSchedule], clock: Clock,
) -> tuple[DeploymentView, bool] | None:
    """The upsert on one generation's stream; None when that deployment was deleted."""

    def decide(current: Versioned[DeploymentView], now: datetime) -> Decided[bool | None]:
        view = current.view
        if view is None and current.version > 0:
            return Decided((), None)  # deleted: its stream stays the old deployment's
        created = [_schedule_created(deployment_id, s, now) for s in schedules]
        _check_unique_slugs(created)
        if view is None:
            initial = {"parameter_openapi_schema": DEFAULT_PARAMETER_SCHEMA, **fields}
            initial["labels"] = {"prefect.flow.id": str(flow_id), **(initial.get("labels") or {})}
            first = catalogue.DeploymentCreated(
                deployment_id=deployment_id, flow_id=flow_id, name=name, fields=initial, created=now,
            )
            return Decided([first, *created], True)
        changes = dict(fields)
        if "labels" in changes:
            changes["labels"] = {"prefect.flow.id": str(flow_id), **(changes["labels"] or {})}
        removed = [
            catalogue.DeploymentScheduleDeleted(deployment_id=deployment_id, schedule_id=s.id) for s in view.schedules
        ]
        updated = catalogue.DeploymentUpdated(deployment_id=deployment_id, changes=changes, updated=now)
        return Decided([updated, *removed, *created], False)

    outcome = await DEPLOYMENTS.execute(store, deployment_id, decide, clock=clock)
    if outcome.result is None:
        return None
    assert outcome.view is not None and outcome.view.view is not None
    if "concurrency_limit" in fields:
        await deployment_concurrency.sync_limit(store, deployment_id, fields["concurrency_limit"], clock=clock)
    return outcome.view.view, outcome.result


def _schedule_events(
    view: DeploymentView, schedules: Sequence[NewSchedule], now: datetime
) -> list[catalogue.Event]:
    """What a PATCH's schedules do, as Prefect's update_deployment decides: targeted updates by
    slug when every schedule (sent and existing) has one, else the schedules are replaced."""
    existing = view.schedules
    all_sent_have_slugs = all(s.slug is not None for s in schedules)
    all_existing_have_slugs = bool(existing) and all(s.slug is not None for s in existing)
    if all_sent_have_slugs and all_existing_have_slugs:
        by_slug = {s.slug: s for s in existing}
        targets = [s.replaces for s in schedules if s.replaces]
        if len(targets) != len(set(targets)):
            duplicate = next(t for t in targets if targets.count(t) > 1)
            raise InvalidDeployment(f"Multiple schedules have 'replaces' targeting the same slug: {duplicate}")
        events: list[catalogue.Event] = []
        for schedule in schedules:
            if schedule.replaces and schedule.slug in by_slug and schedule.slug not in targets:
                raise InvalidDeployment(
                    f"Cannot rename schedule from '{schedule.replaces}' to '{schedule.slug}': "
                    f"a schedule with slug '{schedule.slug}' already exists."
                )
            target = by_slug.get(schedule.replaces or schedule.slug)
            if target is not None:
                events.append(catalogue.DeploymentScheduleUpdated(
                    deployment_id=view.id, schedule_id=target.id, changes=_schedule_changes(schedule, now),
                    updated=now,
                ))
            else:
                events.append(_schedule_created(view.id, schedule, now))
        return events
    if not all_sent_have_slugs and all_existing_have_slugs:
        raise InvalidDeployment(
            "Please provide a slug for each schedule in your request to ensure schedules are updated correctly."
        )
    created = [_schedule_created(view.id, s, now) for s in schedules]
    _check_unique_slugs(created)
    return [
        *(catalogue.DeploymentScheduleDeleted(deployment_id=view.id, schedule_id=s.id) for s in existing), *created,
    ]


async def update(
    store: EventStore, deployment_id: UUID, fields: dict[str, Any], schedules: Sequence[NewSchedule] | None = None, *,
    clock: Clock = system_clock,
) -> bool:
    """PATCH: set ``fields`` (those sent); ``schedules``, when sent, as Prefect's update does.
    False when there is no such deployment."""
    check_fields(fields)
    fields = await placed_in_pool(store, fields, updating=True, clock=clock)

    def changed(view: DeploymentView, now: datetime) -> list[catalogue.Event]:
        events: list[catalogue.Event] = []
        if fields:
            changes = dict(fields)
            if "labels" in changes:
                changes["labels"] = {"prefect.flow.id": str(view.flow_id), **(changes["labels"] or {})}
            events.append(catalogue.DeploymentUpdated(deployment_id=deployment_id, changes=changes, updated=now))
        if schedules is not None:
            events += _schedule_events(view, schedules, now)
        return events

    found = await DEPLOYMENTS.if_exists(store, deployment_id, changed, clock=clock)
    if found:
        await delete_scheduled_runs(store, deployment_id, clock(), future_only=True)
    if found and "concurrency_limit" in fields:
        await deployment_concurrency.sync_limit(store, deployment_id, fields["concurrency_limit"], clock=clock)
    return found


async def set_paused(store: EventStore, deployment_id: UUID, paused: bool, *, clock: Clock = system_clock) -> bool:
    """Pause or resume; False when there is no such deployment. Nothing is appended when the
    deployment already is so."""

    def changed(view: DeploymentView, now: datetime) -> list[catalogue.Event]:
        if view.paused == paused:
            return []
        return [catalogue.DeploymentUpdated(deployment_id=deployment_id, changes={"paused": paused}, updated=now)]

    found = await DEPLOYMENTS.if_exists(store, deployment_id, changed, clock=clock)
    if found and paused:
        await delete_scheduled_runs(store, deployment_id, clock())
    return found


async def delete(store: EventStore, deployment_id: UUID, *, clock: Clock = system_clock) -> bool:
    """Whether there was a deployment to delete; its schedules go with it."""

    def deleted(_view: DeploymentView, now: datetime) -> list[catalogue.Event]:
        return [catalogue.DeploymentDeleted(deployment_id=deployment_id, deleted=now)]

    found = await DEPLOYMENTS.if_exists(store, deployment_id, deleted, clock=clock)
    if found:
        await delete_scheduled_runs(store, deployment_id, clock(), auto_scheduled_only=False)
        await deployment_concurrency.sync_limit(store, deployment_id, None, clock=clock)  # Prefect deletes it too
    return found


async def create_schedules(
    store: EventStore, deployment_id: UUID, schedules: Sequence[NewSchedule], *, clock: Clock = system_clock
) -> list[ScheduleView] | None:
    """Add schedules; the new ones, or None when there is no such deployment. Raises SlugTaken
    for a slug the deployment has (or the request repeats)."""
    new_ids: list[UUID] = []

    def decide(current: Versioned[DeploymentView], now: datetime) -> Decided[bool]:
        view = current.view
        if view is None:
            return Decided((), False)
        created = [_schedule_created(deployment_id, s, now) for s in schedules]
        _check_unique_slugs([*view.schedules, *created])
        new_ids[:] = [event.schedule_id for event in created]
        return Decided(created, True)

    outcome = await DEPLOYMENTS.execute(store, deployment_id, decide, clock=clock)
    if not outcome.result:
        return None
    assert outcome.view is not None and outcome.view.view is not None
    by_id = {s.id: s for s in outcome.view.view.schedules}
    return [by_id[schedule_id] for schedule_id in new_ids]


async def update_schedule(
    store: EventStore, deployment_id: UUID, schedule_id: UUID, schedule: NewSchedule, sent: Sequence[str], *,
    clock: Clock = system_clock,
) -> bool | None:
    """None when there is no such deployment, False when it has no such schedule."""

    def decide(current: Versioned[DeploymentView], now: datetime) -> Decided[bool | None]:
        view = current.view
        if view is None:
            return Decided((), None)
        if all(s.id != schedule_id for s in view.schedules):
            return Decided((), False)
        changes = _schedule_changes(schedule, now, sent=sent)
        slug = changes.get("slug")
        if slug is not None and any(s.slug == slug and s.id != schedule_id for s in view.schedules):
            raise SlugTaken()
        return Decided([catalogue.DeploymentScheduleUpdated(
            deployment_id=deployment_id, schedule_id=schedule_id, changes=changes, updated=now,
        )], True)

    result = (await DEPLOYMENTS.execute(store, deployment_id, decide, clock=clock)).result
    if result:
        await delete_scheduled_runs(store, deployment_id, clock(), future_only=True)
    return result


async def delete_schedule(
    store: EventStore, deployment_id: UUID, schedule_id: UUID, *, clock: Clock = system_clock
) -> bool | None:
    """None when there is no such deployment, False when it has no such schedule."""

    def decide(current: Versioned[DeploymentView], _now: datetime) -> Decided[bool | None]:
        view = current.view
        if view is None:
            return Decided((), None)
        if all(s.id != schedule_id for s in view.schedules):
            return Decided((), False)
        return Decided([catalogue.DeploymentScheduleDeleted(deployment_id=deployment_id, schedule_id=schedule_id)], True)

    result = (await DEPLOYMENTS.execute(store, deployment_id, decide, clock=clock)).result
    if result:
        await delete_scheduled_runs(store, deployment_id, clock())
    return result


# -- a flow run from a deployment ---------------------------------------------------------------


def check_parameters(parameters: dict[str, Any], schema: Any) -> None:
    """Prefect's check of a run's parameters against the deployment's schema (JSON Schema
    2020-12), with its message; Conflict (409) as Prefect answers."""
    import jsonschema  # imported when a schema is enforced

    if not isinstance(schema, dict):
        raise Conflict(
            "Error updating deployment: Cannot update parameters because parameter schema enforcement is enabled "
            "and the deployment does not have a valid parameter schema."
        )
    try:
        jsonschema.validate(parameters, schema, cls=jsonschema.Draft202012Validator)
    except RecursionError:
        raise Unprocessable("Invalid schema: Unable to validate schema with circular references.") from None
    except jsonschema.SchemaError as exc:
        raise Conflict(f"Error creating flow run: Validation failed. Failure reason: {exc.message}") from None
    except jsonschema.ValidationError as exc:
        where = "Validation failed." if exc.json_path == "$" else \
            f"Validation failed for field {exc.json_path.replace('$.', '')!r}."
        raise Conflict(f"Error creating flow run: {where} Failure reason: {exc.message}") from None


def _union(first: Sequence[str], second: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


async def create_flow_run(
    store: EventStore, deployment_id: UUID, body: DeploymentRun, *, cache: ViewCache | None = None,
    created_by: dict[str, Any] | None = None, clock: Clock = system_clock,
) -> tuple[FlowRunView, bool] | None:
    """A flow run of the deployment (None when there is none): its parameters merged over the
    deployment's, their templates resolved (BadRequest for a bad one, as Prefect answers 400)
    and checked against its schema when enforced, its tags added to the deployment's,
    Scheduled now unless a state is given, made by ``created_by`` (Prefect's CreatedBy, or
    None). The run and whether it was created (an idempotency key may find an existing one)."""
    deployment = await reads.get(store, deployment_id)
    if deployment is None:
        return None
    parameters = await hydrated({**deployment.parameters, **body.parameters}, store)
    enforce = deployment.enforce_parameter_schema if body.enforce_parameter_schema is None \
        else body.enforce_parameter_schema
    if enforce:
        check_parameters(parameters, deployment.parameter_openapi_schema)
    work_queue_name = deployment.work_queue_name
    if body.work_queue_name:
        if not deployment.work_pool_name:
            raise BadRequest(
                f"Cannot create flow run in work queue {body.work_queue_name} because deployment {deployment_id} "
                "is not associated with a work pool. Please remove work_pool_name and try again."
            )
        work_queue_name = body.work_queue_name
    labels = {**deployment.labels, "prefect.deployment.id": str(deployment.id), **(body.labels or {})}
    new = NewFlowRun(
        flow_id=deployment.flow_id, name=body.name,
        state=body.state or ProposedState(type=catalogue.StateType.SCHEDULED),
        parameters=parameters, context=body.context, parent_task_run_id=body.parent_task_run_id,
        idempotency_key=body.idempotency_key, empirical_policy=body.empirical_policy,
        tags=_union(deployment.tags, body.tags), labels=labels, deployment_id=deployment.id,
        deployment_version=deployment.version, work_pool_name=deployment.work_pool_name,
        work_queue_name=work_queue_name, job_variables=body.job_variables or {}, created_by=created_by,
    )
    return await flow_runs.create(store, new, cache=cache, clock=clock)


async def hydrated(
    parameters: dict[str, Any], store: EventStore, jinja_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``parameters`` with their ``__prefect_kind`` templates resolved as Prefect resolves a
    deployment run's: Jinja rendered (with ``jinja_context``; Prefect's route gives none), the
    workspace variables named read. Raises BadRequest with Prefect's message at the first problem."""
    if not templates.has_templates(parameters):
        return parameters
    variables: dict[str, Any] = {}
    for name in templates.variable_names(parameters):
        found = await variable_reads.get_by_name(store, name)
        if found is not None:
            variables[name] = found.value
    ctx = templates.Context(
        raise_on_error=True, render_jinja=True, jinja_context=jinja_context or {}, render_variables=True,
        variables=variables,
    )
    try:
        return templates.hydrate(parameters, ctx)
    except templates.HydrationError as exc:
        raise BadRequest(f"Error hydrating flow run parameters: {exc}") from None


__all__ = [
    "DEPLOYMENTS", "DeploymentRun", "InvalidDeployment", "NewSchedule", "SlugTaken", "check_parameters",
    "create_flow_run", "create_schedules", "delete", "delete_schedule", "deployment_id_for", "hydrated", "placed_in_pool",
    "set_paused",
    "update",
    "update_schedule", "upsert",
]
