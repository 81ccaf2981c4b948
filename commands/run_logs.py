"""Storing run logs (POST /logs/): the documented exception to "everything is an event".

Log lines are not state, so they go straight into the append-only ``logs`` table (DESIGN.md),
one batched INSERT per request. Lines copied from another runlog (``runlog events import`` and
``push``) keep their ids and are stored once however often they arrive.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections.tables import text, us
from runlog.schema.ids import id_text

from .clock import Clock, system_clock

Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""What a 64-bit integer column holds: no value a client sends reaches the database as an overflow."""


class LogLine(msgspec.Struct, kw_only=True):
    """A run's log line to store (POST /logs/ sends a list of them)."""

    name: str
    level: Int64
    message: str
    timestamp: datetime
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


class CopiedLogLine(LogLine, kw_only=True):
    """A line stored by another runlog: it keeps its id (stored once however often it comes) and
    its ``created`` (the time of the import when left out)."""

    id: UUID
    created: datetime | None = None

SQL_INSERT_LOG = (
    "INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

# Copied lines in one statement per batch, so a batch is stored whole or not at all (the SQLite
# handle autocommits each statement); RETURNING names the lines that were new.
SQL_IMPORT_LOGS = {
    "sqlite": (
        "INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp, created) "
        "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
        "json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), "
        "json_extract(value, '$[6]'), json_extract(value, '$[7]') FROM json_each(?) WHERE true "
        "ON CONFLICT (id) DO NOTHING RETURNING id"
    ),
    "postgres": (
        "INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp, created) "
        "SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], "
        "?::bigint[], ?::bigint[]) ON CONFLICT (id) DO NOTHING RETURNING id"
    ),
}

REPLACEMENT = "\ufffd"

_json = msgspec.json.Encoder()


def clean_text(value: str) -> str:
    """PostgreSQL cannot store NUL in text; it becomes U+FFFD on both backends alike."""
    return value.replace("\x00", REPLACEMENT)


def time_ordered_ids(count: int, now: datetime) -> list[uuid.UUID]:
    """UUIDv7-style ids that sort in the order given, the tie-breaker for equal timestamps.

    48 bits of milliseconds, then a 12-bit counter, then random bits; past 4096 ids the
    millisecond part moves on, so the ids of one batch always sort in batch order.
    """
    base_ms = int(now.timestamp() * 1000)
    ids = []
    for index in range(count):
        ms, counter = base_ms + (index >> 12), index & 0xFFF
        random = secrets.randbits(62)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | random
        ids.append(uuid.UUID(int=value))
    return ids


def _row(log_id: UUID, log: LogLine, created: int | None) -> tuple:
    return (
        id_text(log_id), text(log.flow_run_id), text(log.task_run_id), clean_text(log.name), log.level,
        clean_text(log.message), us(log.timestamp), created,  # a naive timestamp counts as UTC
    )


async def create_logs(store: EventStore, logs: Sequence[LogLine], *, clock: Clock = system_clock) -> None:
    if not logs:
        return
    now = clock()
    created = us(now)
    rows = [_row(log_id, log, created) for log_id, log in zip(time_ordered_ids(len(logs), now), logs, strict=True)]
    async with store.reading() as tx:
        await tx.executemany(SQL_INSERT_LOG, rows)


async def import_logs(store: EventStore, logs: Sequence[CopiedLogLine], *, clock: Clock = system_clock) -> int:
    """Store log lines copied from another runlog, skipping ids already stored; how many were new."""
    if not logs:
        return 0
    created = us(clock())
    rows = [_row(log.id, log, created if log.created is None else us(log.created)) for log in logs]
    async with store.reading() as tx:
        sql = SQL_IMPORT_LOGS[tx.dialect]
        if tx.dialect == "postgres":
            inserted = await tx.fetch(sql, *(list(column) for column in zip(*rows, strict=True)))
        else:
            inserted = await tx.fetch(sql, _json.encode(rows).decode())
    return len(inserted)
