"""Commands on one entity's own stream (a flow run, a task run, a flow, an artifact), written once.

An ``EntityStream`` names how a kind of entity is kept: its stream, the read of its current view
and the fold of its events. Every such command then has the same shape: create on a stream that
must not exist, or decide against the entity as it is now (its version expected on append), where
"no such entity" answers False and writes nothing. The commands modules only say which events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.cache import ViewCache
from runlog.projections.runs_writer import cache_key
from runlog.schema import events as catalogue

from .clock import Clock, system_clock
from .executor import Decided, Executor, Outcome, Versioned, load_versioned, no_view, versioned

V = TypeVar("V")
R = TypeVar("R")

Events = Callable[[V, datetime], Sequence[catalogue.Event]]
"""What a command appends to an entity that exists, given its view and "now" (none: no change)."""


@dataclass(frozen=True)
class EntityStream(Generic[V]):
    stream_of: Callable[[UUID], str]
    read: Callable[[EventStore, UUID], Awaitable[V | None]]
    """The entity's committed view from its projection, None when there is none."""
    evolve: Callable[..., V | None]
    """The projection's fold: ``(view, event, version)``, or ``(view, event)`` when ``versioned``."""
    cached_as: str | None = None
    """The view cache's table name for views that carry their version (runs); None: not cached."""
    versioned: bool = False
    """The view does not carry its stream's version: it is read with it (executor.Versioned)."""

    def _cache_key(self, entity_id: UUID) -> str | None:
        return cache_key(self.cached_as, entity_id) if self.cached_as else None

    async def execute(
        self, store: EventStore, entity_id: UUID, decide: Callable[[Any, datetime], Any], *,
        cache: ViewCache | None = None, clock: Clock = system_clock,
    ) -> Outcome[Any, Any]:
        """Decide against the entity's current view (a Versioned one when ``versioned``)."""
        stream = self.stream_of(entity_id)

        async def load() -> Any:
            if self.versioned:
                return await load_versioned(store, stream, lambda: self.read(store, entity_id))
            return await self.read(store, entity_id)

        return await Executor(store, clock=clock, cache=cache).execute(
            stream, load=load, decide=decide, evolve=versioned(self.evolve) if self.versioned else self.evolve,
            cache_key=self._cache_key(entity_id),
        )

    async def create(
        self, store: EventStore, entity_id: UUID, decide: Callable[[None, datetime], Decided[Any]], *,
        clock: Clock = system_clock,
    ) -> V:
        """Append a new entity's first events and return its view.

        The stream must not exist (nothing is loaded, not even from a cache): a ConcurrencyError
        is the caller's answer (another creation won, or a deleted entity's stream holds the id),
        not a race to decide again.
        """
        evolve = self.evolve if not self.versioned else (lambda view, event, _version: self.evolve(view, event))
        outcome = await Executor(store, clock=clock).execute(
            self.stream_of(entity_id), load=no_view, decide=decide, evolve=evolve, retry_conflicts=False,
        )
        assert outcome.view is not None
        return outcome.view

    async def if_exists(
        self, store: EventStore, entity_id: UUID, events: Events[V], *,
        cache: ViewCache | None = None, clock: Clock = system_clock,
    ) -> bool:
        """Append ``events(view, now)`` against the entity's current version; False (and nothing
        written) when it does not exist."""

        def decide(view: Any, now: datetime) -> Decided[bool]:
            current = view.view if isinstance(view, Versioned) else view
            if current is None:
                return Decided((), False)
            return Decided(events(current, now), True)

        return (await self.execute(store, entity_id, decide, cache=cache, clock=clock)).result

    async def delete(
        self, store: EventStore, entity_id: UUID, deleted: catalogue.Event, *,
        cache: ViewCache | None = None, clock: Clock = system_clock,
    ) -> bool:
        """Append ``deleted`` if the entity exists; whether it did. Its cached view goes too."""
        found = await self.if_exists(store, entity_id, lambda _view, _now: [deleted], cache=cache, clock=clock)
        key = self._cache_key(entity_id)
        if cache is not None and key is not None:
            cache.drop(key)
        return found


__all__ = ["EntityStream", "Events"]
