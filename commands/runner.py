"""The one runner for background work: every loop the server runs is a step function run here.

A service is a name, an interval and a step: an async function given "now" (from the injected
clock) that does one round of work and returns. The runner owns everything around the step:

- the interval between rounds, and a clean stop that lets a running round finish;
- error backoff: a failed round is logged and the next waits twice as long (up to a ceiling),
  so a database outage is not hammered, and the first good round resets the wait;
- leader election for singleton services: before each round the runner campaigns through the
  store (a PostgreSQL advisory lock on a connection of its own; always the leader on SQLite),
  so with several server processes exactly one runs the round, and when the leader dies another
  takes over at its next campaign.

A service may carry a ``Wakeup``: calling it ends the wait for the next round at once (the
dispatcher is woken so when a delivery is scheduled), with the interval as the fallback.

A step is tested by calling it once with a fixed time; the runner is tested with a ManualClock
and steps that record their calls. Nothing else in the server starts a background loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Counter, Gauge

from runlog.eventstore import EventStore, Leadership, StorageUnavailable

from .clock import Clock, system_clock

log = structlog.get_logger("runlog.services")

Step = Callable[[datetime], Awaitable[object]]

MAX_BACKOFF_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0

# Prometheus instruments (exposed by api/metrics.py). The pid label says which process leads.
# In multiprocess mode "liveall" keeps one series per process (the library adds the same pid
# label) and drops a dead process's (api/server.py marks it dead).
SERVICE_LEADING = Gauge(
    "runlog_service_leading", "1 while this process leads the service (runs its rounds), else 0",
    ("service", "pid"), multiprocess_mode="liveall",
)
SERVICE_LAST_RUN = Gauge(
    "runlog_service_last_run_timestamp_seconds", "When the service's last good round ran (the clock's time)",
    ("service",), multiprocess_mode="max",
)
SERVICE_ERRORS = Counter("runlog_service_errors", "Service rounds that failed", ("service",))


class Wakeup:
    """Starts a service's next round now instead of at the end of its interval.

    A wake-up that comes while a round runs is kept, so the round after it starts at once: no
    wake-up is lost between a round's read and its end.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        """Until the next wake-up, which it takes: a service's ``wake``. A wake-up that came
        while nobody waited is waiting already, so the call returns at once."""
        await self._event.wait()
        self._event.clear()


@dataclass(frozen=True)
class Service:
    name: str
    step: Step
    interval: float
    singleton: bool = True
    """Run by one process at a time across every server on the database (leader-elected)."""
    wake: Callable[[], Awaitable[object]] | None = None
    """Ends the wait between rounds early when it returns (a log subscription's next event),
    so a service that follows the log runs as soon as there is something to do; ``interval``
    is then the longest wait."""


async def finish_or_cancel(tasks: Sequence[asyncio.Task[Any]], timeout: float) -> None:
    """Let ``tasks`` end by themselves for up to ``timeout`` seconds, then cancel the rest."""
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class ServiceRunner:
    """Runs services until stopped; ``async with ServiceRunner(store, services): ...``."""

    def __init__(
        self,
        store: EventStore,
        services: Sequence[Service],
        *,
        clock: Clock = system_clock,
        max_backoff: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self._store = store
        self._services = tuple(services)
        self._clock = clock
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.leading: dict[str, bool] = {s.name: False for s in services}
        """Whether this process ran the service's last round (leads it), by service name."""
        self._campaigned: set[str] = set()

    @property
    def running(self) -> bool:
        """Whether any service's loop is still going (False once stop() has returned)."""
        return any(not task.done() for task in self._tasks)

    async def __aenter__(self) -> ServiceRunner:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("the service runner is already running")
        self._tasks = [
            asyncio.create_task(self._run(service), name=f"runlog-service-{service.name}")
            for service in self._services
        ]

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Let each running round finish (up to ``timeout`` seconds), then stop. Idempotent."""
        self._stopping.set()  # ends every wait at once (see _sleep); the loops then see the stop
        await finish_or_cancel(self._tasks, timeout)

    async def _run(self, service: Service) -> None:
        leadership = self._store.leadership(service.name) if service.singleton else None
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    if await self._lead(service, leadership):
                        now = self._clock()
                        await service.step(now)
                        SERVICE_LAST_RUN.labels(service.name).set(now.timestamp())
                    failures = 0
                    wait = service.interval
                except Exception as exc:  # noqa: BLE001 - one failed round must not end the service
                    failures += 1
                    SERVICE_ERRORS.labels(service.name).inc()
                    wait = min(service.interval * 2**failures, self._max_backoff)
                    if isinstance(exc, StorageUnavailable):
                        log.warning("service_round_failed", service=service.name, error=str(exc), retry_in=wait)
                    else:
                        log.exception("service_round_failed", service=service.name, retry_in=wait)
                # Only a leader that just did a good round is woken early: a follower waits for
                # its next campaign, and a failing service for its backoff.
                woken = failures == 0 and self.leading[service.name]
                await self._sleep(wait, service.wake if woken else None)
        finally:
            if leadership is not None:
                with contextlib.suppress(Exception):
                    await leadership.resign()
            if self.leading[service.name]:
                self.leading[service.name] = False
                SERVICE_LEADING.labels(service.name, str(os.getpid())).set(0)
                log.info("service_resigned", service=service.name, pid=os.getpid())

    async def _lead(self, service: Service, leadership: Leadership | None) -> bool:
        try:
            leading = True if leadership is None else await leadership.campaign()
        except BaseException:
            self._set_leading(service, False)
            raise
        self._set_leading(service, leading)
        return leading

    def _set_leading(self, service: Service, leading: bool) -> None:
        if service.name not in self._campaigned:
            self._campaigned.add(service.name)
            SERVICE_LEADING.labels(service.name, str(os.getpid())).set(1 if leading else 0)  # a follower shows 0
            if not leading:
                log.info("service_following", service=service.name, pid=os.getpid())
        if leading == self.leading[service.name]:
            return
        self.leading[service.name] = leading
        SERVICE_LEADING.labels(service.name, str(os.getpid())).set(1 if leading else 0)
        if leading:
            log.info("service_leading", service=service.name, pid=os.getpid())
        else:
            log.warning("service_lead_lost", service=service.name, pid=os.getpid())

    async def _sleep(self, seconds: float, wake: Callable[[], Awaitable[object]] | None = None) -> None:
        """Wait for the next round; a stop ends the wait at once, and so does ``wake`` returning."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            for waiting in waits:
                # A wake-up that failed (the database away) only ends the wait; the round says why.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiting


__all__ = ["Service", "ServiceRunner", "Step", "Wakeup", "finish_or_cancel"]
