"""The storage protocol every backend implements, and the records it handles.

The store sees records, not domain objects: ``data`` is opaque bytes that schema/events.py
encodes and decodes. Stream versions count from 1; ``NO_STREAM`` (0) as expected_version
means "the stream must not exist yet", and None means "any version".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

import msgspec

from .tables import RowChanges, Table

NO_STREAM = 0
"""expected_version meaning the stream must have no events yet."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append. ``id`` is the writer's idempotency key."""

    type: str
    data: bytes
    id: UUID


class StreamAppend(msgspec.Struct, frozen=True):
    """One stream's part of a multi-stream append (EventStore.append_streams)."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None = None


class RecordedEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An event as stored: its global position and its version within its stream.

    Positions follow commit order and are never reused; they are gap-free as appended, but
    retention may later delete some events (eventstore/pruning.py), so a reader must never
    take "N events" for "up to position N".

    array_like lets a backend turn a page of row tuples into records in one msgspec call.
    """

    position: int
    stream_id: str
    version: int
    id: UUID
    type: str
    data: bytes
    recorded_at: datetime


class Tx(Protocol):
    """A transaction handed to projections, or a read handle for queries.

    SQL uses ``?`` placeholders on both backends (the PostgreSQL handle numbers them); keep
    projection SQL to what both dialects share, and never put a literal ``?`` in it.
    """

    dialect: Literal["sqlite", "postgres"]

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]: ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None: ...


class InlineProjection(Protocol):
    """A read model kept up to date inside the append's transaction (read-your-writes).

    It owns its declared ``tables`` (eventstore/tables.py) and writes no SQL: ``changes`` gets
    every event the transaction inserts, in position order, may read its tables through
    ``tx``, and returns the rows that change; the store persists them in the same transaction.
    If it raises, the append fails and nothing of it is stored, so an event never exists
    without its view update or the reverse.
    """

    name: str
    tables: tuple[Table, ...]
    """The tables it writes and nothing else does: what a rebuild from the log must reproduce."""

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges: ...

    # Optional: ``per_event = True`` for a projection whose changes for one event depend on rows
    # that earlier events of the same batch change (and that keeps no batch-local state): the
    # store then hands it one event at a time and persists each event's changes before the next.
    #
    # Optional: ``event_types``, a set of the only event types it folds: the store (and a
    # rebuild) then hands it only those, and a batch with none of them not at all.
    #
    # Optional: ``prepare(rows) -> RowChanges | None``, the changes ``changes`` would return for
    # a planned batch, computed without reading the database. A backend may send them with the
    # append in one statement, made only if the batch's plan holds; None means the projection
    # must read, and the batch then goes through ``changes`` in a transaction. With it, optional
    # ``prepared_stored()``: the store sent the last prepared changes and they were written.
    #
    # Optional: ``forget(failed=...)``, for a projection that remembers rows it wrote to skip
    # reading them again: the store calls it with failed=True when a batch fails (what
    # ``changes`` saw may be rolled back: forget it all), with failed=False when it finds that
    # another process appended (what no stream version checks may be out of date).


class Leadership(Protocol):
    """One process's claim to run a singleton background service (lease expiry, a scheduler).

    ``campaign`` is called before every round of the service: it answers whether this process
    leads now, taking the lead if nobody holds it and confirming it if this process already did.
    A process that dies loses the lead with its database session, so another takes over at its
    next campaign. ``resign`` gives the lead up (idempotent).
    """

    name: str

    async def campaign(self) -> bool: ...

    async def resign(self) -> None: ...


class EventStore(Protocol):
    """What projections, the notifier and the API may rely on; never a backend module."""

    url: str

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int | None = None
    ) -> list[RecordedEvent]: ...

    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[list[RecordedEvent]]:
        """Append to several streams in one transaction: all of them or none (see BatchingStore)."""
        ...

    def read_stream(self, stream_id: str, *, after_version: int = 0) -> AsyncIterator[RecordedEvent]: ...

    def read_all(self, *, after: int = 0, limit: int | None = None) -> AsyncIterator[RecordedEvent]:
        """Events with position > after, in position order; ``limit`` counts events, it is not a position."""
        ...

    async def read_next(self, after: int, limit: int) -> list[RecordedEvent]:
        """A follower's page: up to ``limit`` events past ``after``; it may end short of the
        head at what this process appended last (see BatchingStore.read_next)."""
        ...

    def subscribe(self, *, after: int = 0) -> AsyncIterator[RecordedEvent]: ...

    async def grown(self, after: int) -> None:
        """Returns once the log holds an event past ``after`` (subscribe's wake-up, no events read)."""
        ...

    async def head(self) -> int: ...

    async def head_with(self, after: int, type_prefix: str) -> tuple[int, int | None]:
        """The head, and the position of the first event past ``after`` whose type starts with
        ``type_prefix`` (None: there is none). Past writer.HEAD_WITH_LOOKS_AT_MOST events after
        ``after`` it does not look, and answers ``after + 1``, the first that may be one. One
        read, for a follower that skips what it does not need."""
        ...

    async def write_tables(self, changes: RowChanges) -> None:
        """Persist an asynchronous projection's rows in one transaction of their own."""
        ...

    async def write_transaction(self, fn: Callable[[Tx], Awaitable[Any]], *, lock_appends: bool = False) -> Any:
        """Run ``fn(tx)`` in a write transaction of its own (see BatchingStore.write_transaction)."""
        ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def read_event(self, event_id: UUID) -> RecordedEvent | None: ...

    def reading(self) -> AbstractAsyncContextManager[Tx]: ...

    def leadership(self, name: str) -> Leadership: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> EventStore: ...

    async def __aexit__(self, *exc_info: object) -> None: ...
