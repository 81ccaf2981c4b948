"""The cyclic garbage collector run less often while a long fold runs (a rebuild), or not at all
(an import).

Such a fold makes millions of short-lived objects (records, derived events, rows), almost none
in a cycle, and the collector's default (a young collection every 700 allocations, the older
generations rescanned as survivors pile up) takes a sixth of an import's CPU and about a
fifth of the event feed's fold. Memory stays bounded: reference counting frees the objects as
before, and collections still run, a hundred times less often.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

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


__all__ = ["YOUNG_THRESHOLD", "fewer_collections", "no_collections"]
