"""The one command executor: every write to the log goes through ``Executor.execute``.

A command names a stream and gives three functions: ``load`` (the stream's current view, or
None), ``decide`` (pure: view and "now" in, the events to append and a result out) and
``evolve`` (the fold the stream's projection uses). The executor

1. takes the view from the view cache when it holds it, else loads it;
2. decides, with "now" from the injected clock;
3. builds the events' records (type, encoded payload, id) in this one place and appends them
   with the view's version as the expected one;
4. on a concurrency conflict (another writer got there first) drops the cached view, waits a
   short jittered backoff and decides again against what the other writer wrote, up to
   ``max_attempts`` times, then gives up with Busy;
5. folds the stored events into the view (the projection ran the same fold in the append's
   transaction), caches it and returns it with the decision's result.

This replaces Prefect's ``SELECT ... FOR UPDATE``: two commands on one stream are never both
decided from the same prior state. Routes, the CLI, background services and the notifier are
thin callers; none of them builds a record or retries by itself.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from runlog.eventstore import NO_STREAM, ConcurrencyError, EventStore, NewEvent, RecordedEvent, StreamAppend, Tx
from runlog.projections.cache import ViewCache
from runlog.schema import events as catalogue

from .clock import Clock, system_clock
from .errors import Busy

V = TypeVar("V")
R = TypeVar("R")

MAX_ATTEMPTS = 50
"""How often a command is decided again after losing a race before it gives up with Busy."""
BACKOFF_CEILING_SECONDS = 0.05


@dataclass(frozen=True)
class Decided(Generic[R]):
    """A decision: the events to append (none: nothing to write) and what the caller gets.

    ``ids`` fixes the ids of the first events where the decision chose them (a state's id is
    its event's id); the others get new ones.
    """

    events: Sequence[catalogue.Event] = ()
    result: R = None  # type: ignore[assignment]
    ids: Sequence[UUID] = ()


@dataclass(frozen=True)
class Outcome(Generic[V, R]):
    view: V | None
    """The stream's view after the command: folded from the stored events when it wrote."""
    result: R
    recorded: list[RecordedEvent] = field(default_factory=list)

    @property
    def wrote(self) -> bool:
        return bool(self.recorded)


Decide = Callable[[V | None, datetime], "Decided[R] | Awaitable[Decided[R]]"]


@dataclass(frozen=True)
class Command(Generic[V, R]):
    """One stream's command in ``Executor.execute_together``: the arguments of ``execute``.

    ``any_version``: its events are idempotent by their ids (``Decided.ids``) and are appended
    at whatever version the stream has, as ``record`` without an expected version does.
    """

    stream_id: str
    load: Callable[[], Awaitable[V | None]]
    decide: Decide[V, R]
    evolve: Callable[[V | None, Any, int], V | None]
    version: Callable[[V], int] = lambda view: view.version  # type: ignore[attr-defined]
    cache_key: str | None = None
    any_version: bool = False


def backoff_seconds(attempt: int, draw: float) -> float:
    """The wait before deciding again after ``attempt`` lost rounds, for a uniform ``draw``.

    Losers of one round mostly meet again in the next group commit, so the first rounds go
    again at once; later ones wait a jittered moment, growing linearly to a ceiling, which keeps
    writers in several processes from meeting in lockstep. Bounded for any attempt number.
    """
    if attempt < 2:
        return 0.0
    return min(max(draw, 0.0), 1.0) * min(BACKOFF_CEILING_SECONDS, 0.002 * attempt)


class Executor:
    def __init__(
        self,
        store: EventStore,
        *,
        clock: Clock = system_clock,
        cache: ViewCache | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.clock = clock
        self.cache = cache if cache is not None else ViewCache(0)
        self._max_attempts = max_attempts
        self._draw = draw

    async def execute(
        self,
        stream_id: str,
        *,
        load: Callable[[], Awaitable[V | None]],
        decide: Decide[V, R],
        evolve: Callable[[V | None, Any, int], V | None],
        version: Callable[[V], int] = lambda view: view.version,  # type: ignore[attr-defined]
        cache_key: str | None = None,
        retry_conflicts: bool = True,
    ) -> Outcome[V, R]:
        """Run one command on ``stream_id``; see the module's docstring.

        ``retry_conflicts=False`` lets a ConcurrencyError through instead of deciding again: for
        a creation, where a stream that exists already is the answer (another creation won, or
        a deleted run's stream holds the key), not a race to go round.
        """
        for attempt in range(self._max_attempts):
            # A cached view may be stale (another process moved the stream on): the append's
            # expected version catches that, and the next round loads from the database.
            view = (self.cache.get(cache_key) if cache_key is not None else None) or await load()
            decided = decide(view, self.clock())
            # Decided or an awaitable of one (Decide): a class check, not inspect.isawaitable, which
            # ends in collections.abc's Python __instancecheck__ for every plain Decided.
            if not isinstance(decided, Decided):
                decided = await decided
            if not decided.events:
                return Outcome(view, decided.result)
            try:
                recorded = await record(
                    self.store, stream_id, decided.events, ids=decided.ids,
                    expected_version=NO_STREAM if view is None else version(view),
                )
            except ConcurrencyError:
                if cache_key is not None:
                    self.cache.drop(cache_key)
                if not retry_conflicts:
                    raise
                await asyncio.sleep(backoff_seconds(attempt, self._draw()))
                continue
            # The stored events are folded, not the decided ones: decoding normalises what a
            # client sent (a timestamp's zone, say) exactly as the projection saw it.
            for stored in recorded:
                view = evolve(view, catalogue.decode(stored.data), stored.version)
            if cache_key is not None and view is not None:
                self.cache.put(cache_key, view)  # committed: the append has returned
            return Outcome(view, decided.result, recorded)
        raise Busy(
            f"{stream_id} changed under every one of {self._max_attempts} attempts; try again",
            retry_after=1.0,
        )

    async def execute_together(
        self, commands: Sequence[Command[Any, Any]], *, retry_conflicts: bool = True,
    ) -> list[Outcome[Any, Any]]:
        """Run commands on several streams (each at most once) and append what they decide in
        one multi-stream append: every stream's events are stored, or none (one transaction,
        one group commit). A conflict on any stream decides them all again (or, with
        ``retry_conflicts=False``, raises its ConcurrencyError with nothing stored). Their
        outcomes, in ``commands``' order."""
        for attempt in range(self._max_attempts):
            views = await _views_of(self.cache, commands)
            now = self.clock()
            decisions: list[Decided[Any]] = []
            for command, view in zip(commands, views, strict=True):
                decided = command.decide(view, now)
                decisions.append(decided if isinstance(decided, Decided) else await decided)
            appends = [
                StreamAppend(
                    command.stream_id, records_of(decided.events, decided.ids),
                    None if command.any_version else NO_STREAM if view is None else command.version(view),
                )
                for command, view, decided in zip(commands, views, decisions, strict=True)
            ]
            try:
                stored = await self.store.append_streams(appends) if any(a.events for a in appends) else [
                    [] for _ in appends
                ]
            except ConcurrencyError:
                for command in commands:
                    if command.cache_key is not None:
                        self.cache.drop(command.cache_key)
                if not retry_conflicts:
                    raise
                await asyncio.sleep(backoff_seconds(attempt, self._draw()))
                continue
            outcomes: list[Outcome[Any, Any]] = []
            for command, view, decided, recorded in zip(commands, views, decisions, stored, strict=True):
                for event in recorded:
                    view = command.evolve(view, catalogue.decode(event.data), event.version)
                if recorded and command.cache_key is not None and view is not None:
                    self.cache.put(command.cache_key, view)
                outcomes.append(Outcome(view, decided.result, recorded))
            return outcomes
        raise Busy(
            f"{', '.join(c.stream_id for c in commands)} changed under every one of {self._max_attempts} attempts; "
            "try again",
            retry_after=1.0,
        )


async def _cached_or_load(cache: ViewCache, key: str | None, load: Callable[[], Awaitable[Any]]) -> Any:
    return (cache.get(key) if key is not None else None) or await load()


async def _views_of(cache: ViewCache, commands: Sequence[Command[Any, Any]]) -> list[Any]:
    """Each command's view, the loads made together; a creation's (``no_view``) is None without
    a task: a firing's records (seven for a rule with three channels) are all creations, and
    gather made a task for each load."""
    views: list[Any] = [None] * len(commands)
    loading = [(index, command) for index, command in enumerate(commands) if command.load is not no_view or command.cache_key is not None]
    loaded = await asyncio.gather(*(_cached_or_load(cache, c.cache_key, c.load) for _, c in loading))
    for (index, _), view in zip(loading, loaded, strict=True):
        views[index] = view
    return views


T = TypeVar("T")


async def no_view() -> None:
    """The load of a creation: nothing to read (its stream must not exist; see retry_conflicts)."""
    return None


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A view that does not carry its stream's version, with the version it was read at."""

    view: T | None
    version: int


def versioned(evolve: Callable[[T | None, Any], T | None]) -> Callable[[Versioned[T] | None, Any, int], Versioned[T]]:
    """The fold of a Versioned view, for a view fold that takes no version."""

    def fold(state: Versioned[T] | None, event: Any, version: int) -> Versioned[T]:
        return Versioned(evolve(state.view if state is not None else None, event), version)

    return fold


async def load_versioned(store: EventStore, stream_id: str, load: Callable[[], Awaitable[T | None]]) -> Versioned[T]:
    """The stream's version, then its view: a view newer than the version only makes the append
    conflict and the command go round, never decide on state older than the version says."""
    version = await store.stream_version(stream_id)
    return Versioned(await load(), version)


async def decide_on_stream(
    store: EventStore, stream_id: str, decide: Callable[[Tx, datetime], Awaitable[Decided[R]]], *,
    clock: Clock = system_clock,
) -> R:
    """Run a command whose rule spans every record of one stream, kept in the projection's tables
    (a name unique among variables, blocks or automations), and return its result.

    The stream's version is read first and ``decide`` then reads the tables it needs in a read
    transaction: state read after the version is at least as new, so deciding on state newer
    than the version only makes the append conflict and the command go round, never decide on
    state older than the version says. Configuration is written rarely, so one stream for all
    records of a kind costs nothing worth measuring and needs no lock.
    """

    async def decided(version: int, now: datetime) -> Decided[R]:
        async with store.reading() as tx:
            return await decide(tx, now)

    outcome = await Executor(store, clock=clock).execute(
        stream_id, load=lambda: store.stream_version(stream_id), decide=decided,
        evolve=lambda _version, _event, version: version, version=lambda version: version,
    )
    return outcome.result


async def record(
    store: EventStore, stream_id: str, events: Sequence[catalogue.Event], *,
    ids: Sequence[UUID] = (), expected_version: int | None = None,
) -> list[RecordedEvent]:
    """Append catalogue events: the one place an event becomes a log record (type, payload, id).

    Commands call it through ``Executor.execute``; it is called directly only for what needs no
    decision: events a client sent with their own ids (idempotent by id, any version).
    """
    return await store.append(stream_id, records_of(events, ids), expected_version=expected_version)


def records_of(events: Sequence[catalogue.Event], ids: Sequence[UUID] = ()) -> list[NewEvent]:
    """The log records of catalogue events (type, payload, id): ``ids`` fixes the first ids."""
    chosen = list(ids)
    return [
        NewEvent(
            type=catalogue.event_type(event),
            data=catalogue.encode(event),
            id=chosen[index] if index < len(chosen) else uuid.uuid4(),
        )
        for index, event in enumerate(events)
    ]


async def append_event(
    store: EventStore, stream_id: str, event: catalogue.Event, *,
    expected_version: int | None = None, event_id: UUID | None = None,
) -> RecordedEvent:
    """One catalogue event appended without a decision (tests, and events with their own ids)."""
    (recorded,) = await record(
        store, stream_id, [event], ids=[event_id] if event_id is not None else (), expected_version=expected_version
    )
    return recorded


__all__ = [
    "MAX_ATTEMPTS", "Command", "Decided", "Executor", "append_event", "Outcome", "Versioned", "backoff_seconds", "decide_on_stream", "load_versioned",
    "no_view",
    "record",
    "versioned",
]
