"""The dispatcher: finds due deliveries and sends them, a step on the one service runner.

Each round (``step``) reads the deliveries whose next attempt is due, gives up those past their
maximum age, and hands the others to their channel's queue (queues.py), where the channel's
workers send them at the channel's pace and record each attempt through the delivery commands.
The round itself only reads and enqueues, so it is quick; the sends go on between rounds. A
delivery handed to a queue is remembered until its attempt is recorded, so a later round does
not take it twice. No transaction is held across an HTTP call: the due read ends before any send
and an attempt is recorded in its own short append.

``wake()`` starts the next round at once (call it after scheduling a delivery); the runner's
interval covers retries that come due and deliveries scheduled by another process.

Several processes: the service is a singleton, so only the leader (a PostgreSQL advisory lock)
runs rounds and sends. An attempt is recorded against the delivery's version read when it was
taken, so two senders can never both record attempt N. The one window for a duplicate is
between a send and its record: if the process dies (or loses its database) after the receiver
got the request and before the attempt is recorded, the delivery is still due and is sent again
by whoever leads next. A process that loses the lead without dying finishes the sends it has
started, which can overlap the new leader's first round in the same way.

Stopping (``aclose``): sends under way may finish for a while, then are cancelled; whatever was
not recorded is still pending in the log, and is sent after the restart.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from uuid import UUID

import structlog
from prometheus_client import Counter

from runlog.commands import deliveries as commands
from runlog.commands.clock import Clock, system_clock
from runlog.commands.deliveries import AttemptRecord, RetryPolicy
from runlog.commands.runner import Service, Wakeup, finish_or_cancel
from runlog.eventstore import EventStore
from runlog.projections import deliveries as model
from runlog.projections.deliveries import DeliveryView

from .limits import DEFAULT_LIMITS, ChannelLimits, Pacer, limits_for
from .queues import ChannelQueue
from .seams import RETRY, Attempt, ChannelLoader, Message, Sender

log = structlog.get_logger("runlog.notifier")

# Exposed by api/metrics.py; the deliveries waiting, sent and dead by channel are read from the
# deliveries table at scrape time instead.
DELIVERY_ATTEMPTS = Counter(
    "runlog_notifier_delivery_attempts", "Delivery attempts sent, by channel kind and outcome (sent, retry, ...)",
    ("channel_kind", "outcome"),
)

SERVICE_NAME = "notifier_dispatch"
INTERVAL_SECONDS = 1.0
"""How often due retries are looked for without a wake-up (backoffs are seconds or longer)."""
BATCH = 500
"""Deliveries taken per round at most; a longer backlog is taken over the next rounds."""
STOP_TIMEOUT_SECONDS = 10.0


class Dispatcher:
    def __init__(
        self, store: EventStore, sender: Sender, loader: ChannelLoader, *, clock: Clock = system_clock,
        policy: RetryPolicy = RetryPolicy(), draw: Callable[[], float] = random.random,
        limits: Mapping[str, ChannelLimits] = DEFAULT_LIMITS, interval: float = INTERVAL_SECONDS,
        batch: int = BATCH, monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._sender = sender
        self._loader = loader
        self._clock = clock
        self.policy = policy
        self._draw = draw
        self._limits = limits
        self._interval = interval
        self._batch = batch
        self._monotonic = monotonic
        self._sleep = sleep
        self._queues: dict[UUID, ChannelQueue] = {}
        self._taken: set[UUID] = set()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._recording: set[asyncio.Task[None]] = set()
        self._read_windows: list[set[UUID]] = []
        self._closed = False
        self.wakeup = Wakeup()

    def wake(self) -> None:
        """Start the next round now: a delivery was scheduled or replayed."""
        self.wakeup()

    def service(self) -> Service:
        return Service(name=SERVICE_NAME, step=self.step, interval=self._interval, singleton=True,
                       wake=self.wakeup.wait)

    @property
    def in_flight(self) -> int:
        """Deliveries taken and not yet recorded (queued or being sent)."""
        return len(self._taken)

    async def idle(self) -> None:
        """Until every delivery taken so far has its attempt recorded (or was left pending)."""
        await self._quiet.wait()

    async def step(self, now: datetime) -> int:
        """One round: take the due deliveries; how many were handed to channel queues."""
        if self._closed:
            return 0
        # A delivery recorded while this round runs may have been read as it was before its
        # record: it is released from _taken meanwhile, so the ids released during the round are
        # kept aside, or the stale copy would be taken and sent again.
        released: set[UUID] = set()
        self._read_windows.append(released)
        try:
            async with self._store.reading() as tx:
                due = await model.due(tx, now, self._batch + len(self._taken))
            return await self._take(due, now, released)
        finally:
            self._read_windows.remove(released)

    async def _take(self, due: list[DeliveryView], now: datetime, released: set[UUID]) -> int:
        queued = 0
        for view in due:
            if view.id in self._taken or view.id in released:
                continue
            if now >= view.age_from + self.policy.max_age:
                reason = commands.expired_reason(self.policy, len(view.attempts))
                await commands.dead_letter(self._store, view.id, reason, clock=lambda: now)
                continue
            if view.scheduled.resolves is not None and not await self._alert_opened(view, now):
                continue
            queue = await self._queue(view.channel_id)
            if queue is None:
                await commands.dead_letter(self._store, view.id, "the channel no longer exists", clock=lambda: now)
                continue
            self._taken.add(view.id)
            self._quiet.clear()
            queue.put(view)
            queued += 1
        return queued

    async def _alert_opened(self, view: DeliveryView, now: datetime) -> bool:
        """A resolve may go once the delivery that opened its alert was sent. While that one
        still waits (or is being sent) the resolve waits too: sent first, it would close
        nothing and the alert would then stay open. An original given up opened nothing, so its
        resolve is given up with it."""
        assert view.scheduled.resolves is not None
        async with self._store.reading() as tx:
            original = await model.get(tx, view.scheduled.resolves)
        if original is not None and original.status == model.SENT:
            return True
        if original is None or original.status == model.DEAD:
            reason = "the alert it resolves was never delivered"
            await commands.dead_letter(self._store, view.id, reason, clock=lambda: now)
        return False

    async def _queue(self, channel_id: UUID) -> ChannelQueue | None:
        queue = self._queues.get(channel_id)
        if queue is not None:
            return queue
        channel = await self._loader(channel_id)
        if channel is None:
            return None
        limits = limits_for(channel.kind, self._limits)
        queue = ChannelQueue(
            channel_id, limits, self._deliver, Pacer(limits.rate, monotonic=self._monotonic, sleep=self._sleep),
        )
        self._queues[channel_id] = queue
        return queue

    async def _deliver(self, view: DeliveryView) -> None:
        """Send one delivery (a channel worker's part), then record the attempt in a task of its
        own, so the channel's next send need not wait for the append. Never raises: a delivery
        whose attempt is not recorded stays due."""
        recording = False
        try:
            channel = await self._loader(view.channel_id)
            if channel is None:
                await commands.dead_letter(self._store, view.id, "the channel no longer exists", clock=self._clock)
                return
            started = self._clock()
            message = Message(view.scheduled.subject, view.scheduled.body)
            try:
                attempt = await self._sender(
                    channel.kind, channel.data, message, delivery_id=view.id, now=started,
                    resolve=view.scheduled.resolve, alert_key=_alert_key(view),
                    skip_parts=frozenset(view.parts_sent),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a sender's bug is a failed attempt, retried
                log.exception("delivery_sender_failed", delivery_id=str(view.id), kind=channel.kind)
                attempt = Attempt(RETRY, error=f"the sender failed ({type(exc).__name__})")
            DELIVERY_ATTEMPTS.labels(channel.kind, attempt.outcome).inc()
            record = AttemptRecord(
                started=started, finished=self._clock(), outcome=attempt.outcome, status_code=attempt.status_code,
                retry_after=attempt.retry_after, excerpt=attempt.excerpt, error=attempt.error,
                parts_sent=attempt.parts_sent,
            )
            task = asyncio.create_task(self._record(view, record), name=f"runlog-record-{view.id}")
            self._recording.add(task)
            task.add_done_callback(self._recording.discard)
            recording = True
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - e.g. the database is down: the delivery stays due
            log.exception("delivery_not_sent", delivery_id=str(view.id))
        finally:
            if not recording:
                self._release(view.id)

    async def _record(self, view: DeliveryView, record: AttemptRecord) -> None:
        try:
            after = await commands.record_attempt(
                self._store, view, record, policy=self.policy, draw=self._draw, clock=self._clock,
            )
            if after is None:
                log.warning("delivery_attempt_superseded", delivery_id=str(view.id), attempt=len(view.attempts) + 1)
            else:
                log.info("delivery_attempted", delivery_id=str(view.id), channel_id=str(view.channel_id),
                         attempt=len(after.attempts), outcome=record.outcome, status_code=record.status_code,
                         status=after.status)
        except Exception:  # noqa: BLE001 - the send stays unrecorded: the delivery is due again
            log.exception("delivery_not_recorded", delivery_id=str(view.id))
        finally:
            self._release(view.id)

    def _release(self, delivery_id: UUID) -> None:
        self._taken.discard(delivery_id)
        for window in self._read_windows:
            window.add(delivery_id)
        if not self._taken:
            self._quiet.set()

    async def aclose(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop sending: see the module's docstring. Idempotent."""
        if self._closed:
            return
        self._closed = True
        queues = list(self._queues.values())
        left = await asyncio.gather(*(queue.close(timeout) for queue in queues))
        for view in (v for views in left for v in views):
            self._release(view.id)
        # Records of sends that were made: short appends, and each one spares a duplicate send.
        await finish_or_cancel(list(self._recording), timeout)
        self._taken.clear()
        self._quiet.set()
        await self._sender.aclose()  # its HTTP session: no send can start any more


def _alert_key(view: DeliveryView) -> str | None:
    """The key of the alert a resolve closes: its original delivery's id, the key that
    delivery's alert was opened under (PagerDuty ``dedup_key``, Opsgenie ``alias``)."""
    resolves = view.scheduled.resolves
    return str(resolves) if resolves is not None else None


__all__ = ["INTERVAL_SECONDS", "SERVICE_NAME", "Dispatcher"]
