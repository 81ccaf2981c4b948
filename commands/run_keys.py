"""Run ids derived from a key (an idempotency key, a task key), with a new generation per deletion.

A run created with a key gets the id ``derive(0)``: concurrent creations with one key compute
the same id, append to the same stream with "must not exist", and exactly one wins; the others
read the winner's run. Deleting the run does not free its stream (the log keeps its history),
so the key moves on to the next generation: ``derive(1)``, ``derive(2)``, ... A generation's
stream is only ever started once the one before it exists and holds a deleted run, so the
streams that exist are always generations 0 .. G-1, only the last of them can hold a live run,
and creations racing for generation G still meet on one stream. Finding G takes O(log G)
reads of stream heads, paid only by keys that were deleted before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from runlog.eventstore import ConcurrencyError, EventStore

from .entities import EntityStream

V = TypeVar("V")

MAX_ROUNDS = 20
"""Generations a creation may chase while others create and delete runs with its key."""


async def stream_exists(store: EventStore, stream_id: str) -> bool:
    return await store.stream_version(stream_id) > 0


async def first_unused_generation(store: EventStore, stream_of: Callable[[int], str], used: int) -> int:
    """The first generation whose stream does not exist, knowing that generation ``used`` does.

    Streams exist for a prefix 0 .. G-1 of the generations, so this gallops past ``used`` and
    then bisects: O(log G) reads.
    """
    low, step = used, 1  # low: a generation known to exist
    high = used + step
    while await stream_exists(store, stream_of(high)):
        low, step = high, step * 2
        high = low + step
    while high - low > 1:  # low exists, high does not
        middle = (low + high) // 2
        if await stream_exists(store, stream_of(middle)):
            low = middle
        else:
            high = middle
    return high


async def create_or_find(
    store: EventStore,
    runs: EntityStream[V],
    derive: Callable[[int], UUID],
    append_new: Callable[[UUID], Awaitable[V]],
) -> tuple[V, bool]:
    """The new run and True, or the live run that holds the key and False.

    ``append_new(run_id)`` appends a new run's first events with "stream must not exist" and
    returns its view; ``runs`` names the kind of run's streams and reads a live run's view.
    """
    stream_of = runs.stream_of

    async def load(run_id: UUID) -> V | None:
        return await runs.read(store, run_id)

    generation = 0
    conflict: ConcurrencyError | None = None
    for _round in range(MAX_ROUNDS):
        run_id = derive(generation)
        try:
            return await append_new(run_id), True
        except ConcurrencyError as exc:
            conflict = exc
        existing = await load(run_id)
        if existing is not None:
            return existing, False  # another creation won this generation
        # This generation's run was deleted: the key's live run, if any, is the last one used.
        generation = await first_unused_generation(store, lambda g: stream_of(derive(g)), generation)
        if derive(generation - 1) != run_id:
            latest = await load(derive(generation - 1))
            if latest is not None:
                return latest, False
    assert conflict is not None
    raise conflict  # runs with this key keep being created and deleted under us: 409, retry
