"""The cyclic garbage collector run less often while a long fold runs (a rebuild), or not at all
(an import); and, in a server, full collections kept short (``FrozenSurvivors``).

Such a fold makes millions of short-lived objects (records, derived events, rows), almost none
in a cycle, and the collector's default (a young collection every 700 allocations, the older
generations rescanned as survivors pile up) takes a sixth of an import's CPU and about a
fifth of the event feed's fold. Memory stays bounded: reference counting frees the objects as
before, and collections still run, a hundred times less often.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Histogram

YOUNG_THRESHOLD = 70_000
"""Allocations between young collections while a fold runs (Python's default is 700)."""

_users = 0
_before: tuple[int, int, int] | None = None


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's young threshold while the block runs; the first of overlapping
    users (a rebuild while an import runs, two tasks of one event loop) raises it and the last
    to leave restores it, whatever the order they leave in."""
    global _users, _before
    if _users == 0:
        _before = gc.get_threshold()
        gc.set_threshold(max(YOUNG_THRESHOLD, _before[0]), _before[1], _before[2])
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0 and _before is not None:
            gc.set_threshold(*_before)
            _before = None


@contextlib.contextmanager
def no_collections() -> Iterator[None]:
    """The cyclic collector off while the block runs, on again after it if it was on before.

    For an import: even a hundred times less often, its young collections rescanned the views,
    rows and events each page keeps alive until its append commits (0.26 CPU s of 8.5 for
    20,000 runs into SQLite, plus the older generations' passes). Nothing it makes per run is in
    a cycle: a collection after the import of 20,000 runs found 62 objects (a class made once,
    its functions and cells), so memory does not grow with the import. Overlapping users leave
    it on when the first of them that found it on leaves: at worst collections resume early.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


FULL_COLLECTIONS = Histogram(
    "runlog_gc_full_collection_seconds",
    "This process's full garbage collections (the oldest generation), each timed: every request "
    "in flight waits while one runs",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

THAW_SECONDS = 600.0
"""How often FrozenSurvivors lets a full collection scan everything again."""


class FrozenSurvivors:
    """Full collections that scan only young objects, in a long-running server.

    A server keeps bounded caches of run views (the decision cache, the event feed's and the
    notifier's derivations, the deliveries' views), some 10,000 entries each, full of tracked
    objects (UUIDs, tag lists). Every full collection scanned all of them: under bench_fanout's
    load on PostgreSQL the full collections grew from about 10 to 116 ms over a minute as the
    caches filled (55 ms with the notifier off), and each one held every request in flight.
    Freezing only what survived the full collections left them at 9-23 ms, several a minute.

    So an object is frozen (``gc.freeze``) once it has survived the middle generation's
    collection: at the end of every collection but the youngest's, in the collector's own call
    back, when the young generations are empty and only survivors are left to freeze. A full
    collection then scans the young generations alone. A frozen object is still freed by
    reference counting when its cache drops it; only a cycle that becomes garbage after its
    objects were frozen waits, until the next thaw: every ``thaw_seconds`` the freeze is undone
    and a full collection scans everything once (one long pause every ten minutes instead of
    several a minute), on the loop, since the collector cannot start a collection inside one.
    Each full collection's pause is counted in FULL_COLLECTIONS (``/metrics``).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, *, thaw_seconds: float = THAW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = loop
        self._thaw_seconds = thaw_seconds
        self._clock = clock
        self._thawed_at = clock()
        self._thawing = False
        self._started = 0.0
        self.freezes = 0
        self.thaws = 0
        self.thawed_garbage = 0  # what the thaws' collections found unreachable, in all

    def install(self) -> None:
        gc.callbacks.append(self._collected)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        """The collector's call back, in whatever thread allocated, holding the GIL."""
        generation = info.get("generation", 0)
        if phase == "start":
            if generation == 2:
                self._started = time.perf_counter()
            return
        if generation == 2:
            FULL_COLLECTIONS.observe(time.perf_counter() - self._started)
        if generation == 0:
            return
        gc.freeze()
        self.freezes += 1
        if self._thawing or self._clock() - self._thawed_at < self._thaw_seconds:
            return
        self._thawing = True
        try:
            self._loop.call_soon_threadsafe(self._thaw)
        except RuntimeError:  # the loop is closed: the process is ending
            self._thawing = False

    def _thaw(self) -> None:
        try:
            self._thawed_at = self._clock()
            gc.unfreeze()
            self.thawed_garbage += gc.collect()  # its call back freezes what survives
            self.thaws += 1
        finally:
            self._thawing = False


@contextlib.contextmanager
def freezing_survivors(loop: asyncio.AbstractEventLoop) -> Iterator[FrozenSurvivors]:
    """For a long-running process after its start-up: what is alive now frozen at once, and
    what survives the collector's older generations after (FrozenSurvivors), until the block
    ends (then all thawed again)."""
    gc.collect()
    gc.freeze()
    policy = FrozenSurvivors(loop)
    policy.install()
    try:
        yield policy
    finally:
        policy.uninstall()
        gc.unfreeze()


__all__ = [
    "FULL_COLLECTIONS", "THAW_SECONDS", "YOUNG_THRESHOLD", "FrozenSurvivors", "fewer_collections", "freezing_survivors", "no_collections",
]
