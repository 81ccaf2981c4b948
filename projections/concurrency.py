"""The concurrency read model: limits and the leases holding their slots, kept inline.

``evolve`` is the pure fold of one limit's stream (concurrency-limit-<id>). The projection
applies it inside the append's transaction: it loads the limits a batch touches, folds the
batch's events into them and writes back what changed. ``load_limits`` gives commands the
same view, stream version included, read in one statement so that it is one snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import streams
from runlog.eventstore import RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import from_us, in_list, list_param, us

LIMIT_NAMESPACE = uuid.UUID("0c6f3a52-1b7e-4d2a-9c1e-72756e6c6f67")

OCCUPANCY_SAMPLES_MULTIPLIER = 2
"""Prefect's moving average of slot occupancy spans ``limit * 2`` releases."""
MINIMUM_OCCUPANCY_SECONDS = 0.1
DEFAULT_OCCUPANCY_SECONDS = 2.0

_TYPES = frozenset(
    {
        "concurrency_limit.created",
        "concurrency_limit.updated",
        "concurrency_limit.deleted",
        "concurrency_slots.acquired",
        "concurrency_slots.released",
        "concurrency_lease.renewed",
    }
)


def limit_id_for(name: str) -> UUID:
    """A limit's id is derived from its name, so two concurrent creations of one name meet on
    one stream and only one of them wins; this is what keeps names unique."""
    return uuid.uuid5(LIMIT_NAMESPACE, name)


def stream_of(limit_id: UUID) -> str:
    return streams.concurrency_limit(limit_id)


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """A lease's hold on one limit."""

    lease_id: UUID
    slots: int
    holder: catalogue.ConcurrencyLeaseHolder | None = None
    acquired_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= now


class LimitView(msgspec.Struct, frozen=True, kw_only=True):
    """One limit as its stream has made it, with the version of the stream's last event."""

    id: UUID
    name: str
    version: int
    limit: int
    active: bool = True
    slot_decay_per_second: float = 0.0
    avg_slot_occupancy_seconds: float = DEFAULT_OCCUPANCY_SECONDS
    created: datetime
    updated: datetime
    deleted: bool = False
    leases: dict[UUID, Lease] = msgspec.field(default_factory=dict)

    def held(self, now: datetime) -> list[Lease]:
        """The leases that count against the limit at ``now``: an expired lease is free even
        before its release is recorded, so no decision depends on the sweeper's timing."""
        return [lease for lease in self.leases.values() if not lease.expired(now)]

    def active_slots(self, now: datetime) -> int:
        return sum(lease.slots for lease in self.held(now))

    def expired(self, now: datetime) -> list[Lease]:
        return [lease for lease in self.leases.values() if lease.expired(now)]


def _moving_average(view: LimitView, occupancy_seconds: float, slots: int) -> float:
    """Prefect's average seconds a slot stays taken, updated by one release."""
    if view.limit <= 0 or slots <= 0:
        return view.avg_slot_occupancy_seconds
    per_slot = max(occupancy_seconds / slots, MINIMUM_OCCUPANCY_SECONDS)
    samples = view.limit * OCCUPANCY_SAMPLES_MULTIPLIER
    avg = view.avg_slot_occupancy_seconds
    return avg + per_slot / samples - avg / samples


def evolve(view: LimitView | None, event: Any, version: int) -> LimitView | None:
    """Fold one event of a limit's stream; ``version`` is that event's stream version."""
    replace = msgspec.structs.replace
    if isinstance(event, catalogue.ConcurrencyLimitCreated):
        return LimitView(
            id=event.limit_id, name=event.name, version=version, limit=event.limit, active=event.active,
            slot_decay_per_second=event.slot_decay_per_second, created=event.created, updated=event.created,
        )
    if view is None:
        return None  # nothing but a creation starts a limit
    if isinstance(event, catalogue.ConcurrencyLimitUpdated):
        return replace(
            view, version=version, updated=event.updated,
            limit=view.limit if event.limit is None else event.limit,
            active=view.active if event.active is None else event.active,
            slot_decay_per_second=(
                view.slot_decay_per_second if event.slot_decay_per_second is None else event.slot_decay_per_second
            ),
        )
    if isinstance(event, catalogue.ConcurrencyLimitDeleted):
        return replace(view, version=version, deleted=True)
    if isinstance(event, catalogue.ConcurrencySlotsAcquired):
        lease = Lease(
            lease_id=event.lease_id, slots=event.slots, holder=event.holder,
            acquired_at=event.acquired_at, expires_at=event.expires_at,
        )
        return replace(view, version=version, leases={**view.leases, event.lease_id: lease})
    if isinstance(event, catalogue.ConcurrencySlotsReleased):
        leases = dict(view.leases)
        released = leases.pop(event.lease_id, None)
        avg = view.avg_slot_occupancy_seconds
        if released is not None and event.occupancy_seconds is not None and event.reason in ("released", "expired"):
            avg = _moving_average(view, event.occupancy_seconds, released.slots)
        return replace(view, version=version, leases=leases, avg_slot_occupancy_seconds=avg)
    if isinstance(event, catalogue.ConcurrencyLeaseRenewed):
        held = view.leases.get(event.lease_id)
        if held is None:
            return replace(view, version=version)
        renewed = replace(held, expires_at=event.expires_at)
        return replace(view, version=version, leases={**view.leases, event.lease_id: renewed})
    return replace(view, version=version)


# -- storage ----------------------------------------------------------------------------------

_COLUMNS = (
    "l.id, l.name, l.version, l.slot_limit, l.active, l.slot_decay_per_second, l.avg_slot_occupancy_seconds, "
    "l.deleted, l.created, l.updated, s.lease_id, s.slots, s.holder_type, s.holder_id, s.acquired_at, s.expires_at"
)
_FROM = "FROM concurrency_limits l LEFT JOIN concurrency_leases s ON s.limit_id = l.id"
SQL_ALL_LIMITS = f"SELECT {_COLUMNS} {_FROM} WHERE l.deleted = 0"  # noqa: S608 - constant SQL
SQL_LEASE_LIMITS = "SELECT limit_id FROM concurrency_leases WHERE lease_id = ?"
SQL_EXPIRED_LIMITS = "SELECT DISTINCT limit_id FROM concurrency_leases WHERE expires_at <= ?"
LIMITS = Table(
    "concurrency_limits",
    ("id", "name", "version", "slot_limit", "active", "slot_decay_per_second", "avg_slot_occupancy_seconds",
     "deleted", "created", "updated"),
    key=("id",),
)
LEASES = Table(
    "concurrency_leases",
    ("lease_id", "limit_id", "slots", "holder_type", "holder_id", "acquired_at", "expires_at"),
    key=("lease_id", "limit_id"),
)


def _time(value: int) -> datetime:
    moment = from_us(value)
    assert moment is not None
    return moment.astimezone(UTC)


def _views(rows: Iterable[Sequence[Any]]) -> dict[UUID, LimitView]:
    """Rows of the limits-join-leases query, grouped into one view per limit."""
    views: dict[UUID, LimitView] = {}
    for row in rows:
        limit_id = UUID(row[0])
        view = views.get(limit_id)
        if view is None:
            view = views[limit_id] = LimitView(
                id=limit_id, name=row[1], version=row[2], limit=row[3], active=bool(row[4]),
                slot_decay_per_second=row[5], avg_slot_occupancy_seconds=row[6], deleted=bool(row[7]),
                created=_time(row[8]), updated=_time(row[9]),
            )
        if row[10] is not None:
            holder = None if row[12] is None else catalogue.ConcurrencyLeaseHolder(type=row[12], id=UUID(row[13]))
            lease_id = UUID(row[10])
            view.leases[lease_id] = Lease(
                lease_id=lease_id, slots=row[11], holder=holder,
                acquired_at=_time(row[14]), expires_at=_time(row[15]),
            )
    return views


async def load_limits(tx: Tx, limit_ids: Iterable[UUID], *, include_deleted: bool = False) -> dict[UUID, LimitView]:
    """The views of the given limits, read in one statement (one snapshot on both backends)."""
    ids = sorted({str(i) for i in limit_ids})
    if not ids:
        return {}
    sql = f"SELECT {_COLUMNS} {_FROM} WHERE {in_list(tx, 'l.id')}"  # noqa: S608 - our own column names
    views = _views(await tx.fetch(sql, list_param(tx, ids)))
    return views if include_deleted else {k: v for k, v in views.items() if not v.deleted}


async def load_all_limits(tx: Tx) -> list[LimitView]:
    """Every limit that is not deleted, by name."""
    return sorted(_views(await tx.fetch(SQL_ALL_LIMITS)).values(), key=lambda v: v.name)


async def lease_limit_ids(tx: Tx, lease_id: UUID) -> list[UUID]:
    """The limits a lease still holds slots on (expired or not), in the order commands take them."""
    return sorted(UUID(row[0]) for row in await tx.fetch(SQL_LEASE_LIMITS, str(lease_id)))


async def limits_with_expired_leases(tx: Tx, now: datetime) -> list[UUID]:
    return sorted(UUID(row[0]) for row in await tx.fetch(SQL_EXPIRED_LIMITS, us(now)))


def _lease_row(limit_id: UUID, lease: Lease) -> tuple[Any, ...]:
    holder = lease.holder
    return (
        str(lease.lease_id), str(limit_id), lease.slots,
        None if holder is None else holder.type, None if holder is None else str(holder.id),
        us(lease.acquired_at), us(lease.expires_at),
    )


def _record_changes(changes: RowChanges, before: LimitView | None, after: LimitView) -> None:
    changes.upsert(LIMITS, (
        str(after.id), after.name, after.version, after.limit, int(after.active),
        float(after.slot_decay_per_second), float(after.avg_slot_occupancy_seconds), int(after.deleted),
        us(after.created), us(after.updated),
    ))
    old = before.leases if before is not None else {}
    for lease_id in old.keys() - after.leases.keys():
        changes.delete(LEASES, (str(lease_id), str(after.id)))
    for lease_id, lease in after.leases.items():
        if old.get(lease_id) != lease:
            changes.upsert(LEASES, _lease_row(after.id, lease))


def _is_limit_event(event_type: str, stream_id: str) -> bool:
    return event_type in _TYPES and stream_id.startswith(streams.CONCURRENCY_LIMIT)


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class ConcurrencyProjection:
    name = "concurrency"
    version = VERSION
    tables = (LIMITS, LEASES)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """Nothing to write for a batch without limit events; with them, ``changes`` reads."""
        mine = any(_is_limit_event(r.event.type, r.stream_id) for r in rows)
        return None if mine else RowChanges()

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        mine = [e for e in events if _is_limit_event(e.type, e.stream_id)]
        if not mine:
            return changes
        ids = {UUID(e.stream_id.removeprefix(streams.CONCURRENCY_LIMIT)) for e in mine}
        before = await load_limits(tx, ids, include_deleted=True)
        after: dict[UUID, LimitView | None] = dict(before)
        for record in mine:
            limit_id = UUID(record.stream_id.removeprefix(streams.CONCURRENCY_LIMIT))
            after[limit_id] = evolve(after.get(limit_id), catalogue.decode(record.data), record.version)
        for limit_id, view in after.items():
            if view is not None and view is not before.get(limit_id):
                _record_changes(changes, before.get(limit_id), view)
        return changes


__all__ = [
    "ConcurrencyProjection",
    "Lease",
    "LimitView",
    "evolve",
    "lease_limit_ids",
    "limit_id_for",
    "limits_with_expired_leases",
    "load_all_limits",
    "load_limits",
    "stream_of",
]
