"""Prefect's events as the log shows them: one derivation from a recorded event to its feed events.

A client event (``PrefectEventReceived``) shows as it was sent. An accepted flow-run state change
(``FlowRunStateChanged``) shows as Prefect's ``prefect.flow-run.<StateName>`` event, built as
Prefect 3.8.8's InstrumentFlowRunStateTransitions builds it, from the run *as it was at that
event*: the run's stream folded up to the change's version, and its flow as the log had it
then. Nothing derived here is stored in the log; the event feed (projections/event_feed.py),
the ``/events/out`` websocket and the notifier all call ``Derivation.events_of`` on the records
they read, so they agree on what each record shows.

A work pool's or queue's creation, update, deletion or status change shows as Prefect's
``prefect.work-pool.*`` or ``prefect.work-queue.*`` (projections/work_pool_events.py). A
deployment's creation, update, deletion or status change shows as ``prefect.deployment.*``.

A delivery's outcome (``DeliverySent``, ``DeliveryDeadLettered``) shows as the
``prefect.automation.action.executed`` or ``.failed`` of the automation action that scheduled
it, when the notifier recorded that action's ``.triggered`` event (on the stream
``triggered-action-<delivery id>``; see projections/automation_events.py).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, RecordedEvent
from runlog.schema import events as catalogue
from runlog.schema.automations import ReceivedEvent
from runlog.schema import streams

from . import automation_events
from .deployments import DeploymentView, evolve_deployment
from .flows import FlowView, evolve_flow
from .runs import FlowRunView, evolve_flow_run
from .work_pool_events import WorkPoolsFold, kebab
from .work_pools import WorkPoolView, WorkQueueView

TRUNCATE_STATE_MESSAGES_AT = 100_000
"""Prefect cuts state messages in its events to this many characters (middle elided)."""
TIGHT_TIMING = timedelta(minutes=5)
"""Prefect links an event to the previous state's (``follows``) only when they are this close."""
CACHE_SIZE = 10_000
"""Runs and flows whose folded views are kept between calls (least recently used go first)."""

_TYPES = frozenset({"prefect.event", "flow_run.created", "flow_run.state_changed", "flow_run.updated", "flow_run.deleted"})
_DELIVERY_OUTCOMES = frozenset({"delivery.sent", "delivery.dead_lettered"})
_DEPLOYMENT_TYPES = frozenset({"deployment.created", "deployment.updated", "deployment.deleted", "deployment.status_changed"})
DEPLOYMENT_EVENT_FIELDS = {
    "description": "description", "tags": "tags", "parameters": "parameters",
    "parameter_openapi_schema": "parameter_openapi_schema", "enforce_parameter_schema": "enforce_parameter_schema",
    "entrypoint": "entrypoint", "path": "path", "pull_steps": "pull_steps", "job_variables": "infra_overrides",
    "paused": "paused", "labels": "labels", "version": "version", "concurrency_options": "concurrency_options",
}
"""The deployment fields whose change Prefect reports in ``prefect.deployment.updated``, by
runlog's name and Prefect's (which calls job variables ``infra_overrides`` there). Prefect also
reports its work queue and concurrency limit ids, which runlog does not link yet."""


PrefectEvent = ReceivedEvent
"""The events this module derives: one struct with the triggers' (schema/automations.py)."""


def truncated_to(length: int, value: str | None) -> str:
    """Prefect's truncation: empty for no value; the start and end halves around '...'."""
    if not value:
        return ""
    if len(value) <= length:
        return value
    half = length // 2
    return f"{value[:half]}...{value[-half:]}"


def client_event(record: RecordedEvent, received: catalogue.PrefectEventReceived) -> PrefectEvent:
    """A client's event as it sent it; its id is the client's (see PrefectEventReceived)."""
    return PrefectEvent(
        occurred=received.occurred, event=received.event, resource=received.resource, related=received.related,
        payload=received.payload, id=received.event_id or record.id, follows=received.follows,
        received=record.recorded_at,
    )


def state_payload(state: catalogue.State | None) -> dict[str, str] | None:
    """The essential string parts of a state, as Prefect puts them in an event payload."""
    if state is None:
        return None
    # An enum's ``_value_`` is its value without the Python-level property call ``.value`` makes,
    # a few of which per derived event were a measurable part of the feed's fold.
    payload = {"type": state.type._value_}
    if state.name:
        payload["name"] = state.name
    if state.message:
        payload["message"] = truncated_to(TRUNCATE_STATE_MESSAGES_AT, state.message)
    if state.type is catalogue.StateType.PAUSED:
        payload["pause_reschedule"] = str(state.state_details.pause_reschedule).lower()
    return payload


def flow_run_related(
    run: FlowRunView, flow: FlowView | None, deployment: DeploymentView | None = None
) -> list[dict[str, str]]:
    """The run's related resources in Prefect's order: flow, deployment, then one per tag.

    Tags are the sorted union of the run's, the flow's and the deployment's. A run's deployment
    shows with its name when the log has the deployment at that point, by id alone otherwise.
    A run's work pool and queue are known by name only, which Prefect's resource ids
    (``prefect.work-pool.<id>``) cannot be made from: those two are left out.
    """
    related: list[dict[str, str]] = []
    tags = set(run.tags)
    if flow is not None:
        tags.update(flow.tags)
        related.append({
            "prefect.resource.id": f"prefect.flow.{flow.id}", "prefect.resource.role": "flow",
            "prefect.resource.name": flow.name,
        })
    if run.deployment_id is not None:
        resource = {"prefect.resource.id": f"prefect.deployment.{run.deployment_id}", "prefect.resource.role": "deployment"}
        if deployment is not None and deployment.id == run.deployment_id:
            tags.update(deployment.tags)
            resource["prefect.resource.name"] = deployment.name
        related.append(resource)
    related.extend({"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"} for tag in sorted(tags))
    related.extend(_creator(run.created_by))
    return related


def _creator(created_by: dict[str, Any] | None) -> list[dict[str, str]]:
    """The run's creator as Prefect relates it, last: an automation or a deployment (a
    schedule, the scheduler's runs' creator, is not related)."""
    kind = {"AUTOMATION": "automation", "DEPLOYMENT": "deployment"}.get((created_by or {}).get("type") or "")
    if created_by is None or kind is None:
        return []
    resource = {"prefect.resource.id": f"prefect.{kind}.{created_by.get('id')}", "prefect.resource.role": "creator"}
    if created_by.get("display_value"):
        resource["prefect.resource.name"] = str(created_by["display_value"])
    return [resource]


def deployment_changes(before: DeploymentView, after: DeploymentView) -> dict[str, dict[str, Any]]:
    """The fields Prefect reports as changed, by its names, in a stable order: {field: {from, to}}."""
    old, new = msgspec.to_builtins(before), msgspec.to_builtins(after)
    return {
        prefect_name: {"from": old.get(field), "to": new.get(field)}
        for field, prefect_name in sorted(DEPLOYMENT_EVENT_FIELDS.items(), key=lambda item: item[1])
        if old.get(field) != new.get(field)
    }


def deployment_related(
    deployment: DeploymentView, flow: FlowView | None,
    queue: WorkQueueView | None = None, pool: WorkPoolView | None = None,
) -> list[dict[str, str]]:
    """A deployment event's related resources as Prefect lists them: its flow, its work queue
    and pool (as the log had them then), and its blocks."""
    related: list[dict[str, str]] = []
    if flow is not None:
        related.append({
            "prefect.resource.id": f"prefect.flow.{flow.id}", "prefect.resource.name": flow.name,
            "prefect.resource.role": "flow",
        })
    if queue is not None:
        related.append({
            "prefect.resource.id": f"prefect.work-queue.{queue.id}", "prefect.resource.name": queue.name,
            "prefect.resource.role": "work-queue",
        })
    if pool is not None:
        related.append({
            "prefect.resource.id": f"prefect.work-pool.{pool.id}", "prefect.resource.name": pool.name,
            "prefect.work-pool.type": pool.type, "prefect.resource.role": "work-pool",
        })
    for document_id, role in ((deployment.storage_document_id, "storage"),
                              (deployment.infrastructure_document_id, "infrastructure")):
        if document_id is not None:
            related.append({"prefect.resource.id": f"prefect.block-document.{document_id}", "prefect.resource.role": role})
    return related


def flow_run_state_event(
    run: FlowRunView, flow: FlowView | None, initial: catalogue.State | None, validated: catalogue.State,
    received: datetime, deployment: DeploymentView | None = None,
) -> PrefectEvent:
    """Prefect's ``prefect.flow-run.<StateName>`` for a run that moved from ``initial`` to ``validated``.

    ``run`` is the run after the transition (its run count includes it). Pure.
    """
    occurred = validated.timestamp
    tight = initial is not None and -TIGHT_TIMING < occurred - initial.timestamp < TIGHT_TIMING
    to = validated.type._value_  # .value's property call saved, as in state_payload
    return PrefectEvent(
        occurred=occurred,
        event=f"prefect.flow-run.{validated.name}",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.name": run.name,
            "prefect.run-count": str(run.run_count),
            "prefect.state-message": truncated_to(TRUNCATE_STATE_MESSAGES_AT, validated.message),
            "prefect.state-name": validated.name or "",
            "prefect.state-timestamp": occurred.isoformat(),
            "prefect.state-type": to,
        },
        related=flow_run_related(run, flow, deployment),
        payload={
            "intended": {"from": initial.type._value_ if initial else None, "to": to},
            "initial_state": state_payload(initial),
            "validated_state": state_payload(validated),
        },
        id=validated.id,
        follows=initial.id if tight and initial is not None else None,
        received=received,
    )


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


class Derivation:
    """``events_of(record)``: the Prefect events a recorded log event shows as (often none).

    Keeps the folded views of recent runs and flows, so a caller that hands it the log in
    position order (the feed, the notifier) folds each run once, with no read; a record whose
    run is not cached, or cached at an older version, reads the run's stream up to it. Flows
    are folded from their own records as they pass, or read up to the record's position on a
    miss. One instance per consumer; not shared between tasks that read different positions.
    """

    def __init__(self, store: EventStore, *, cache_size: int = CACHE_SIZE) -> None:
        self._store = store
        # Keyed by the run's stream id and by the flow's and deployment's UUID as an int: a
        # UUID's hash and equality are Python-level methods, called a few times per lookup and
        # move, which made the caches a measurable part of the event feed's fold.
        self._runs: _Lru = _Lru(cache_size)  # run stream id -> (version, FlowRunView | None)
        self._flows: _Lru = _Lru(cache_size)  # flow id's int -> (position, FlowView | None)
        self._deployments: _Lru = _Lru(cache_size)  # deployment id's int -> (position, DeploymentView | None)
        # delivery id -> the action.triggered event opening its triggered-action stream, kept as
        # the records pass (it precedes the delivery's outcome in the log), so an outcome costs
        # no read: under a fan-out every alert sent is one outcome, for each consumer.
        self._triggered: _Lru = _Lru(cache_size)
        self._work_pools = WorkPoolsFold(store)

    async def events_of(
        self, record: RecordedEvent, *, wanted: Callable[[str, str], bool] | None = None,
    ) -> list[PrefectEvent]:
        """The feed events of one record. Raises msgspec.DecodeError for a payload that is no event.

        ``wanted(name, state_type)``: whether the caller uses a flow run's state event of that
        name and state type; one it does not is not built (the run is still folded, so the next
        record of the run needs no read). The notifier's matcher passes the names its rules
        expect: most state changes of a busy server match no rule."""
        if record.type.startswith("flow.") and record.stream_id.startswith(streams.FLOW):
            self._fold_flow(record)
            return []
        if record.type in _DELIVERY_OUTCOMES and record.stream_id.startswith(streams.DELIVERY):
            return await self._delivery_outcome(record)
        if record.type in _DEPLOYMENT_TYPES and record.stream_id.startswith(streams.DEPLOYMENT):
            return await self._deployment_event(record)
        if record.stream_id == streams.WORK_POOLS:
            return await self._work_pools.events_of(record)
        if record.type not in _TYPES:
            return []
        event = catalogue.decode(record.data)
        if isinstance(event, catalogue.PrefectEventReceived):
            if record.version == 1 and record.stream_id.startswith(streams.TRIGGERED_ACTION):
                self._triggered.put(record.stream_id[len(streams.TRIGGERED_ACTION):], event)
            return [client_event(record, event)]
        if not record.stream_id.startswith(streams.FLOW_RUN):
            return []
        before = await self._run_before(record)
        after = evolve_flow_run(before, event, record.version)
        self._runs.put(record.stream_id, (record.version, after))
        if not isinstance(event, catalogue.FlowRunStateChanged) or after is None:
            return []
        if wanted is not None and not wanted(f"prefect.flow-run.{event.state.name}", event.state.type._value_):
            return []
        flow = await self._flow_at(after.flow_id, record.position)
        deployment = None
        if after.deployment_id is not None:
            deployment = await self._deployment_at(after.deployment_id, record.position)
        initial = before.state if before is not None else None
        return [flow_run_state_event(after, flow, initial, event.state, record.recorded_at, deployment)]

    async def _deployment_event(self, record: RecordedEvent) -> list[PrefectEvent]:
        """Prefect's ``prefect.deployment.created``, ``.updated`` (when a field it reports
        changed) or ``.deleted``, from the deployment as its stream had it around ``record``."""
        before: DeploymentView | None = None
        async for earlier in self._store.read_stream(record.stream_id):
            if earlier.version >= record.version:
                break
            before = evolve_deployment(before, catalogue.decode(earlier.data))
        event = catalogue.decode(record.data)
        after = evolve_deployment(before, event)
        self._deployments.put((after.id if after is not None else event.deployment_id).int, (record.position, after))
        shown = after if after is not None else before
        if shown is None:
            return []
        flow = await self._flow_at(shown.flow_id, record.position)
        payload: dict[str, Any] = {}
        if isinstance(event, catalogue.DeploymentStatusChanged):
            name = kebab(event.status)  # prefect.deployment.ready / .not-ready
        elif isinstance(event, catalogue.DeploymentCreated):
            name = "created"
        elif isinstance(event, catalogue.DeploymentDeleted):
            name = "deleted"
        else:
            assert before is not None and after is not None
            updates = deployment_changes(before, after)
            if not updates:
                return []
            name, payload = "updated", {"updated_fields": list(updates), "updates": updates}
        occurred = (getattr(event, "created", None) or getattr(event, "updated", None) or getattr(event, "deleted", None)
                    or getattr(event, "changed", None) or record.recorded_at)
        queue = pool = None
        if shown.work_pool_name and shown.work_queue_name:
            queue, pool = await self._work_pools.queue_named(shown.work_pool_name, shown.work_queue_name, record.position)
        if queue is None:
            pool = None  # Prefect names the pool through the queue
        return [PrefectEvent(
            occurred=occurred, event=f"prefect.deployment.{name}",
            resource={"prefect.resource.id": f"prefect.deployment.{shown.id}", "prefect.resource.name": shown.name},
            related=deployment_related(shown, flow, queue, pool), payload=payload, id=record.id,
            received=record.recorded_at,
        )]

    async def _deployment_at(self, deployment_id: UUID, position: int) -> DeploymentView | None:
        """The deployment as the log had it at ``position``: cached as its records pass, else read."""
        key = deployment_id.int
        cached = self._deployments.get(key)
        if cached is not None and cached[0] <= position:
            self._deployments.move_to_end(key)
            return cached[1]
        view: DeploymentView | None = None
        last = 0
        async for record in self._store.read_stream(streams.deployment(deployment_id)):
            if record.position > position:
                break
            view, last = evolve_deployment(view, catalogue.decode(record.data)), record.position
        if cached is None:
            self._deployments.put(key, (last, view))
        return view

    async def _delivery_outcome(self, record: RecordedEvent) -> list[PrefectEvent]:
        """The action event of a delivery's outcome; none for a delivery no action event names
        (one scheduled by a runlog older than the automation events, or by hand)."""
        outcome = catalogue.decode(record.data)
        assert isinstance(outcome, (catalogue.DeliverySent, catalogue.DeliveryDeadLettered))
        triggered: catalogue.PrefectEventReceived | None = self._triggered.get(str(outcome.delivery_id))
        if triggered is None:  # its stream began before this consumer's first record: read it
            async for first in self._store.read_stream(streams.triggered_action(outcome.delivery_id)):
                candidate = catalogue.decode(first.data)
                triggered = candidate if isinstance(candidate, catalogue.PrefectEventReceived) else None
                break
        if triggered is None or triggered.event_id is None:
            return []
        reason = outcome.reason if isinstance(outcome, catalogue.DeliveryDeadLettered) else None
        # A replayed dead letter may fail and succeed later: each outcome record has its own event.
        finished = automation_events.action_finished(triggered, at=outcome.at, reason=reason, key=record.id)
        return [client_event(record, finished)]

    async def _run_before(self, record: RecordedEvent) -> FlowRunView | None:
        """The run as its stream had it just before ``record``."""
        cached = self._runs.get(record.stream_id)
        version, view = cached if cached is not None else (0, None)
        if version >= record.version:  # a record seen again, or from an older read: fold afresh
            version, view = 0, None
        if version < record.version - 1:
            async for earlier in self._store.read_stream(record.stream_id, after_version=version):
                if earlier.version >= record.version:
                    break
                view = evolve_flow_run(view, catalogue.decode(earlier.data), earlier.version)
        return view

    def _fold_flow(self, record: RecordedEvent) -> None:
        event = catalogue.decode(record.data)
        flow_id = getattr(event, "flow_id", None)
        if flow_id is None:
            return
        cached = self._flows.get(flow_id.int)
        if cached is None and not isinstance(event, catalogue.FlowCreated):
            return  # not cached: read on demand, up to the position that needs it
        self._flows.put(flow_id.int, (record.position, evolve_flow(cached[1] if cached else None, event)))

    async def _flow_at(self, flow_id: UUID, position: int) -> FlowView | None:
        key = flow_id.int
        cached = self._flows.get(key)
        if cached is not None and cached[0] <= position:
            self._flows.move_to_end(key)
            return cached[1]
        view: FlowView | None = None
        last = 0
        async for record in self._store.read_stream(streams.flow(flow_id)):
            if record.position > position:
                break
            view, last = evolve_flow(view, catalogue.decode(record.data)), record.position
        if cached is None:
            self._flows.put(key, (last, view))
        return view


__all__ = ["Derivation", "PrefectEvent", "client_event", "flow_run_related", "flow_run_state_event", "state_payload"]
