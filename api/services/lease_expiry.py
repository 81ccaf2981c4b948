"""The lease sweeper: records the release of leases past their expiry (Prefect's Repossessor).

Acquisitions already treat an expired lease as free, so correctness never waits for this; the
sweeper records the "expired" releases nobody else has recorded, so that the log says where
every slot went and the views drop dead leases. Several server processes may each run one:
they meet on the limits' streams, where expected versions keep one expiry from being
recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from runlog.eventstore import EventStore, StorageUnavailable

from .. import keys
from runlog.commands.clock import Clock, system_clock

from .concurrency import expire_leases

log = structlog.get_logger("runlog.lease_expiry")

SWEEP_INTERVAL_SECONDS = 5.0
"""How often expired leases are looked for (Prefect's Repossessor runs every 15 s)."""


async def sweep_forever(store: EventStore, *, interval: float = SWEEP_INTERVAL_SECONDS, clock: Clock = system_clock) -> None:
    """Expire leases every ``interval`` seconds until cancelled; a failed round is retried."""
    while True:
        try:
            expired = await expire_leases(store, clock=clock)
            if expired:
                log.info("leases_expired", count=expired)
        except StorageUnavailable as exc:
            log.warning("lease_expiry_unavailable", error=str(exc))
        except Exception:
            log.exception("lease_expiry_failed")
        await asyncio.sleep(interval)


async def lease_expiry(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: runs the sweeper while the app runs. Needs the store's context first."""
    task = asyncio.create_task(sweep_forever(app[keys.STORE], clock=app[keys.CLOCK]), name="runlog-lease-expiry")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
