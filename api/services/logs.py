"""Storing run logs (POST /logs/): the documented exception to "everything is an event".

Log lines are not state, so they go straight into the append-only ``logs`` table (DESIGN.md),
one batched INSERT per request.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from runlog.commands.clock import Clock, system_clock
from runlog.eventstore import EventStore
from runlog.projections.tables import us

from ..schemas.logs import LogCreate

SQL_INSERT_LOG = (
    "INSERT INTO logs (id, flow_run_id, task_run_id, name, level, message, timestamp, created) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)

REPLACEMENT = "\ufffd"


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


async def create_logs(store: EventStore, logs: Sequence[LogCreate], *, clock: Clock = system_clock) -> None:
    if not logs:
        return
    now = clock()
    created = us(now)
    rows = [
        (
            str(log_id),
            None if log.flow_run_id is None else str(log.flow_run_id),
            None if log.task_run_id is None else str(log.task_run_id),
            clean_text(log.name),
            log.level,
            clean_text(log.message),
            us(log.timestamp),  # a naive timestamp counts as UTC
            created,
        )
        for log_id, log in zip(time_ordered_ids(len(logs), now), logs, strict=True)
    ]
    async with store.reading() as tx:
        await tx.executemany(SQL_INSERT_LOG, rows)
