"""The concurrency fold, table-driven and without a database: what each event does to a limit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.projections.concurrency import LimitView, evolve, limit_id_for
from runlog.schema import events as catalogue

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMIT_ID = limit_id_for("tag:db")
LEASE = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")
HOLDER = catalogue.ConcurrencyLeaseHolder(type="task_run", id=uuid.UUID("00000000-0000-4000-8000-0000000000aa"))


def created(limit: int = 2) -> catalogue.Event:
    return catalogue.ConcurrencyLimitCreated(limit_id=LIMIT_ID, name="tag:db", limit=limit, created=T0)


def acquired(lease_id: uuid.UUID = LEASE, slots: int = 1, seconds: int = 60) -> catalogue.Event:
    return catalogue.ConcurrencySlotsAcquired(
        limit_id=LIMIT_ID, name="tag:db", lease_id=lease_id, slots=slots, holder=HOLDER,
        acquired_at=T0, expires_at=T0 + timedelta(seconds=seconds),
    )


def released(lease_id: uuid.UUID = LEASE, reason: str = "released", occupancy: float | None = 10.0) -> catalogue.Event:
    return catalogue.ConcurrencySlotsReleased(
        limit_id=LIMIT_ID, lease_id=lease_id, reason=reason, occupancy_seconds=occupancy
    )


def fold(*events: catalogue.Event) -> LimitView | None:
    view = None
    for version, event in enumerate(events, start=1):
        view = evolve(view, event, version)
    return view


def test_creation_starts_a_limit_at_the_streams_first_version() -> None:
    view = fold(created(3))
    assert view is not None
    assert (view.id, view.name, view.limit, view.active, view.version) == (LIMIT_ID, "tag:db", 3, True, 1)
    assert view.leases == {} and view.avg_slot_occupancy_seconds == 2.0


def test_events_before_a_creation_make_no_limit() -> None:
    assert fold(acquired()) is None


@pytest.mark.parametrize(
    ("events", "held_slots", "leases"),
    [
        ((created(), acquired()), 1, {LEASE}),
        ((created(), acquired(), acquired(OTHER, slots=2)), 3, {LEASE, OTHER}),
        ((created(), acquired(), released()), 0, set()),
        ((created(), acquired(), released(reason="expired")), 0, set()),
        ((created(), acquired(), acquired(OTHER), released(OTHER, reason="rolled_back")), 1, {LEASE}),
        ((created(), acquired(), released(OTHER)), 1, {LEASE}),  # releasing a lease it lacks: no change
    ],
)
def test_slots_taken_and_freed(events: tuple, held_slots: int, leases: set) -> None:
    view = fold(*events)
    assert view is not None
    assert view.active_slots(T0) == held_slots
    assert set(view.leases) == leases
    assert view.version == len(events)


def test_an_expired_lease_no_longer_counts_even_before_its_release_is_recorded() -> None:
    view = fold(created(), acquired(seconds=60))
    assert view is not None
    assert view.active_slots(T0 + timedelta(seconds=59)) == 1
    assert view.active_slots(T0 + timedelta(seconds=60)) == 0
    assert [lease.lease_id for lease in view.expired(T0 + timedelta(seconds=60))] == [LEASE]


def test_a_renewal_moves_the_expiry_of_a_held_lease_only() -> None:
    later = T0 + timedelta(seconds=300)
    view = fold(
        created(), acquired(),
        catalogue.ConcurrencyLeaseRenewed(limit_id=LIMIT_ID, lease_id=LEASE, expires_at=later),
        catalogue.ConcurrencyLeaseRenewed(limit_id=LIMIT_ID, lease_id=OTHER, expires_at=later),
    )
    assert view is not None
    assert view.leases[LEASE].expires_at == later
    assert set(view.leases) == {LEASE} and view.version == 4


def test_an_update_replaces_only_the_fields_it_sets() -> None:
    updated_at = T0 + timedelta(hours=1)
    view = fold(created(2), catalogue.ConcurrencyLimitUpdated(limit_id=LIMIT_ID, active=False, updated=updated_at))
    assert view is not None
    assert (view.limit, view.active, view.updated, view.created) == (2, False, updated_at, T0)


def test_deletion_keeps_the_version_and_recreation_starts_afresh() -> None:
    deleted = fold(
        created(), acquired(), released(reason="revoked"), catalogue.ConcurrencyLimitDeleted(limit_id=LIMIT_ID)
    )
    assert deleted is not None and deleted.deleted and deleted.version == 4
    again = evolve(deleted, created(5), 5)
    assert again is not None and not again.deleted and again.limit == 5 and again.version == 5


@pytest.mark.parametrize(
    ("reason", "occupancy", "expected"),
    [
        ("released", 10.0, 2.0 + 10.0 / 4 - 2.0 / 4),  # limit 2 -> a moving average over 4 samples
        ("expired", 10.0, 2.0 + 10.0 / 4 - 2.0 / 4),
        ("released", 0.0, 2.0 + 0.1 / 4 - 2.0 / 4),  # occupancy never counts below 0.1 s
        ("rolled_back", 10.0, 2.0),  # never really held
        ("revoked", 10.0, 2.0),
        ("released", None, 2.0),
    ],
)
def test_releases_feed_the_average_slot_occupancy(reason: str, occupancy: float | None, expected: float) -> None:
    view = fold(created(2), acquired(), released(reason=reason, occupancy=occupancy))
    assert view is not None
    assert view.avg_slot_occupancy_seconds == pytest.approx(expected)
