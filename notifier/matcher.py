"""The matcher: the notifier's consumer of the log, from "a state changed" to "a delivery is due".

It follows the log from its own checkpoint (projections/checkpoints.py), shows each record as
Prefect's events (projections/prefect_events.Derivation: the same events the feed serves),
evaluates every enabled, unmuted automation's trigger against them (notifier/triggers.py), and
carries out each firing's actions (acting.py): notifications and webhook calls become
deliveries (commands/deliveries.schedule), with the subject and body rendered then
(notifier/templates.py), so a message shows the state that fired and not the run's state when
it is sent; the dispatcher (dispatcher.py) sends them. The flow-run actions change the run's
state at once (run_actions.py). Each firing and action is recorded as Prefect's automation
events, which the event feed shows.

Nothing is lost or sent twice across a crash or a restart: the checkpoint moves only after a
page's actions are recorded, and a delivery's id is derived from (triggering event,
automation, action), so a page matched again after a crash collapses onto the deliveries it
already made; the other actions are claimed before they are carried out
(commands/automation_runs.py), so none runs twice. What is not kept across a restart is the trigger windows' counts (a threshold
above one, a proactive ``within``): they start again empty, as Prefect's do when its triggers
service restarts. A singleton on the service runner: with several processes on one PostgreSQL,
the leader matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import msgspec
import structlog

from runlog.commands.clock import Clock, system_clock
from runlog.commands.runner import Service
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table
from runlog.projections import automations as automation_reads
from runlog.projections.checkpoints import CHECKPOINTS, PAGE, checkpoint
from runlog.projections.prefect_events import Derivation, PrefectEvent
from runlog.schema.automations import AutomationDefinition

from . import templates, triggers
from .acting import Actor

log = structlog.get_logger("runlog.notifier")

NAME = "notifier-matcher"
"""The matcher's checkpoint and its service (leader election) name."""
INTERVAL_SECONDS = 1.0
"""How often proactive windows are looked at without a new event."""
SAVE_EVERY_SECONDS = 1.0
"""The checkpoint is written at most this often (by the clock's time)."""


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
        self._actor = Actor(store, renderer=renderer, clock=clock)
        self._automations: dict[UUID, _Automation] | None = None
        self._reached = 0
        self._matched = 0  # the last position matched by this process, saved or not
        self._stale = False  # an automation changed since they were read
        self._idle = False  # the last round found no automation to evaluate
        self._saved_at: datetime | None = None
        self._saved = -1  # the position last written as the checkpoint by this process
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
            self._stale = True  # idle rounds read no records: look for new automations
        if not await self._enabled(now):
            await self._skip(now)
            return 0
        if self._idle:
            # Back from idle: match from here on, not the events no automation was there for.
            await self._save_checkpoint(self._reached)
            self._idle = False
        self._reached = await self._catch_up(now)
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

    async def _catch_up(self, now: datetime) -> int:
        """Match the log from where it was matched to its end; the position reached.

        The matcher follows every append of the server (a round per group commit, most of them
        other clients' run states), so writing its checkpoint after each page made a write
        transaction per round, contending with the clients' appends (on SQLite, for its one
        writer). It is written at most once a SAVE_EVERY_SECONDS instead, and the position
        matched since is kept here: a crash then matches up to a second of the log again, which
        schedules nothing twice (a delivery's id is derived from its event, rule and action; the
        other actions are claimed). The table is still read each round, and the further of the
        two taken, so that a process leading again after another led goes on from where that one
        got to.
        """
        after = max(await checkpoint(self._store, NAME), self._matched)
        while True:
            page = [record async for record in self._store.read_all(after=after, limit=PAGE)]
            if not page:
                break
            await self.changes(page)  # its actions are recorded by the time it returns
            after = self._matched = page[-1].position
        due = self._saved_at is None or (now - self._saved_at).total_seconds() >= SAVE_EVERY_SECONDS
        if due and after != self._saved:
            await self._save_checkpoint(after)
            self._saved_at = now
        return after

    async def _save_checkpoint(self, position: int) -> None:
        self._saved = position
        changes = RowChanges()
        changes.upsert(CHECKPOINTS, (NAME, position))
        await self._store.write_tables(changes)

    async def changes(self, events: Sequence[RecordedEvent]) -> RowChanges:
        """A page of the log matched (_catch_up moves the checkpoint after it): the matcher keeps
        no table of its own, its output is deliveries, recorded by the time this returns."""
        fired: list[tuple[_Automation, triggers.Firing]] = []
        for record in events:
            if record.type.startswith("automation."):
                self._stale = True  # created, edited, paused or deleted: read them again
            for event in await self._derivation.events_of(record):
                for automation in await self._enabled(event.occurred):
                    if _own(automation, event):
                        continue
                    # Never before the event: a run's states are kept strictly ordered, so one may
                    # carry a timestamp a microsecond past the clock, and would count as late.
                    automation.buckets, firings = triggers.observe(
                        automation.definition.trigger, automation.buckets, event, max(self._clock(), event.occurred),
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
        if self._automations is None or self._stale:
            self._stale = False
            async with self._store.reading() as tx:
                views = await automation_reads.every_automation(tx)
            loaded: dict[UUID, _Automation] = {}
            for view in views:
                definition = _load(view)
                if definition is None:
                    continue
                # An automation read again keeps its open windows while its trigger is the same
                # (another automation changed, or this one was renamed or paused).
                previous = (self._automations or {}).get(view.id)
                kept = previous.buckets if previous and previous.definition.trigger == definition.trigger else {}
                loaded[view.id] = _Automation(view.id, view.name, definition, view.muted_until, kept)
            self._automations = loaded
        return [
            a for a in self._automations.values()
            if a.definition.enabled and (a.muted_until is None or a.muted_until <= at)
        ]

    async def _fire(self, automation: _Automation, firing: triggers.Firing) -> None:
        created = await self._actor.fire(automation.id, automation.name, automation.definition, firing)
        self._unannounced += created
        self._this_round += created


def _own(automation: _Automation, event: PrefectEvent) -> bool:
    """The event is one of the automation's own (its triggered and action events): never
    matched against it, or an automation expecting any event would fire on its own firing."""
    return event.resource.get("prefect.resource.id") == f"prefect.automation.{automation.id}"


__all__ = ["NAME", "Matcher"]
