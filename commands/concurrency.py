"""Concurrency commands: limits, and leases whose every slot taken or freed is an event.

Streams. Each limit is one stream, ``concurrency-limit-<id>``, carrying the limit's own
changes and every slot taken, renewed and freed on it. A command reads the limit's view and
stream version in one statement, decides, and appends with that version expected; a writer
that got there first makes the append fail, and the command decides again against the new
view (this replaces Prefect's ``UPDATE ... WHERE active_slots + n <= limit``). So two
acquisitions can never both take the last slot, while limits that share nothing never
contend. One stream for all limits would make an acquisition over several limits atomic for
free, but it would serialise every acquisition, renewal and release of the server on one
version, and tag limits are exactly the case where many tasks do this at once.

A lease over several limits is one ``concurrency_slots.acquired`` event on each limit's
stream, all with the same lease id. They are taken one limit at a time in a fixed order (by
limit id), so two such acquisitions never each hold a slot the other needs and retry forever;
if a later limit is full, the slots already taken are released again (reason "rolled_back")
and the caller gets 423. Renewals and releases visit the lease's limits in the same order; a
renewal that finds the lease gone or expired on any of them frees the rest and answers 410.

Expiry. A lease past its expiry no longer counts against its limit: every decision compares
``expires_at`` with the clock, so correctness never waits for the sweeper
(commands/lease_expiry.py), which only records the releases (reason "expired") nobody
else has recorded yet. An acquisition that reuses an expired lease's slot records that
release itself, in the same append, so the log always explains where a slot went.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.concurrency import (
    LimitView,
    evolve,
    lease_limit_ids,
    limit_id_for,
    limits_with_expired_leases,
    load_all_limits,
    load_limits,
    stream_of,
)
from runlog.schema import events as catalogue

from .clock import Clock, system_clock
from .errors import Busy, Conflict, Unprocessable
from .executor import Decided, Executor
from .orchestration.jitter import clamped_poisson_interval

T = TypeVar("T")

TAG_PREFIX = "tag:"
V1_LEASE_TTL = timedelta(days=100 * 365)
"""Prefect's lease length for slots set through the v1 API, whose clients cannot renew."""
TAG_SLOT_WAIT_SECONDS = 10.0
"""Prefect's server.tasks.tag_concurrency_slot_wait_seconds: the Retry-After cap for tags."""
MAX_SLOT_WAIT_SECONDS = 30.0
"""Prefect's server.concurrency.maximum_concurrency_slot_wait_seconds, for other limits."""
MIN_RETRY_SECONDS = 0.5
"""Prefect spreads retries by the count of recent denials; we do not record denials (they
are not state, and an event per 423 would flood the log), so the hint gets a floor instead."""

ReleaseReason = Literal["released", "expired", "revoked", "rolled_back"]


class LimitExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"A concurrency limit named {name!r} already exists")


class InvalidAcquire(Unprocessable):
    """The request can never succeed as asked (Prefect answers these with 422)."""


@dataclass(frozen=True, slots=True)
class Granted:
    lease_id: UUID
    limits: list[LimitView]


@dataclass(frozen=True, slots=True)
class Locked:
    limit: LimitView
    retry_after: float


# -- the decide-and-append loop ---------------------------------------------------------------


async def _load(store: EventStore, limit_id: UUID) -> LimitView | None:
    async with store.reading() as tx:
        return (await load_limits(tx, [limit_id], include_deleted=True)).get(limit_id)


async def _command(
    store: EventStore, limit_id: UUID, decide: Callable[[LimitView | None], tuple[list[catalogue.Event], T]],
    clock: Clock = system_clock,
) -> tuple[T, LimitView | None]:
    """Decide against the limit's current view through the executor; the decision's result
    and the view after the appended events. Busy when the limit stayed contended."""

    def decided(view: LimitView | None, _now: datetime) -> Decided[T]:
        events, result = decide(view)
        return Decided(events, result)

    outcome = await Executor(store, clock=clock).execute(
        stream_of(limit_id), load=lambda: _load(store, limit_id), decide=decided, evolve=evolve
    )
    return outcome.result, outcome.view


def _live(view: LimitView | None) -> LimitView | None:
    return None if view is None or view.deleted else view


# -- reads ------------------------------------------------------------------------------------


async def read_limit(store: EventStore, limit_id: UUID) -> LimitView | None:
    return _live(await _load(store, limit_id))


async def read_limit_by_name(store: EventStore, name: str) -> LimitView | None:
    return await read_limit(store, limit_id_for(name))


async def list_limits(store: EventStore) -> list[LimitView]:
    """Every limit, by name."""
    async with store.reading() as tx:
        return await load_all_limits(tx)


# -- limits -----------------------------------------------------------------------------------


def _created(name: str, limit: int, active: bool, slot_decay_per_second: float, now: datetime) -> catalogue.Event:
    return catalogue.ConcurrencyLimitCreated(
        limit_id=limit_id_for(name), name=name, limit=limit, active=active,
        slot_decay_per_second=slot_decay_per_second, created=now,
    )


async def create_limit(
    store: EventStore, name: str, limit: int, *, active: bool = True, slot_decay_per_second: float = 0.0,
    clock: Clock = system_clock,
) -> LimitView:
    """A new limit; LimitExists if one by that name exists."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        if _live(view) is not None:
            return [], False
        return [_created(name, limit, active, slot_decay_per_second, clock())], True

    created, view = await _command(store, limit_id_for(name), decide, clock)
    if not created:
        raise LimitExists(name)
    assert view is not None
    return view


async def upsert_limit(store: EventStore, name: str, limit: int, *, clock: Clock = system_clock) -> tuple[LimitView, bool]:
    """Create the limit, or set the existing one's limit; True when it was created."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        live = _live(view)
        if live is None:
            return [_created(name, limit, True, 0.0, clock())], True
        if live.limit == limit:
            return [], False
        return [catalogue.ConcurrencyLimitUpdated(limit_id=live.id, limit=limit, updated=clock())], False

    created, view = await _command(store, limit_id_for(name), decide, clock)
    assert view is not None
    return view, created


async def update_limit(
    store: EventStore, limit_id: UUID, *, limit: int | None = None, active: bool | None = None,
    slot_decay_per_second: float | None = None, clock: Clock = system_clock,
) -> LimitView | None:
    """Change the given fields; None when there is no such limit."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        live = _live(view)
        if live is None:
            return [], False
        if (
            (limit is None or limit == live.limit)
            and (active is None or active == live.active)
            and (slot_decay_per_second is None or slot_decay_per_second == live.slot_decay_per_second)
        ):
            return [], True
        event = catalogue.ConcurrencyLimitUpdated(
            limit_id=live.id, limit=limit, active=active, slot_decay_per_second=slot_decay_per_second, updated=clock()
        )
        return [event], True

    found, view = await _command(store, limit_id, decide, clock)
    return view if found else None


def _release_event(view: LimitView, lease_id: UUID, reason: ReleaseReason, now: datetime) -> catalogue.Event:
    lease = view.leases[lease_id]
    held_until = min(now, lease.expires_at)
    occupancy = max((held_until - lease.acquired_at).total_seconds(), 0.0)
    return catalogue.ConcurrencySlotsReleased(
        limit_id=view.id, lease_id=lease_id, reason=reason, occupancy_seconds=occupancy
    )


def _revoke_all(view: LimitView, now: datetime) -> list[catalogue.Event]:
    """The release of every lease on the limit (in lease id order), reason "revoked"."""
    return [_release_event(view, lease_id, "revoked", now) for lease_id in sorted(view.leases)]


def _acquired_event(
    view: LimitView, lease_id: UUID, slots: int, holder: catalogue.ConcurrencyLeaseHolder | None,
    now: datetime, duration: timedelta,
) -> catalogue.Event:
    return catalogue.ConcurrencySlotsAcquired(
        limit_id=view.id, name=view.name, lease_id=lease_id, slots=slots, holder=holder,
        acquired_at=now, expires_at=now + duration,
    )


async def delete_limit(store: EventStore, limit_id: UUID, *, clock: Clock = system_clock) -> bool:
    """Delete a limit, revoking its leases first (in the same append); False if none exists."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        live = _live(view)
        if live is None:
            return [], False
        return [*_revoke_all(live, clock()), catalogue.ConcurrencyLimitDeleted(limit_id=live.id)], True

    deleted, _view = await _command(store, limit_id, decide, clock)
    return deleted


async def reset_limit(
    store: EventStore, limit_id: UUID, slot_override: Sequence[UUID] = (), *, clock: Clock = system_clock
) -> bool:
    """Prefect's v1 reset: revoke every lease on the limit, then give one slot to each task
    run in ``slot_override`` (on a lease that never needs renewing). False if no such limit."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        live = _live(view)
        if live is None:
            return [], False
        now = clock()
        events = _revoke_all(live, now)
        for task_run_id in dict.fromkeys(slot_override):
            holder = catalogue.ConcurrencyLeaseHolder(type="task_run", id=task_run_id)
            events.append(_acquired_event(live, uuid.uuid4(), 1, holder, now, V1_LEASE_TTL))
        return events, True

    found, _view = await _command(store, limit_id, decide, clock)
    return found


# -- leases -----------------------------------------------------------------------------------


RETRY_JITTER_FACTOR = 0.3
"""Prefect jitters a 423's Retry-After to at most 1.3 times the estimate."""


def retry_after(view: LimitView, slots: int, draw: float | None = None) -> float:
    """Seconds a refused caller should wait: Prefect's estimate, average slot occupancy times
    the share of the limit asked for, capped at the limit kind's wait, jittered (``draw`` is
    the uniform draw, random unless given)."""
    max_wait = TAG_SLOT_WAIT_SECONDS if view.name.startswith(TAG_PREFIX) else MAX_SLOT_WAIT_SECONDS
    per_slot = min(view.avg_slot_occupancy_seconds, max_wait)
    share = slots / view.limit if view.limit > 0 else 1.0
    average = min(max(per_slot * share, MIN_RETRY_SECONDS), max_wait)
    if draw is None:
        draw = random.random()  # noqa: S311 - jitter, not a secret
    return round(clamped_poisson_interval(average, RETRY_JITTER_FACTOR, draw), 3)


AcquireOutcome = Literal["taken", "full", "absent"]


async def acquire(
    store: EventStore,
    names: Sequence[str],
    slots: int,
    *,
    lease_duration: float = 300.0,
    holder: catalogue.ConcurrencyLeaseHolder | None = None,
    mode: Literal["concurrency", "rate_limit"] = "concurrency",
    clock: Clock = system_clock,
) -> Granted | Locked:
    """Take ``slots`` slots of every named active limit under one new lease, or none of them.

    Names without a limit are ignored. When none of the names has an active limit the lease
    holds nothing and ``limits`` is empty, so the client neither renews nor releases it.
    """
    ids = [limit_id_for(name) for name in dict.fromkeys(names)]
    async with store.reading() as tx:
        views = await load_limits(tx, ids)
    found = [views[i] for i in ids if i in views]
    active = [v for v in found if v.active]
    if any(v.limit < slots for v in active):
        raise InvalidAcquire("Slots requested is greater than the limit")
    if mode == "rate_limit":
        non_decaying = [v.name for v in active if v.slot_decay_per_second == 0.0]
        if non_decaying:
            raise InvalidAcquire(
                "Only concurrency limits with slot decay can be used for rate limiting. The following "
                f"limits do not have a decay configured: {','.join(non_decaying)!r}"
            )
        if active:
            # Slots that decay instead of being released: not modelled yet. With no active
            # limit named there is nothing to take, and the lease is granted as Prefect grants it.
            raise InvalidAcquire("Rate limits (slot decay) are not supported by this server")
    lease_id = uuid.uuid4()
    duration = timedelta(seconds=lease_duration)

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], AcquireOutcome]:
        live = _live(view)
        if live is None or not live.active:
            return [], "absent"  # deleted or deactivated meanwhile: it limits nothing now
        now = clock()
        if live.active_slots(now) + slots > live.limit:
            return [], "full"
        expired = [_release_event(live, lease.lease_id, "expired", now) for lease in live.expired(now)]
        return [*expired, _acquired_event(live, lease_id, slots, holder, now, duration)], "taken"

    taken: list[UUID] = []
    try:
        for view in sorted(active, key=lambda v: str(v.id)):
            outcome, current = await _command(store, view.id, decide, clock)
            if outcome == "full":
                assert current is not None
                await _release_on(store, lease_id, taken, "rolled_back", clock)
                return Locked(current, retry_after(current, slots))
            if outcome == "taken":
                taken.append(view.id)
    except Busy:
        await _release_on(store, lease_id, taken, "rolled_back", clock)
        return Locked(view, MIN_RETRY_SECONDS)
    return Granted(lease_id, found if taken else [])


async def _release_on(
    store: EventStore, lease_id: UUID, limit_ids: Sequence[UUID], reason: ReleaseReason, clock: Clock
) -> int:
    """Free the lease's slots on each of the limits, in order; how many were still held."""

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], int]:
        if view is None or lease_id not in view.leases:
            return [], 0
        return [_release_event(view, lease_id, reason, clock())], 1

    freed = 0
    for limit_id in limit_ids:
        count, _view = await _command(store, limit_id, decide, clock)
        freed += count
    return freed


async def _limits_of(store: EventStore, lease_id: UUID) -> list[UUID]:
    async with store.reading() as tx:
        return await lease_limit_ids(tx, lease_id)


async def release(store: EventStore, lease_id: UUID, *, clock: Clock = system_clock) -> int:
    """The holder gives the lease back; an unknown or already freed lease is a no-op."""
    return await _release_on(store, lease_id, await _limits_of(store, lease_id), "released", clock)


async def renew(store: EventStore, lease_id: UUID, lease_duration: float, *, clock: Clock = system_clock) -> bool:
    """Extend the lease to ``lease_duration`` seconds from now on every limit it holds.

    False (Prefect's 410) when the lease is unknown, released, or expired on any of its limits;
    an expired lease is released on all of them then, since its holder no longer owns it.
    """
    limit_ids = await _limits_of(store, lease_id)
    if not limit_ids:
        return False
    duration = timedelta(seconds=lease_duration)

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], bool]:
        lease = view.leases.get(lease_id) if view is not None else None
        if view is None or lease is None:
            return [], False
        now = clock()
        if lease.expired(now):
            return [_release_event(view, lease_id, "expired", now)], False
        return [catalogue.ConcurrencyLeaseRenewed(limit_id=view.id, lease_id=lease_id, expires_at=now + duration)], True

    for limit_id in limit_ids:
        renewed, _view = await _command(store, limit_id, decide, clock)
        if not renewed:
            await _release_on(store, lease_id, limit_ids, "expired", clock)
            return False
    return True


async def expire_leases(store: EventStore, *, clock: Clock = system_clock) -> int:
    """Record the release of every lease past its expiry; how many (lease, limit) holds."""
    async with store.reading() as tx:
        limit_ids = await limits_with_expired_leases(tx, clock())

    def decide(view: LimitView | None) -> tuple[list[catalogue.Event], int]:
        if view is None:
            return [], 0
        now = clock()
        expired = [_release_event(view, lease.lease_id, "expired", now) for lease in view.expired(now)]
        return list(expired), len(expired)

    total = 0
    for limit_id in limit_ids:
        count, _view = await _command(store, limit_id, decide, clock)
        total += count
    return total


__all__ = [
    "TAG_PREFIX",
    "Granted",
    "InvalidAcquire",
    "LimitExists",
    "Locked",
    "acquire",
    "create_limit",
    "delete_limit",
    "expire_leases",
    "list_limits",
    "read_limit",
    "read_limit_by_name",
    "release",
    "renew",
    "reset_limit",
    "retry_after",
    "update_limit",
    "upsert_limit",
]
