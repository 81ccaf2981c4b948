"""Appending one catalogue event without a decision (tests, and events with their own ids).

Records are built by runlog.commands.executor.record, the one place an event becomes a log
record; commands go through Executor.execute instead.
"""

from __future__ import annotations

from uuid import UUID

from runlog.commands.executor import record
from runlog.eventstore import EventStore, RecordedEvent
from runlog.schema import events as catalogue


async def append_event(
    store: EventStore,
    stream_id: str,
    event: catalogue.Event,
    *,
    expected_version: int | None = None,
    event_id: UUID | None = None,
) -> RecordedEvent:
    (recorded,) = await record(
        store, stream_id, [event], ids=[event_id] if event_id is not None else (), expected_version=expected_version
    )
    return recorded
