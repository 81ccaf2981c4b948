"""The notifier's delivery log: every delivery with its attempts, and each channel's health.

A delivery is its own stream (delivery-<id>), folded into one row of ``deliveries`` that keeps
the whole view (message, attempts, outcome) as JSON and copies into columns what the
dispatcher and the delivery log filter and sort on. ``next_attempt_at`` is set only while the
delivery waits to be sent (pending or retrying), so "what is due" is one range read on it.

``channel_health`` says which channels are failing: a 404 or 410 from a channel's endpoint
("gone") marks it failing until a later delivery to it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema import streams

from .cache import ViewCache
from .tables import from_us, us

PENDING = "pending"
RETRYING = "retrying"
SENT = "sent"
DEAD = "dead"
STATUSES = (PENDING, RETRYING, SENT, DEAD)
WAITING = (PENDING, RETRYING)
"""The statuses of a delivery still to be sent."""

FAILING = "failing"
HEALTHY = "ok"

_SCHEDULED = "delivery.scheduled"
_TYPES = frozenset({
    "delivery.scheduled", "delivery.attempted", "delivery.sent", "delivery.dead_lettered", "delivery.replayed",
})


class DeliveryView(msgspec.Struct, kw_only=True):
    """A delivery: what was scheduled (the message and what it answers), and how sending it went."""

    scheduled: catalogue.DeliveryScheduled
    status: str = PENDING
    attempts: list[catalogue.DeliveryAttempted] = msgspec.field(default_factory=list)
    """Every attempt as recorded, oldest first."""
    parts_sent: list[str] = msgspec.field(default_factory=list)
    """The recipients (part ids) that have the message, over every attempt: a multi-request
    channel's next attempt, a replay's too, leaves them out."""
    next_attempt_at: datetime | None = None
    age_from: datetime
    """When the delivery's maximum age starts counting: its scheduling, or its last replay."""
    updated: datetime
    sent_at: datetime | None = None
    dead_reason: str | None = None
    version: int = 0

    @property
    def id(self) -> UUID:
        return self.scheduled.delivery_id

    @property
    def channel_id(self) -> UUID:
        return self.scheduled.channel_id

    @property
    def created(self) -> datetime:
        return self.scheduled.scheduled_at


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeliveryView)


def decode_delivery(data: bytes) -> DeliveryView:
    return _decoder.decode(data)


def evolve_delivery(view: DeliveryView | None, event: Any, version: int) -> DeliveryView | None:
    """Fold one event of a delivery's stream (pure)."""
    if isinstance(event, catalogue.DeliveryScheduled):
        if view is not None:
            return view
        at = event.scheduled_at
        return DeliveryView(scheduled=event, next_attempt_at=at, age_from=at, updated=at, version=version)
    if view is None:
        return None
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.DeliveryAttempted):
        waiting = event.next_attempt_at is not None
        reached = view.parts_sent + [p for p in event.parts_sent if p not in view.parts_sent]
        return replace(
            view, attempts=[*view.attempts, event], status=RETRYING if waiting else view.status,
            next_attempt_at=event.next_attempt_at, updated=event.finished, version=version, parts_sent=reached,
        )
    if isinstance(event, catalogue.DeliverySent):
        if event.attempt is not None:  # the successful attempt, recorded in the sending itself
            view = evolve_delivery(view, event.attempt, version)
            assert view is not None
        return replace(view, status=SENT, sent_at=event.at, next_attempt_at=None, updated=event.at, version=version)
    if isinstance(event, catalogue.DeliveryDeadLettered):
        return replace(
            view, status=DEAD, dead_reason=event.reason, next_attempt_at=None, updated=event.at, version=version,
        )
    if isinstance(event, catalogue.DeliveryReplayed):
        return replace(
            view, status=PENDING, dead_reason=None, next_attempt_at=event.at, age_from=event.at, updated=event.at,
            version=version,
        )
    return replace(view, version=version)


# -- storage ----------------------------------------------------------------------------------

DELIVERIES = Table(
    "deliveries",
    ("id", "status", "rule_id", "rule_name", "channel_id", "event_id", "flow_run_id", "attempts",
     "next_attempt_at", "created", "updated", "version", "view"),
    key=("id",),
)
CHANNEL_HEALTH = Table("channel_health", ("channel_id", "status", "reason", "since", "updated"), key=("channel_id",))

_COLUMNS = ", ".join(DELIVERIES.columns)
SQL_GET = f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?"  # noqa: S608 - our own column names
SQL_DUE = (
    f"SELECT {_COLUMNS} FROM deliveries WHERE next_attempt_at <= ? "  # noqa: S608
    "ORDER BY next_attempt_at, id LIMIT ?"
)
SQL_OF_FLOW_RUN = (
    f"SELECT {_COLUMNS} FROM deliveries WHERE flow_run_id = ? ORDER BY created, id"  # noqa: S608
)
SQL_DEAD_IDS = "SELECT id FROM deliveries WHERE status = 'dead' ORDER BY created, id"
SQL_CHANNEL_HEALTH = "SELECT channel_id, status, reason, since, updated FROM channel_health WHERE channel_id = ?"
SQL_FAILING = "SELECT channel_id, reason FROM channel_health WHERE status = 'failing'"
SQL_HEALTH = "SELECT channel_id, status, reason, since, updated FROM channel_health ORDER BY channel_id"


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def delivery_row(view: DeliveryView) -> tuple[Any, ...]:
    scheduled = view.scheduled
    return (
        str(view.id), view.status, str(scheduled.rule_id), scheduled.rule_name, str(view.channel_id),
        str(scheduled.event_id), _text(scheduled.flow_run_id), len(view.attempts), us(view.next_attempt_at), us(view.created), us(view.updated),
        view.version, _encoder.encode(view),
    )


def view_of(row: Sequence[Any]) -> DeliveryView:
    """A deliveries row (all columns, in order) as its view."""
    return decode_delivery(bytes(row[-1]))


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


RECENT = 4096
"""Deliveries whose latest view the projection keeps (most are decided within a few events)."""


class DeliveriesProjection:
    """The inline projection of deliveries and channel health.

    It remembers the views it wrote (a ViewCache of the recent deliveries) and each channel's
    health as last written or read, so that an attempt or a sending needs no read: ``prepare``
    folds it onto the view cached at exactly the version before it (a view is the same in
    every process at a version; PostgreSQL's one statement holds only if the versions it was
    planned on are right, see eventstore/postgres.py), and ``changes`` reads only what it does
    not know. What a prepared statement wrote is trusted once the store says it held
    (``prepared_stored``); the store calls ``forget`` when a batch fails or another process
    appended (a channel's health is checked by no version).
    """

    name = "deliveries"
    version = VERSION
    tables = (DELIVERIES, CHANNEL_HEALTH)
    event_types = _TYPES  # the only events it folds (a rebuild hands it no others)

    def __init__(self, size: int = RECENT) -> None:
        self._views = ViewCache(size)
        self._health: dict[UUID, str] = {}
        """Each channel's status (HEALTHY or FAILING) as this process last wrote or read it."""
        self._prepared: tuple[list[DeliveryView], dict[UUID, str]] = ([], {})

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """The batch's rows when every delivery it folds onto is known here at the version
        before (a first scheduling needs none), and the health of every channel a sending
        decides is known; None, so that ``changes`` reads, otherwise."""
        self._prepared = ([], {})
        changes = RowChanges()
        views: dict[UUID, DeliveryView] = {}
        health: dict[UUID, str] = {}
        for row in rows:
            if row.event.type not in _TYPES:
                continue
            if not row.stream_id.startswith(streams.DELIVERY):
                return None
            event = catalogue.decode(row.event.data)
            known = views.get(event.delivery_id) or self._views.at_version(str(event.delivery_id), row.version - 1)
            if known is None and row.version != 1:
                return None
            view = evolve_delivery(known, event, row.version)
            if view is None:
                return None
            views[view.id] = view
            changes.upsert(DELIVERIES, delivery_row(view))
            channel = view.channel_id
            status = health.get(channel) or self._health.get(channel)
            if isinstance(event, catalogue.DeliverySent) and status is None:
                return None  # failing or healthy decides whether the row changes: read it
            self._fold_health(changes, event, view, status, health)
        self._prepared = (list(views.values()), health)
        return changes

    def prepared_stored(self) -> None:
        """The last prepared rows are stored: their views and health are now known."""
        views, health = self._prepared
        for view in views:
            self._views.put(str(view.id), view)
        self._health.update(health)
        self._prepared = ([], {})

    def forget(self, *, failed: bool) -> None:
        """Drop the channels' health remembered, and if a batch ``failed`` the views too: they
        may be of events rolled back. A view of a committed version stays right however much
        another process appends (it is used only at exactly the version before the next event)."""
        if failed:
            self._views.clear()
        self._health.clear()
        self._prepared = ([], {})

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        """The rows of a whole batch, folded in one call and written in one go: a delivery's
        earlier events in the batch are folded from this call's own views (they are not written
        yet), others from the view remembered at the version before, else from its row."""
        changes = RowChanges()
        batch: dict[UUID, DeliveryView] = {}  # this call's views, the latest of each delivery
        for record in events:
            if record.type not in _TYPES or not record.stream_id.startswith(streams.DELIVERY):
                continue
            event = catalogue.decode(record.data)
            known = batch.get(event.delivery_id)
            if known is None or known.version != record.version - 1:
                known = self._views.at_version(str(event.delivery_id), record.version - 1)
            if known is None and event.delivery_id not in batch:
                # No earlier event of this batch folded it, so its row is as the batch found it.
                known = await get(tx, event.delivery_id)
            view = evolve_delivery(known, event, record.version)
            if view is None:
                continue
            batch[view.id] = view
            # Kept before the commit: if the batch fails, the store calls ``forget``.
            self._views.put(str(view.id), view)
            changes.upsert(DELIVERIES, delivery_row(view))
            status = self._health.get(view.channel_id)
            if isinstance(event, catalogue.DeliverySent) and status is None:
                found = await channel_health(tx, view.channel_id)
                status = found[0] if found else None
            self._fold_health(changes, event, view, status, self._health)
        return changes

    @staticmethod
    def _fold_health(
        changes: RowChanges, event: Any, view: DeliveryView, status: str | None, health: dict[UUID, str],
    ) -> None:
        """A "gone" attempt marks the channel failing; a sending marks it healthy unless it is."""
        if isinstance(event, catalogue.DeliveryAttempted) and event.outcome == "gone":
            reason = f"HTTP {event.status_code}" if event.status_code else (event.error or "gone")
            changes.upsert(CHANNEL_HEALTH, (
                str(view.channel_id), FAILING, f"{reason} on delivery {view.id}", us(event.finished), us(event.finished),
            ))
            health[view.channel_id] = FAILING
        elif isinstance(event, catalogue.DeliverySent):
            if status != HEALTHY:
                changes.upsert(CHANNEL_HEALTH, (str(view.channel_id), HEALTHY, None, us(event.at), us(event.at)))
            health[view.channel_id] = HEALTHY


async def get(tx: Tx, delivery_id: UUID) -> DeliveryView | None:
    rows = await tx.fetch(SQL_GET, str(delivery_id))
    return view_of(rows[0]) if rows else None


async def due(tx: Tx, now: datetime, limit: int) -> list[DeliveryView]:
    """Deliveries waiting to be sent whose time has come, the longest waiting first."""
    return [view_of(row) for row in await tx.fetch(SQL_DUE, us(now), limit)]


async def of_flow_run(tx: Tx, flow_run_id: UUID) -> list[DeliveryView]:
    """Every delivery a flow run's events caused (resolves included), oldest first."""
    return [view_of(row) for row in await tx.fetch(SQL_OF_FLOW_RUN, str(flow_run_id))]


async def dead_ids(tx: Tx) -> list[UUID]:
    return [UUID(row[0]) for row in await tx.fetch(SQL_DEAD_IDS)]


async def channel_health(tx: Tx, channel_id: UUID) -> tuple[str, str | None] | None:
    """(status, reason) of a channel that has had a delivery decided, else None."""
    rows = await tx.fetch(SQL_CHANNEL_HEALTH, str(channel_id))
    return (rows[0][1], rows[0][2]) if rows else None


class ChannelHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A channel's health as its deliveries left it: ``status`` ok or failing (with the
    ``reason``), ``since`` it entered that status."""

    channel_id: UUID
    status: str
    reason: str | None
    since: datetime
    updated: datetime


async def health(tx: Tx) -> list[ChannelHealth]:
    """The health of every channel that has had a delivery sent or found gone (for ``channel ls``)."""
    return [
        ChannelHealth(channel_id=UUID(row[0]), status=row[1], reason=row[2], since=from_us(row[3]), updated=from_us(row[4]))
        for row in await tx.fetch(SQL_HEALTH)
    ]


async def failing_channels(tx: Tx) -> dict[UUID, str]:
    """Every failing channel with the reason (for ``runlog channel ls``)."""
    return {UUID(row[0]): row[1] for row in await tx.fetch(SQL_FAILING)}


__all__ = [
    "CHANNEL_HEALTH", "DEAD", "DELIVERIES", "FAILING", "HEALTHY", "PENDING", "RETRYING", "SENT", "STATUSES", "WAITING",
    "ChannelHealth", "DeliveriesProjection", "DeliveryView", "channel_health", "dead_ids", "decode_delivery",
    "delivery_row", "due", "evolve_delivery", "failing_channels", "get", "health", "of_flow_run", "view_of",
]
