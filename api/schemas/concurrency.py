"""Bodies of /concurrency_limits (v1, tag limits) and /v2/concurrency_limits (limits, leases)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

# Bounded to what the databases' 64-bit integer columns hold: a larger number is a 422, not an
# overflow (a 500).
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
# Prefect's Name: no "/", "%", "&", ">" or "<".
Name = Annotated[str, msgspec.Meta(pattern=r"^[^/%&><]+$")]
LeaseDuration = Annotated[float, msgspec.Meta(ge=60, le=86_400)]


class Pagination(msgspec.Struct, kw_only=True):
    limit: NonNegativeInt | None = None
    offset: NonNegativeInt = 0


# -- v1: tag limits -----------------------------------------------------------------------------


class TagLimitCreate(msgspec.Struct, kw_only=True):
    # Not empty (Prefect takes ""): a limit on the empty tag could never be read, reset or
    # deleted through /concurrency_limits/tag/{tag}.
    tag: Annotated[str, msgspec.Meta(min_length=1)]
    concurrency_limit: NonNegativeInt


class TagLimit(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    tag: str
    concurrency_limit: int
    active_slots: list[UUID]


class TagLimitReset(msgspec.Struct, kw_only=True):
    slot_override: list[UUID] | None = None


# -- v2: limits ---------------------------------------------------------------------------------


class LimitCreate(msgspec.Struct, kw_only=True):
    active: bool = True
    name: Name
    limit: NonNegativeInt
    # Accepted for Prefect's sake; slots here are only ever taken by leases.
    active_slots: NonNegativeInt = 0
    denied_slots: NonNegativeInt = 0
    slot_decay_per_second: NonNegativeFloat = 0.0


class LimitUpdate(msgspec.Struct, kw_only=True):
    active: bool | None = None
    name: Name | None = None
    limit: NonNegativeInt | None = None
    active_slots: NonNegativeInt | None = None
    denied_slots: NonNegativeInt | None = None
    slot_decay_per_second: NonNegativeFloat | None = None


class Limit(msgspec.Struct, kw_only=True):
    """Prefect's ConcurrencyLimitV2, a superset of its GlobalConcurrencyLimitResponse."""

    id: UUID
    created: datetime
    updated: datetime
    active: bool
    name: str
    limit: int
    active_slots: int
    denied_slots: int
    slot_decay_per_second: float
    avg_slot_occupancy_seconds: float


# -- v2: leases ---------------------------------------------------------------------------------


class LeaseHolder(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Prefect's ConcurrencyLeaseHolder, which forbids extra fields."""

    type: Literal["flow_run", "task_run", "deployment"]
    id: UUID


class IncrementWithLease(msgspec.Struct, kw_only=True):
    slots: Annotated[int, msgspec.Meta(gt=0)]
    names: Annotated[list[str], msgspec.Meta(min_length=1)]
    mode: Literal["concurrency", "rate_limit"] = "concurrency"
    lease_duration: LeaseDuration = 300.0
    holder: LeaseHolder | None = None


class MinimalLimit(msgspec.Struct, kw_only=True):
    id: UUID
    name: str
    limit: int


class LeaseGranted(msgspec.Struct, kw_only=True):
    lease_id: UUID
    limits: list[MinimalLimit]


class DecrementWithLease(msgspec.Struct, kw_only=True):
    lease_id: UUID


class RenewLease(msgspec.Struct, kw_only=True):
    lease_duration: LeaseDuration = 300.0
