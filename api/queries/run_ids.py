"""Flow runs whose id starts with a few characters, for the CLI's short ids (git-style prefixes).

The flow_runs table keys on the id's canonical text (lowercase hex, hyphens at fixed places), so a
prefix is a range of that key: from the prefix padded with 0s to the prefix padded with fs.
A range read walks the primary key's index on both backends, whatever the database's
collation, where LIKE 'abc%' would not on PostgreSQL; the substr comparison then keeps the
answer exact even under a collation that orders hyphens oddly.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from runlog.eventstore import EventStore

MIN_PREFIX = 4
"""Fewer hex digits than this would match a large share of any real database."""

_HEX = frozenset(string.hexdigits.lower())
_GROUPS = (8, 4, 4, 4, 12)  # a UUID's text: 8-4-4-4-12 hex digits

SQL_FLOW_RUNS = (
    "SELECT id, name, state_name FROM flow_runs WHERE id >= ? AND id <= ? AND substr(id, 1, ?) = ? "
    "ORDER BY id LIMIT ?"
)


class BadPrefix(ValueError):
    """The text cannot be the start of a run id."""


@dataclass(frozen=True)
class IdRange:
    prefix: str  # the canonical text every match starts with, hyphens included
    low: str
    high: str


def _canonical(digits: str) -> str:
    groups, start = [], 0
    for size in _GROUPS:
        if start >= len(digits):
            break
        groups.append(digits[start:start + size])
        start += size
    return "-".join(groups)


def id_range(text: str) -> IdRange:
    """The ids a prefix stands for; hyphens in it are optional, case does not matter."""
    digits = text.strip().lower().replace("-", "")
    if not digits or not set(digits) <= _HEX:
        raise BadPrefix(f"{text!r} is not the start of a run id: ids are hexadecimal, like 7b892ee3")
    if len(digits) < MIN_PREFIX:
        raise BadPrefix(f"{text!r} is too short to pick a run: give at least {MIN_PREFIX} characters of its id")
    if len(digits) > 32:
        raise BadPrefix(f"{text!r} is longer than a run id")
    padding = 32 - len(digits)
    return IdRange(_canonical(digits), _canonical(digits + "0" * padding), _canonical(digits + "f" * padding))


@dataclass(frozen=True)
class RunId:
    id: str
    name: str
    state_name: str | None


async def flow_runs(store: EventStore, prefix: str, limit: int) -> list[RunId]:
    """At most LIMIT flow runs whose id starts with PREFIX, in id order."""
    ids = id_range(prefix)
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_FLOW_RUNS, ids.low, ids.high, len(ids.prefix), ids.prefix, limit)
    return [RunId(str(r[0]), r[1], r[2]) for r in rows]
