"""The matcher: the notifier's consumer of the log, from "a state changed" to "a delivery is due".

It follows the log from its own checkpoint (projections/checkpoints.py), shows each record as
Prefect's events (projections/prefect_events.Derivation: the same events the feed serves),
evaluates every enabled, unmuted automation's trigger against them (notifier/triggers.py), and
turns each firing's notification actions into deliveries (commands/deliveries.schedule), with
the subject and body rendered then (notifier/templates.py), so a message shows the state that
fired and not the run's state when it is sent. The dispatcher (dispatcher.py) sends them.

Nothing is lost or sent twice across a crash or a restart: the checkpoint moves only after a
page's deliveries are recorded, and a delivery's id is derived from (triggering event,
automation, action), so a page matched again after a crash collapses onto the deliveries it
already made. What is not kept across a restart is the trigger windows' counts (a threshold
above one, a proactive ``within``): they start again empty, as Prefect's do when its triggers
service restarts. A singleton on the service runner: with several processes on one PostgreSQL,
the leader matches.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog

from runlog.commands import deliveries
from runlog.commands.clock import Clock, system_clock
from runlog.commands.runner import Service
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table
from runlog.projections import automations as automation_reads
from runlog.projections import flows as flow_reads
from runlog.projections.checkpoints import CHECKPOINTS, catch_up
from runlog.projections.prefect_events import Derivation, PrefectEvent
from runlog.projections.runs_writer import get_flow_run
from runlog.schema.automations import AutomationDefinition, SendNotification

from . import templates, triggers

log = structlog.get_logger("runlog.notifier")

NAME = "notifier-matcher"
"""The matcher's checkpoint and its service (leader election) name."""
INTERVAL_SECONDS = 1.0
"""How often proactive windows are looked at without a new event."""
_NAMESPACE = uuid.UUID("3f9d3c52-5a53-4f0e-9a57-6e6f74696679")


@dataclass
class _Automation:
    id: UUID
    name: str
    definition: AutomationDefinition
    muted_until: datetime | None
    buckets: dict[triggers.BucketKey, triggers.Bucket]



def _load(view: automation_reads.AutomationView) -> AutomationDefinition | None:
    try:
        return msgspec.convert(
            {"name": view.name, "enabled": view.enabled, "trigger": view.trigger, "actions": view.actions,
             "actions_on_trigger": view.actions_on_trigger},
            AutomationDefinition,
        )
    except msgspec.ValidationError as exc:  # stored by an older runlog with a shape it no longer takes
        log.warning("automation_not_evaluated", automation_id=str(view.id), error=str(exc))
        return None


class Matcher:
    """See the module's docstring; ``on_scheduled`` is called when a round scheduled deliveries
    (the dispatcher's wake-up, so they go out at once)."""

    name = NAME
    tables: tuple[Table, ...] = ()

    def __init__(
        self, store: EventStore, *, renderer: templates.Renderer, clock: Clock = system_clock,
        on_scheduled: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._renderer = renderer
        self._clock = clock
        self._on_scheduled = on_scheduled
        self._derivation = Derivation(store)
        self._automations: dict[UUID, _Automation] | None = None
        self._reached = 0
        self._idle = False  # the last round found no automation to evaluate
        self._saved_at: datetime | None = None
        self._unannounced = 0  # deliveries scheduled since the dispatcher was last woken
        self._this_round = 0

    def service(self) -> Service:
        async def wake() -> None:
            # Returns at the first event past what the last round matched: no gathering delay,
            # an alert's latency is the point.
            async for _record in self._store.subscribe(after=self._reached):
                break

        return Service(NAME, self.step, INTERVAL_SECONDS, wake=wake)

    async def step(self, now: datetime) -> int:
        """One round: match what the log holds past the checkpoint, then let time run out on
        proactive windows. How many deliveries it scheduled."""
        self._this_round = 0
        if self._idle:
            self._automations = None  # idle rounds read no records: look for new automations
        if not await self._enabled(now):
            await self._skip(now)
            return 0
        if self._idle:
            # Back from idle: match from here on, not the events no automation was there for.
            await self._save_checkpoint(self._reached)
            self._idle = False
        self._reached = await catch_up(self._store, self)
        for automation in (await self._enabled(now)):
            automation.buckets, firings = triggers.tick(automation.definition.trigger, automation.buckets, now)
            for firing in firings:
                await self._fire(automation, firing)
        self._announce()
        return self._this_round

    async def _skip(self, now: datetime) -> None:
        """No automation is enabled and unmuted: nothing in the log can fire, so the round reads
        none of it and only moves the checkpoint to the head (saved at most once a second: a
        crash then re-skips a second of it). A server with no rules pays a query, not a second
        reading of every event."""
        self._idle = True
        self._reached = await self._store.head()
        if self._saved_at is None or (now - self._saved_at).total_seconds() >= 1.0:
            await self._save_checkpoint(self._reached)
            self._saved_at = now

    async def _save_checkpoint(self, position: int) -> None:
        changes = RowChanges()
        changes.upsert(CHECKPOINTS, (NAME, position))
        await self._store.write_tables(changes)

    async def changes(self, events: Sequence[RecordedEvent]) -> RowChanges:
        """A page of the log matched (catch_up writes the checkpoint after it): the matcher keeps
        no table of its own, its output is deliveries, recorded by the time this returns."""
        fired: list[tuple[_Automation, triggers.Firing]] = []
        for record in events:
            if record.type.startswith("automation."):
                self._automations = None  # created, edited, paused or deleted: read them again
            for event in await self._derivation.events_of(record):
                for automation in await self._enabled(event.occurred):
                    automation.buckets, firings = triggers.observe(
                        automation.definition.trigger, automation.buckets, event, self._clock(),
                    )
                    fired += ((automation, firing) for firing in firings)
        # Triggers are evaluated in the log's order; what they fired is acted on at once, so that
        # twenty runs failing together make one group commit of deliveries, not twenty in a row.
        await asyncio.gather(*(self._fire(automation, firing) for automation, firing in fired))
        self._announce()  # per page: its alerts need not wait for the whole backlog
        return RowChanges()

    def _announce(self) -> None:
        if self._unannounced:
            self._unannounced = 0
            self._on_scheduled()

    async def _enabled(self, at: datetime) -> list[_Automation]:
        if self._automations is None:
            async with self._store.reading() as tx:
                views = await automation_reads.every_automation(tx)
            loaded: dict[UUID, _Automation] = {}
            for view in views:
                definition = _load(view)
                if definition is None:
                    continue
                previous = (self._automations or {}).get(view.id)
                loaded[view.id] = _Automation(
                    view.id, view.name, definition, view.muted_until, previous.buckets if previous else {},
                )
            self._automations = loaded
        return [
            a for a in self._automations.values()
            if a.definition.enabled and (a.muted_until is None or a.muted_until <= at)
        ]

    async def _fire(self, automation: _Automation, firing: triggers.Firing) -> None:
        event = firing.event
        # A proactive trigger may fire with no event in its window: the firing itself is then
        # the trigger, identified by the automation and the moment it fired.
        event_id = event.id if event is not None else uuid.uuid5(
            _NAMESPACE, f"{automation.id}:{firing.at.isoformat()}:{sorted(firing.labels.items())}"
        )
        context = await self._context(automation, event, firing)
        log.info("automation_triggered", automation_id=str(automation.id), event_id=str(event_id),
                 event_name=event.event if event is not None else None)
        for index, action in enumerate(automation.definition.actions):
            if not isinstance(action, SendNotification):
                # do-nothing does nothing; the flow-run actions and call-webhook are accepted
                # as Prefect accepts them but not carried out yet (README: Not yet).
                if action.__struct_config__.tag != "do-nothing":
                    log.warning("automation_action_not_supported", automation_id=str(automation.id),
                                action=action.__struct_config__.tag)
                continue
            try:
                subject = self._renderer.render(action.subject, context)
                body = self._renderer.render(action.body, context)
            except templates.TemplateFailed as exc:
                # Still delivered, with the reason in place of the text: a rule whose template
                # fails at send time must not go silent.
                subject, body = action.subject, f"(the notification's template failed: {exc})\n\n{action.body}"
            _view, created = await deliveries.schedule(
                self._store, rule_id=automation.id, rule_name=automation.name, action_index=index,
                channel_id=action.block_document_id, event_id=event_id, flow_run_id=_flow_run_id(event),
                subject=subject, body=body, clock=self._clock,
            )
            self._unannounced += int(created)
            self._this_round += int(created)

    async def _context(
        self, automation: _Automation, event: PrefectEvent | None, firing: triggers.Firing
    ) -> dict[str, Any]:
        run = flow = None
        run_id = _flow_run_id(event)
        if run_id is not None:
            view = await get_flow_run(self._store, run_id)
            if view is not None:
                run = msgspec.to_builtins(view)
                flow_view = await flow_reads.get(self._store, view.flow_id)
                flow = msgspec.to_builtins(flow_view) if flow_view is not None else None
        return templates.context(
            event=event,
            automation={"id": str(automation.id), "name": automation.name},
            flow=flow, flow_run=run, labels=firing.labels,
        )


def _flow_run_id(event: PrefectEvent | None) -> UUID | None:
    if event is None:
        return None
    resource_id = event.resource.get("prefect.resource.id", "")
    if not resource_id.startswith("prefect.flow-run."):
        return None
    try:
        return UUID(resource_id.removeprefix("prefect.flow-run."))
    except ValueError:
        return None


__all__ = ["NAME", "Matcher"]
