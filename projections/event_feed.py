"""The event feed: Prefect's events (client events and derived flow-run events) as a read table.

An asynchronous projection (projections/checkpoints.py): it follows the log from its own
checkpoint, so the set_state hot path neither waits for it nor reads anything more. Each event
is one ``event_feed`` row holding its JSON as served, with the columns the filters use (the
primary resource's id among them), and one ``event_feed_resources`` row per related resource
(ordinal 1, 2, ... in the event's order) with the two columns the related and any_resource
filters look rows up by: its id and role. A resource's other labels are read from the event's
JSON when a filter names one (api/queries/events.py), not stored again beside it: labels
filters are rare, and the rows are written for every event (a rebuild writes millions).
Rows are keyed by the Prefect event id, so a client re-sending an event, or the projection
re-folding a page after a failed write, never shows it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import structlog

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx

from .prefect_events import Derivation, PrefectEvent
from .tables import us

log = structlog.get_logger("runlog.projections.event_feed")

NAME = "event_feed"
FEED = Table("event_feed", ("id", "occurred", "event", "resource_id", "position", "body"), key=("id",))
RESOURCES = Table(
    "event_feed_resources", ("event_id", "ordinal", "occurred", "resource_id", "role", "labels"),
    key=("event_id", "ordinal"),
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PrefectEvent)


def decode_event(body: str | bytes) -> PrefectEvent:
    return _decoder.decode(body)


def encode_event(event: PrefectEvent) -> str:
    return _encoder.encode(event).decode()


LABELS_NOT_KEPT = ""
"""What ``event_feed_resources.labels`` holds since version 2: nothing (the labels are read from
the event's ``body``). The column stays until a migration drops it; version 1 kept each
resource's labels there as JSON, and a row for the primary resource (ordinal 0)."""


def feed_rows(changes: RowChanges, event: PrefectEvent, position: int) -> None:
    """Add one feed event's rows to ``changes``."""
    key = str(event.id)
    occurred = us(event.occurred)
    changes.upsert(FEED, (
        key, occurred, event.event, event.resource.get("prefect.resource.id", ""), position, encode_event(event),
    ))
    for ordinal, resource in enumerate(event.related, 1):
        changes.upsert(RESOURCES, (
            key, ordinal, occurred, resource.get("prefect.resource.id", ""), resource.get("prefect.resource.role", ""),
            LABELS_NOT_KEPT,
        ))


YIELD_EVERY = 50
"""Records folded between two turns handed back to the event loop. A page (500 records) whose
runs and flows were remembered was folded without waiting on anything, so the server's event
loop ran nothing else for 11-16 ms about once a second, and every request in flight waited that
long (a probe timing the loop's call backs under bench_fanout, 2026-12-07: 61-65 such stalls over
5 ms a minute, notifier on or off, against none or one for any other task, start-up aside)."""

VERSION = 2
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py).
2: no row for the primary resource, no labels in the resources' rows."""


class EventFeedProjection:
    """Folds the log into the feed tables; it catches up through projections/catchup.py."""

    name = NAME
    version = VERSION
    reads_by_key_only = True  # it reads none of its rows: a rebuild's shadow needs no other index
    new_keys = True  # each event's rows are keyed by its own id: a rebuild COPYs them (projections/rebuild.py)
    tables = (FEED, RESOURCES)

    def __init__(self, store: EventStore) -> None:
        self.derivation = Derivation(store)

    async def changes(self, events: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges:
        """The feed rows of ``events`` (it reads none of its own rows: ``tx`` is not used)."""
        changes = RowChanges()
        for index, record in enumerate(events):
            if index and not index % YIELD_EVERY:
                await asyncio.sleep(0)
            try:
                derived = await self.derivation.events_of(record)
            except msgspec.DecodeError as exc:
                # A payload this runlog cannot read (written by a newer one): it shows nothing.
                log.warning("event_feed_skipped", position=record.position, type=record.type, error=str(exc))
                continue
            for event in derived:
                feed_rows(changes, event, record.position)
        return changes


__all__ = ["FEED", "LABELS_NOT_KEPT", "NAME", "RESOURCES", "EventFeedProjection", "decode_event", "encode_event", "feed_rows"]
