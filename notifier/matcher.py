"""The matcher: the notifier's consumer of the log, from "a state changed" to "a delivery is due".

It follows the log from its own checkpoint through the catch-up the asynchronous projections
use (projections/catchup.py), shows each record as
Prefect's events (projections/prefect_events.Derivation: the same events the feed serves),
evaluates every enabled, unmuted automation's trigger against them (notifier/triggers.py), and
carries out each firing's actions (acting.py): notifications and webhook calls become
deliveries (commands/deliveries.schedule), with the subject and body rendered then
(notifier/templates.py), so a message shows the state that fired and not the run's state when
it is sent; the dispatcher (dispatcher.py) sends them. The flow-run actions change the run's
state at once (run_actions.py). Each firing and action is recorded as Prefect's automation
events, which the event feed shows. A run entering Completed resolves the alerts its earlier
states raised, for the rules that ask (resolving.py), in the log's order: the firings of the
events before it are acted on first.

A page's firings are recorded in a task of their own while the matcher goes on matching what
the log gains meanwhile (``_match_while_acting``): in a burst of failures it wakes at the first,
and the others, appended while that one's firing is recorded, are matched at once and their
firings share its group commits instead of waiting for them. A round ends once every firing it
started is recorded.

Nothing is lost or sent twice across a crash or a restart: the checkpoint moves only after a
page's actions are recorded (the catch-up awaits ``settle`` before it writes it; a firing
that failed makes the next round restore from the checkpoint and match from there again), and
by compare-and-set (a process that finds another moved it stops and rebuilds its windows from
there); and a delivery's id is derived from (triggering event,
automation, action), so a page matched again after a crash collapses onto the deliveries it
already made; the other actions are claimed before they are carried out
(commands/automation_runs.py), so none runs twice.

The trigger windows (a threshold above one, a proactive ``within``) live in memory, and are
rebuilt from the log when a matcher starts or takes over from another leader (``_restore``):
the records of twice the longest ``within`` before the checkpoint are observed again, firing
nothing (what fired before the checkpoint was acted on). A window that then ends fires at the
next round; if the previous matcher had fired it already, the firing's ids (its event, or the
automation and the window's end) are the same and it records nothing twice. A singleton on
the service runner: with several processes on one PostgreSQL, the leader matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import msgspec
import structlog

from runlog.commands.clock import Clock, system_clock
from runlog.commands.runner import Service
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.projections import automations as automation_reads
from runlog.projections.catchup import CatchUp, CheckpointMoved
from runlog.projections.checkpoints import PAGE
from runlog.projections.prefect_events import Derivation, PrefectEvent
from runlog.schema import streams
from runlog.schema.automations import AutomationDefinition

from . import templates, triggers
from .acting import Actor
from .resolving import COMPLETED, Resolver, asks_to_resolve, completes_a_run

log = structlog.get_logger("runlog.notifier")

NAME = "notifier-matcher"
"""The matcher's checkpoint and its service (leader election) name."""
AUTOMATION_EVENTS = "automation."
"""The prefix of the types of the events that create, edit, pause or delete an automation."""
INTERVAL_SECONDS = 1.0
"""How often proactive windows are looked at without a new event."""
SLACK_SECONDS = 1.0
"""Added to the longest ``within`` when looking back for the records to observe again: a
record's time is its commit's, which may trail the event's own by a little."""
SAVE_EVERY_SECONDS = 1.0
"""The checkpoint is written at most this often (by the clock's time)."""


@dataclass
class _Automation:
    id: UUID
    name: str
    definition: AutomationDefinition
    muted_until: datetime | None
    buckets: dict[triggers.BucketKey, triggers.Bucket]



class _Interest:
    """The flow-run state events some enabled automation could use: those whose name one of its
    triggers expects or starts a window with (an event no trigger matches leaves every trigger
    as it was, triggers.observe), and a run's completion when a rule resolves its alerts. Mutes
    are left out: a muted automation only makes the set larger than needed, never smaller."""

    def __init__(self, patterns: list[str], completions: bool) -> None:
        self._patterns = patterns
        self._completions = completions
        self._names: dict[str, bool] = {}  # event name -> some pattern matches it

    @classmethod
    def of(cls, automations: Iterable[_Automation]) -> _Interest | None:
        """None when some enabled trigger expects every event (an empty ``expect``)."""
        patterns: list[str] = []
        completions = False
        for automation in automations:
            definition = automation.definition
            if not definition.enabled:
                continue
            if not definition.trigger.expect:
                return None
            patterns += [*definition.trigger.expect, *definition.trigger.after]
            completions = completions or asks_to_resolve(definition)
        return cls(patterns, completions)

    def __call__(self, name: str, state_type: str) -> bool:
        if self._completions and state_type == COMPLETED:
            return True
        known = self._names.get(name)
        if known is None:
            known = self._names[name] = any(triggers.label_matches(p, name) for p in self._patterns)
        return known


def _load(view: automation_reads.AutomationView) -> AutomationDefinition | None:
    try:
        return msgspec.convert(
            {"name": view.name, "enabled": view.enabled, "tags": view.tags, "trigger": view.trigger,
             "actions": view.actions, "actions_on_trigger": view.actions_on_trigger},
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
        self._resolver = Resolver(store, renderer=renderer, clock=clock)
        self._automations: dict[UUID, _Automation] | None = None
        # The head read just before the automations were last read: every automation record up
        # to it is in them (see _idle_from).
        self._loaded_upto = 0
        # The checkpoint is written at most once a SAVE_EVERY_SECONDS (by the clock's time): see
        # _catch_up. ``reached`` is what this process matched, ``saved`` what it last wrote.
        self._following = CatchUp(store, self, page=PAGE, save_every=SAVE_EVERY_SECONDS,
                                  clock=lambda: self._clock().timestamp())
        self._stale = False  # an automation changed since they were read
        self._idle = False  # the last round found no automation to evaluate
        self._unannounced = 0  # deliveries scheduled since the dispatcher was last woken
        self._this_round = 0
        self._restored = False  # the windows were rebuilt from the log up to the checkpoint
        self._checkpoint_read_at: float | None = None  # when a round last read the stored checkpoint
        # The pages' firings being recorded (see _match_while_acting), and the first failure of
        # one since the last settle.
        self._acting: set[asyncio.Task[None]] = set()
        self._started = 0  # how many pages' firings were handed to _acting, ever
        self._failed: BaseException | None = None
        # The automations' interest in flow-run events (_interest), with the dict it was made of.
        self._interested: tuple[dict[UUID, _Automation], _Interest | None] | None = None

    def service(self) -> Service:
        async def wake() -> None:
            if self._idle:
                # No automation to evaluate: nothing in the log is matched as it comes, so the
                # rounds come once an INTERVAL_SECONDS, not once per group commit of the server
                # (each a read). The round that finds an automation event among what it skips
                # matches from that event on (``step``), as if it had been woken by it.
                await asyncio.Future()  # the interval ends the wait
            # Returns at the first event past what the last round matched: no gathering delay,
            # an alert's latency is the point.
            await self._following.more()

        return Service(NAME, self.step, INTERVAL_SECONDS, wake=wake)

    async def step(self, now: datetime) -> int:
        """One round: match what the log holds past the checkpoint, then let time run out on
        proactive windows. How many deliveries it scheduled."""
        self._this_round = 0
        head = None
        if self._idle:
            # Idle rounds read no records: look for new automations, but read them again only
            # when an automation event is among the records skipped (the head comes in the same
            # statement). A round re-read them all, in a transaction of its own, then read the
            # head: three round trips more per round. Muted ones unmute by time: _enabled
            # filters the ones read by ``now``.
            head, first = await self._store.head_with(self._following.reached, AUTOMATION_EVENTS)
            if first is not None:
                self._stale = True
                # The records before it had no automation to match them (as when a round ran
                # per commit): matching, if one is enabled now, starts at that event.
                self._following.reached = max(self._following.reached, first - 1)
        if not await self._enabled(now):
            await self._skip(now, head)
            return 0
        try:
            if self._idle:
                # Back from idle: match from here on, not the events no automation was there for.
                await self._following.save(self._following.reached)
                self._idle = False
                self._forget()  # the skipped records were not looked at: a block or flow may have changed
            if self._look_at_checkpoint():
                stored = await self._following.stored()
                if not self._restored or stored != self._following.saved:
                    # Starting, or another leader moved the checkpoint since this one last wrote
                    # it: its windows are stale. (Not ``stored != reached``: this process writes
                    # the checkpoint at most once a SAVE_EVERY_SECONDS, so it trails what it
                    # matched.)
                    await self._restore(stored, now)
            started = self._started
            await self._catch_up()
            await self._match_while_acting(started)
        except CheckpointMoved:
            # Another leader moved it under this round: its windows are rebuilt next round.
            self._restored = False
            await self._settle(quietly=True)
            self._announce()
            return self._this_round
        finally:
            await self._abandon()
        for automation in (await self._enabled(now)):
            automation.buckets, firings = triggers.tick(automation.definition.trigger, automation.buckets, now)
            for firing in firings:
                await self._fire(automation, firing)
        self._announce()
        return self._this_round

    def _look_at_checkpoint(self) -> bool:
        """Whether this round reads the stored checkpoint: when starting, and at most once a
        SAVE_EVERY_SECONDS (by the clock's time) while leading. The matcher runs a round per
        group commit of the server, and the read was a round trip each time. A process
        leading again after another led campaigns a second or more after its last round, so it
        reads it; and where it did not, the catch-up's compare-and-set finds the checkpoint
        moved before this process writes it (``CheckpointMoved``: the next round restores),
        having matched some of the log again, which schedules nothing twice."""
        at = self._clock().timestamp()
        if self._restored and self._checkpoint_read_at is not None and at - self._checkpoint_read_at < SAVE_EVERY_SECONDS:
            return False
        self._checkpoint_read_at = at
        return True

    async def _restore(self, upto: int, now: datetime) -> None:
        """Rebuild the open windows from the log: observe again the derived events of the
        records up to the checkpoint ``upto`` recorded within twice the longest ``within``
        before it, firing nothing. A window open at the checkpoint began at most ``within``
        before it, and what decided where it began (a reactive window that fired ignores the
        rest of itself and opens the next at its end) at most ``within`` before that; older
        records are not read, so older windows are not resurrected. (A trigger that fired
        window after window for longer than that may see its next window open a little
        earlier or later than it would have.)

        Observed at each event's own time, as Prefect evaluates, and only the events after the
        automation's last change (the live matcher starts a changed trigger's windows empty;
        a pause or a rename after the window opened restarts it here, the one difference).
        """
        await self._settle(quietly=True)  # what was being recorded is matched again if it failed
        self._restored = True
        # Matching goes on from the checkpoint, also when this process had matched further
        # before another leader took over (matching again schedules nothing twice).
        await self._following.resume(upto)
        self._derivation = Derivation(self._store)  # it reads forward from here, from an older position
        self._forget()  # another leader matched what this one did not see: a block or flow may have changed
        enabled = await self._enabled(now)
        for automation in self._automations.values() if self._automations else ():
            automation.buckets = {}
        windowed = [a for a in enabled if a.definition.trigger.within > 0]
        if upto == 0 or not windowed:
            return
        longest = 2 * max(a.definition.trigger.within for a in windowed) + SLACK_SECONDS
        first = await _first_recorded_since(self._store, upto, longest)
        since = {a.id: await _last_change(self._store, a.id) for a in windowed}
        observed = 0
        after = first - 1
        while after < upto:
            # Positions may have gaps (retention): a page of that many records can pass ``upto``.
            page = [r async for r in self._store.read_all(after=after, limit=min(500, upto - after))
                    if r.position <= upto]
            if not page:
                break
            for record in page:
                for event in await self._derivation.events_of(record):
                    for automation in windowed:
                        if record.position <= since[automation.id] or _own(automation, event):
                            continue
                        trigger = automation.definition.trigger
                        # As the live matcher would have: time passes up to the event, then it counts.
                        automation.buckets, _ = triggers.tick(trigger, automation.buckets, event.occurred)
                        automation.buckets, _ = triggers.observe(trigger, automation.buckets, event, event.occurred)
                        observed += 1
            after = page[-1].position
        log.info("matcher_windows_restored", first=first, upto=upto, observed=observed,
                 windows=sum(len(a.buckets) for a in windowed))

    def _forget(self) -> None:
        """Drop what the actor remembers of blocks and flows: records went by unread."""
        self._actor.forget_blocks()
        self._actor.forget_flows()

    async def _skip(self, now: datetime, head: int | None = None) -> None:
        """No automation is enabled and unmuted: nothing in the log can fire, so the round reads
        none of it and only moves the checkpoint to the head (saved at most once a second: a
        crash then re-skips a second of it). A server with no rules pays a query, not a second
        reading of every event."""
        self._idle = True
        if self._following.saved is None:
            await self._following.resume()
        if head is None:
            head = await self._idle_from(now)
            if head is None:
                self._idle = False
                return
        head = max(head, self._following.reached)
        self._following.reached = head
        try:
            await self._following.run(upto=head)  # reads nothing: saves the checkpoint when due
        except CheckpointMoved:
            self._restored = False

    async def _idle_from(self, now: datetime) -> int | None:
        """Where a round that found no automation enabled skips to: the head, once no
        automation record lies past what the automations were read at and the log matched to.
        (The head read alone could pass the record of an automation created after they were
        read, and idle rounds look for automation records only past where they skipped to: the
        automation would never be read.) None when reading them again found one enabled: the
        next round matches from its record on."""
        while True:
            known = max(self._loaded_upto, self._following.reached)
            head, first = await self._store.head_with(known, AUTOMATION_EVENTS)
            if first is None:
                return head
            self._stale = True
            if await self._enabled(now):
                self._following.reached = max(self._following.reached, first - 1)
                return None

    async def _catch_up(self) -> int:
        """Match the log from where it was matched to its end (projections/catchup.py); the
        position reached.

        The matcher follows every append of the server (a round per group commit, most of them
        other clients' run states), so writing its checkpoint after each page made a write
        transaction per round, contending with the clients' appends (on SQLite, for its one
        writer). It is written at most once a SAVE_EVERY_SECONDS instead (the catch-up's
        ``save_every``), and the position matched since is kept in memory: a crash then matches
        up to a second of the log again, which schedules nothing twice (a delivery's id is
        derived from its event, rule and action; the other actions are claimed). The table is
        read at most once a second too (``_look_at_checkpoint``): a process leading again after
        another led goes on from where that one got to.
        """
        return await self._following.run()

    async def changes(self, events: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges:
        """A page of the log matched (the catch-up moves the checkpoint after it): the matcher
        keeps no table of its own, its output is deliveries, recorded by the time this returns."""
        fired: list[tuple[_Automation, triggers.Firing]] = []
        for record in events:
            if record.type.startswith(AUTOMATION_EVENTS):
                self._stale = True  # created, edited, paused or deleted: read them again
            elif record.stream_id == streams.BLOCKS:
                self._actor.forget_blocks()  # a channel edited, renamed or deleted: read it again
            elif record.stream_id.startswith(streams.FLOW) and not record.stream_id.startswith(streams.FLOW_RUN):
                self._actor.forget_flows()  # a flow created, edited or deleted: the messages show it as it is
            for event in await self._derivation.events_of(record, wanted=await self._interest()):
                for automation in await self._enabled(event.occurred):
                    if _own(automation, event):
                        continue
                    # Never before the event: a run's states are kept strictly ordered, so one may
                    # carry a timestamp a microsecond past the clock, and would count as late.
                    automation.buckets, firings = triggers.observe(
                        automation.definition.trigger, automation.buckets, event, max(self._clock(), event.occurred),
                    )
                    fired += ((automation, firing) for firing in firings)
                if completes_a_run(event) is not None:
                    await self._resolve(event, fired)
        self._start_acting(fired)
        return RowChanges()

    def _start_acting(self, fired: list[tuple[_Automation, triggers.Firing]]) -> None:
        """Record a page's firings in a task of their own, so that the next page (a burst's
        later events) is matched meanwhile and its firings join the same group commits."""
        if not fired:
            return

        async def act() -> None:
            await self._act(fired)
            self._announce()  # per page: its alerts need not wait for the whole backlog

        self._started += 1
        task = asyncio.create_task(act(), name="runlog-matcher-act")
        self._acting.add(task)
        task.add_done_callback(self._acted)

    def _acted(self, task: asyncio.Task[None]) -> None:
        self._acting.discard(task)
        if task.cancelled():
            self._restored = False  # its firings are matched again from the checkpoint
            return
        failure = task.exception()
        if failure is not None:
            # Not lost: the checkpoint does not pass a page whose firings failed (``settle``
            # raises before it is written), and the next round restores from the checkpoint
            # and matches from there again (deliveries and claims have derived ids).
            self._restored = False
            self._failed = self._failed or failure

    async def settle(self) -> None:
        """Until the firings of every page handed back are recorded; raises the first failure
        (the catch-up awaits this before it writes the checkpoint)."""
        await self._settle()

    async def _settle(self, *, quietly: bool = False) -> None:
        while self._acting:
            await asyncio.wait(set(self._acting))
        failed, self._failed = self._failed, None
        if failed is not None and not quietly:
            raise failed

    async def _match_while_acting(self, started: int) -> None:
        """While the round's firings are being recorded, match what the log gains meanwhile:
        in a burst the matcher wakes at its first event, and the others, appended while that
        one's firing is recorded, are matched then rather than after it (their firings then
        share its group commits). The round ends once every firing is recorded, or a round's
        interval later under a steady stream, so that proactive windows are still looked at."""
        loop = asyncio.get_running_loop()
        until = loop.time() + INTERVAL_SECONDS
        while loop.time() < until:
            if not self._acting:
                # What the firings appended (a run action's new state) is matched in this round
                # too, as when they were recorded page by page. STARTED: the firings begun
                # before the log was last read to its end.
                if started == self._started or await self._store.head() <= self._following.reached:
                    break
                started = self._started
                await self._catch_up()
                continue
            acting = asyncio.ensure_future(asyncio.wait(set(self._acting)))
            more = asyncio.ensure_future(self._following.more())
            try:
                await asyncio.wait({acting, more}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in (acting, more):
                    waiting.cancel()
                await asyncio.gather(acting, more, return_exceptions=True)
            if more.done() and not more.cancelled():
                more.result()  # the database away: the round fails, and says why
                started = self._started
                await self._catch_up()
        await self._settle()

    async def _abandon(self) -> None:
        """A round that ends early (an error, a stop) cancels the recording it started: those
        firings are matched again from the checkpoint by the next round or process."""
        if not self._acting:
            return
        for task in self._acting:
            task.cancel()
        await asyncio.gather(*self._acting, return_exceptions=True)
        self._restored = False

    async def _resolve(self, event: PrefectEvent, fired: list[tuple[_Automation, triggers.Firing]]) -> None:
        """Resolve what the completed run alerted about, for the rules that ask; FIRED (what
        the events before it fired) is acted on first, so the completion finds every alert its
        run raised until then and none raised after. With no rule asking, nothing is flushed:
        a burst's firings still make one group commit."""
        asking = [a for a in await self._enabled(event.occurred) if asks_to_resolve(a.definition)]
        if not asking:
            return
        self._start_acting(list(fired))
        fired.clear()
        await self._settle()
        resolves = await self._resolver.completed(event, ((a.id, a.name, a.definition) for a in asking))
        self._unannounced += resolves
        self._this_round += resolves

    async def _act(self, fired: list[tuple[_Automation, triggers.Firing]]) -> None:
        # Triggers are evaluated in the log's order; what they fired is acted on at once, so that
        # twenty runs failing together make one group commit of deliveries, not twenty in a row.
        await asyncio.gather(*(self._fire(automation, firing) for automation, firing in fired))

    def _announce(self) -> None:
        if self._unannounced:
            self._unannounced = 0
            self._on_scheduled()

    async def _interest(self) -> _Interest | None:
        """Which flow-run state events the automations as loaded now could use (None: any), so
        that the derivation builds no event that every trigger would pass over. Asked for each
        record: an automation created earlier in the same page counts from its next record on."""
        await self._enabled(self._clock())  # loads them again if one changed
        automations = self._automations or {}
        if self._interested is None or self._interested[0] is not automations:
            self._interested = (automations, _Interest.of(automations.values()))
        return self._interested[1]

    async def _enabled(self, at: datetime) -> list[_Automation]:
        if self._automations is None or self._stale:
            self._stale = False
            self._loaded_upto = await self._store.head()
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


async def _record_at(store: EventStore, position: int) -> RecordedEvent:
    """The record at ``position``, or, where retention pruned it, the first one after it: the
    search below needs only that recording times grow with positions."""
    async for record in store.read_all(after=position - 1, limit=1):
        return record
    raise LookupError(position)  # retention never prunes the head, so a position up to it has one


async def _first_recorded_since(store: EventStore, upto: int, seconds: float) -> int:
    """The first position whose record was recorded at most ``seconds`` before the record at
    ``upto``: a binary search over the gap-free positions (recording times follow positions,
    give or take concurrent commits, which the slack covers), so a restart reads a few records
    to find where to start, not the log."""
    since = (await _record_at(store, upto)).recorded_at - timedelta(seconds=seconds)
    low, high = 1, upto
    while low < high:
        middle = (low + high) // 2
        if (await _record_at(store, middle)).recorded_at < since:
            low = middle + 1
        else:
            high = middle
    return low


async def _last_change(store: EventStore, automation_id: UUID) -> int:
    """The position of the automation's last record (its creation or latest edit)."""
    last = 0
    async for record in store.read_stream(streams.automation(automation_id)):
        last = record.position
    return last


def _own(automation: _Automation, event: PrefectEvent) -> bool:
    """The event is one of the automation's own (its triggered and action events): never
    matched against it, or an automation expecting any event would fire on its own firing."""
    return event.resource.get("prefect.resource.id") == f"prefect.automation.{automation.id}"


__all__ = ["NAME", "Matcher"]
