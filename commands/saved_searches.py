"""The web UI's saved searches (named sets of run filters): saved and deleted on the one stream
"saved_searches", which every read folds. A UI keeps a handful, written when a person saves a
filter, so the stream stays short and needs no table.

Saving a name that exists replaces its filters (Prefect's upsert); the append expects the
stream's version the decision was made on, so two saves of one new name cannot both create it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.schema import events as catalogue
from runlog.schema import streams

from .clock import Clock, system_clock
from .executor import Decided, Executor


class SavedSearchView(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    filters: list[dict[str, Any]] = msgspec.field(default_factory=list)


class SavedSearches(msgspec.Struct):
    """Every saved search, by id, and the stream's version they reflect."""

    by_id: dict[UUID, SavedSearchView]
    version: int = 0

    def named(self, name: str) -> SavedSearchView | None:
        return next((s for s in self.by_id.values() if s.name == name), None)


def evolve(state: SavedSearches | None, event: Any, version: int) -> SavedSearches:
    state = state or SavedSearches({})
    by_id = dict(state.by_id)
    if isinstance(event, catalogue.SavedSearchSaved):
        before = by_id.get(event.saved_search_id)
        by_id[event.saved_search_id] = SavedSearchView(
            id=event.saved_search_id, created=before.created if before else event.at, updated=event.at,
            name=event.name, filters=event.filters,
        )
    elif isinstance(event, catalogue.SavedSearchDeleted):
        by_id.pop(event.saved_search_id, None)
    return SavedSearches(by_id, version)


async def load(store: EventStore) -> SavedSearches:
    state = SavedSearches({})
    async for recorded in store.read_stream(streams.SAVED_SEARCHES):
        state = evolve(state, catalogue.decode(recorded.data), recorded.version)
    return state


async def save(
    store: EventStore, name: str, filters: list[dict[str, Any]], *, clock: Clock = system_clock,
) -> tuple[SavedSearchView, bool]:
    """The saved search named NAME with FILTERS, and whether it was created (not replaced)."""

    def decide(state: SavedSearches | None, now: datetime) -> Decided[tuple[UUID, bool]]:
        existing = (state or SavedSearches({})).named(name)
        search_id = existing.id if existing is not None else uuid.uuid4()
        event = catalogue.SavedSearchSaved(saved_search_id=search_id, name=name, filters=filters, at=now)
        return Decided([event], (search_id, existing is None))

    outcome = await Executor(store, clock=clock).execute(
        streams.SAVED_SEARCHES, load=lambda: load(store), decide=decide, evolve=evolve,
        version=lambda state: state.version,
    )
    search_id, created = outcome.result
    assert outcome.view is not None
    return outcome.view.by_id[search_id], created


async def delete(store: EventStore, search_id: UUID, *, clock: Clock = system_clock) -> bool:
    """Whether there was a saved search with the id to delete."""

    def decide(state: SavedSearches | None, _now: datetime) -> Decided[bool]:
        if state is None or search_id not in state.by_id:
            return Decided((), False)
        return Decided([catalogue.SavedSearchDeleted(saved_search_id=search_id)], True)

    outcome = await Executor(store, clock=clock).execute(
        streams.SAVED_SEARCHES, load=lambda: load(store), decide=decide, evolve=evolve,
        version=lambda state: state.version,
    )
    return outcome.result
