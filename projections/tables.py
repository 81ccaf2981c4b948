"""Shared helpers for projections that keep one row per entity: time columns, id lists, view reads.

Projection tables store ids as text and times as integer microseconds since the Unix epoch
on both backends, so one SQL text serves both; only "is this id in a list" differs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from runlog.eventstore import EventStore, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema.ids import id_text

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def us(moment: datetime | None) -> int | None:
    """A datetime as integer microseconds since the epoch (None stays None)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(microseconds=value)


def text(value: object) -> str | None:
    """An id (or any value) as its text column holds it; None stays None (SQL NULL)."""
    return None if value is None else id_text(value)


def in_list(tx: Tx, column: str) -> str:
    """A condition 'column is one of the ids in the next parameter' for tx's dialect.

    ``column`` is always one of our own column names, never user input.
    """
    if tx.dialect == "postgres":
        return f"{column} = ANY(?::text[])"
    return f"{column} IN (SELECT value FROM json_each(?))"


def list_param(tx: Tx, values: Sequence[str]) -> Any:
    """The parameter that goes with ``in_list``."""
    return list(values) if tx.dialect == "postgres" else json.dumps(list(values))


def changes_needed(types: frozenset[str], rows: Sequence[Row]) -> RowChanges | None:
    """A per-event projection's ``prepare``: nothing to write (empty changes) for a batch
    without any of ``types``; with them, None, so that ``changes`` reads its tables."""
    return None if any(r.event.type in types for r in rows) else RowChanges()


def sync_tags(changes: RowChanges, table: Table, key: str, old: set[str], new: set[str]) -> None:
    """The rows of a (key, tag) table that change when a record's tags go from ``old`` to ``new``."""
    for tag in old - new:
        changes.delete(table, (key, tag))
    for tag in new - old:
        changes.upsert(table, (key, tag))


async def view_in(tx: Tx, sql: str, key: Any, decode: Callable[[bytes], T]) -> T | None:
    """The view a one-row read of ``key`` finds (``sql`` selects the encoded view first), or None."""
    rows = await tx.fetch(sql, key)
    return decode(bytes(rows[0][0])) if rows else None


async def read_view(store: EventStore, sql: str, key: Any, decode: Callable[[bytes], T]) -> T | None:
    """``view_in`` in a read transaction of its own."""
    async with store.reading() as tx:
        return await view_in(tx, sql, key, decode)
