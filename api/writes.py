"""Appending catalogue events: the one place that turns an event into a log record."""

from __future__ import annotations

import uuid
from uuid import UUID

from runlog.eventstore import EventStore, NewEvent, RecordedEvent
from runlog.schema import events as catalogue


async def append_event(
    store: EventStore,
    stream_id: str,
    event: catalogue.Event,
    *,
    expected_version: int | None = None,
    event_id: UUID | None = None,
) -> RecordedEvent:
    record = NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=event_id or uuid.uuid4())
    (recorded,) = await store.append(stream_id, [record], expected_version=expected_version)
    return recorded
