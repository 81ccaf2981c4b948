"""Lease expiry (Prefect's Repossessor) as a background service of the runner.

Acquisitions already treat an expired lease as free, so correctness never waits for this; the
service records the "expired" releases nobody else has recorded, so that the log says where
every slot went and the views drop dead leases. It is leader-elected: with several server
processes on one PostgreSQL database one of them runs it (and if two ever overlapped, they would
meet on the limits' streams, where expected versions keep one expiry from being recorded twice).
"""

from __future__ import annotations

from datetime import datetime

import structlog

from runlog.eventstore import EventStore

from .concurrency import expire_leases
from .runner import Service

log = structlog.get_logger("runlog.lease_expiry")

SWEEP_INTERVAL_SECONDS = 5.0
"""How often expired leases are looked for (Prefect's Repossessor runs every 15 s)."""


def lease_expiry_service(store: EventStore, *, interval: float = SWEEP_INTERVAL_SECONDS) -> Service:
    async def step(now: datetime) -> int:
        expired = await expire_leases(store, clock=lambda: now)
        if expired:
            log.info("leases_expired", count=expired)
        return expired

    return Service(name="lease_expiry", step=step, interval=interval)
