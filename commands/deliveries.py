"""The notifier's delivery commands: schedule, record an attempt, dead-letter, replay.

Every delivery is its own stream, delivery-<id>. Its id is derived from what it answers (the
triggering event, the rule, the action's index) and scheduling appends with "no stream yet"
expected, so a replayed or redelivered triggering event collapses onto the delivery already
recorded instead of sending twice.

An attempt is recorded against the version the dispatcher read when it took the delivery,
without deciding again on a conflict: if anything else recorded in between (another dispatcher
that sent the same attempt), this record is dropped, so attempt N is recorded once.

The retry policy is a pure function of the attempt, the delivery and a uniform draw: timeouts,
connection errors, 408/425/5xx ("retry") wait a jittered exponential backoff; a receiver's
Retry-After (429/503) is honoured as given; other 4xx ("permanent") and 404/410 ("gone") are
dead letters at once; a delivery whose next attempt would fall past its maximum age is dead.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from runlog.eventstore import ConcurrencyError, EventStore
from runlog.projections import deliveries as model
from runlog.projections.deliveries import DeliveryView, evolve_delivery
from runlog.schema import events as catalogue
from runlog.schema import streams

from .clock import Clock, system_clock
from .errors import Conflict, NotFound
from .executor import Command, Decided, Executor, no_view

NAMESPACE = uuid.UUID("5b0e2a44-7d1c-4f0a-9a57-64656c697679")
"""Namespace of delivery ids (uuid5): fixed forever, or old deliveries would be scheduled again."""

SENT = "sent"
RETRY = "retry"
PERMANENT = "permanent"
GONE = "gone"
OUTCOMES = (SENT, RETRY, PERMANENT, GONE)

DEFAULT_MAX_AGE = timedelta(hours=24)


def delivery_id_for(event_id: UUID, rule_id: UUID, action_index: int) -> UUID:
    """The one delivery of a rule's action for a triggering event."""
    return uuid.uuid5(NAMESPACE, f"{event_id}/{rule_id}/{action_index}")


def resolve_id_for(original_id: UUID) -> UUID:
    """The one delivery that resolves the alert another delivery opened."""
    return uuid.uuid5(NAMESPACE, f"{original_id}/resolve")


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up.

    The backoff is exponential with jitter, ``min(max_backoff, base * factor**(n-1)) * U(0.5, 1)``
    after the n-th failed attempt (5 s, 15 s, 45 s, ... up to an hour): close to the Standard
    Webhooks schedule, shortened because run alerts go stale. ``base`` and ``max_backoff`` are
    settings (RUNLOG_NOTIFIER_RETRY_BACKOFF, _MAX_BACKOFF). A receiver's Retry-After is honoured
    as given, clamped to [min_retry_after, cap] so that a 0 cannot make a busy loop; it is not
    shortened by ``max_backoff``, which only bounds runlog's own guesses.
    """

    base: float = 5.0
    factor: float = 3.0
    cap: float = 3600.0
    min_retry_after: float = 1.0
    max_age: timedelta = DEFAULT_MAX_AGE
    max_backoff: float = 3600.0

    def backoff(self, failures: int, draw: float) -> float:
        """Seconds to wait after ``failures`` failed attempts, for a uniform ``draw`` in [0, 1]."""
        exponent = min(max(failures - 1, 0), 64)  # past the cap anyway; keeps the power finite
        ceiling = min(self.cap, self.max_backoff, self.base * self.factor**exponent)
        return ceiling * (0.5 + 0.5 * min(max(draw, 0.0), 1.0))

    def delay(self, failures: int, retry_after: float | None, draw: float) -> float:
        if retry_after is not None:
            return min(max(retry_after, self.min_retry_after), self.cap)
        return self.backoff(failures, draw)


@dataclass(frozen=True)
class AttemptRecord:
    """What one send came to, as the dispatcher hands it over to be recorded."""

    started: datetime
    finished: datetime
    outcome: str
    status_code: int | None = None
    retry_after: float | None = None
    """Seconds the receiver asked to wait (Retry-After, Discord's retry_after), for a retry."""
    excerpt: str | None = None
    error: str | None = None
    parts_sent: tuple[str, ...] = ()
    """The recipients that have the message (part ids), for kinds that send one request each."""


async def read(store: EventStore, delivery_id: UUID) -> DeliveryView | None:
    async with store.reading() as tx:
        return await model.get(tx, delivery_id)


async def schedule(
    store: EventStore, *, rule_id: UUID, channel_id: UUID, event_id: UUID, subject: str, body: str,
    action_index: int = 0, rule_name: str | None = None, flow_run_id: UUID | None = None,
    occurred: datetime | None = None, clock: Clock = system_clock,
) -> tuple[DeliveryView, bool]:
    """The delivery of (event, rule, action), and whether this call scheduled it (False: it
    existed already, and nothing was written). ``occurred``: when the triggering event did."""
    command = schedule_command(
        rule_id=rule_id, channel_id=channel_id, event_id=event_id, subject=subject, body=body,
        action_index=action_index, rule_name=rule_name, flow_run_id=flow_run_id, occurred=occurred,
    )
    return await run_schedule(store, delivery_id_for(event_id, rule_id, action_index), command, clock)


def schedule_command(
    *, rule_id: UUID, channel_id: UUID, event_id: UUID, subject: str, body: str,
    action_index: int = 0, rule_name: str | None = None, flow_run_id: UUID | None = None,
    occurred: datetime | None = None,
) -> Command[DeliveryView, None]:
    """``schedule`` as a command, to be appended with others (Executor.execute_together): it
    conflicts when the delivery exists already."""
    delivery_id = delivery_id_for(event_id, rule_id, action_index)

    def scheduled(now: datetime) -> catalogue.DeliveryScheduled:
        return catalogue.DeliveryScheduled(
            delivery_id=delivery_id, rule_id=rule_id, rule_name=rule_name, action_index=action_index,
            channel_id=channel_id, event_id=event_id, flow_run_id=flow_run_id, subject=subject, body=body,
            scheduled_at=now, occurred=occurred,
        )

    return _schedule_command(delivery_id, scheduled)


async def schedule_resolve(
    store: EventStore, original: DeliveryView, *, event_id: UUID, subject: str, body: str,
    occurred: datetime | None = None, clock: Clock = system_clock,
) -> tuple[DeliveryView, bool]:
    """The delivery that resolves the alert ``original`` opened (same rule, action and channel;
    the alert's key is the original's id), answering ``event_id`` (the run's Completed); whether
    this call scheduled it. Its id is derived from the original's, so the run's completion
    matched again, or a second completion, collapses onto it."""
    delivery_id = resolve_id_for(original.id)
    first = original.scheduled

    def scheduled(now: datetime) -> catalogue.DeliveryScheduled:
        return catalogue.DeliveryScheduled(
            delivery_id=delivery_id, rule_id=first.rule_id, rule_name=first.rule_name,
            action_index=first.action_index, channel_id=first.channel_id, event_id=event_id,
            flow_run_id=first.flow_run_id, subject=subject, body=body, scheduled_at=now, resolve=True,
            resolves=original.id, occurred=occurred,
        )

    return await run_schedule(store, delivery_id, _schedule_command(delivery_id, scheduled), clock)


def _schedule_command(
    delivery_id: UUID, scheduled: Callable[[datetime], catalogue.DeliveryScheduled],
) -> Command[DeliveryView, None]:
    def decide(_view: None, now: datetime) -> Decided[None]:
        return Decided([scheduled(now)])

    return Command(streams.delivery(delivery_id), load=no_view, decide=decide, evolve=evolve_delivery)


async def run_schedule(
    store: EventStore, delivery_id: UUID, command: Command[DeliveryView, None], clock: Clock = system_clock,
) -> tuple[DeliveryView, bool]:
    """Run a ``schedule_command`` of ``delivery_id`` on its own: the delivery, and whether this
    call scheduled it."""
    try:
        outcome = await Executor(store, clock=clock).execute(
            command.stream_id, load=command.load, decide=command.decide, evolve=command.evolve, retry_conflicts=False,
        )
    except ConcurrencyError:
        existing = await read(store, delivery_id)
        assert existing is not None, "a delivery stream exists without its row"
        return existing, False
    assert outcome.view is not None
    return outcome.view, True


def decide_attempt(
    view: DeliveryView, attempt: AttemptRecord, policy: RetryPolicy, draw: float,
) -> list[catalogue.Event]:
    """The events that record ``attempt`` on ``view`` (pure): the attempt, and its consequence.
    A successful attempt is one event, the sending that carries it (DeliverySent.attempt)."""
    number = len(view.attempts) + 1
    next_attempt_at = None
    ending: catalogue.Event | None = None
    if attempt.outcome == SENT:
        pass  # the DeliverySent below, carrying the attempt
    elif attempt.outcome in (PERMANENT, GONE):
        ending = catalogue.DeliveryDeadLettered(delivery_id=view.id, reason=_failure(attempt), at=attempt.finished)
    else:
        candidate = attempt.finished + timedelta(seconds=policy.delay(number, attempt.retry_after, draw))
        if candidate > view.age_from + policy.max_age:
            reason = f"{expired_reason(policy, number)}; last: {_failure(attempt)}"
            ending = catalogue.DeliveryDeadLettered(delivery_id=view.id, reason=reason, at=attempt.finished)
        else:
            next_attempt_at = candidate
    attempted = catalogue.DeliveryAttempted(
        delivery_id=view.id, channel_id=view.channel_id, attempt=number, started=attempt.started,
        finished=attempt.finished, status_code=attempt.status_code, outcome=attempt.outcome, excerpt=attempt.excerpt,
        error=attempt.error, next_attempt_at=next_attempt_at, parts_sent=list(attempt.parts_sent),
    )
    if attempt.outcome == SENT:
        return [catalogue.DeliverySent(delivery_id=view.id, at=attempt.finished, attempt=attempted)]
    return [attempted] if ending is None else [attempted, ending]


async def record_attempt(
    store: EventStore, view: DeliveryView, attempt: AttemptRecord, *, policy: RetryPolicy = RetryPolicy(),
    draw: Callable[[], float] = random.random, clock: Clock = system_clock,
) -> DeliveryView | None:
    """Record ``attempt`` on the delivery as the dispatcher read it (``view``); the delivery after
    it, or None when the delivery changed since (another dispatcher recorded this attempt)."""
    if attempt.outcome not in OUTCOMES:
        raise ValueError(f"unknown attempt outcome {attempt.outcome!r}")

    async def as_read() -> DeliveryView:
        return view

    def decide(current: DeliveryView | None, _now: datetime) -> Decided[None]:
        assert current is not None
        return Decided(decide_attempt(current, attempt, policy, draw()))

    try:
        outcome = await Executor(store, clock=clock).execute(
            streams.delivery(view.id), load=as_read, decide=decide, evolve=evolve_delivery, retry_conflicts=False,
        )
    except ConcurrencyError:
        return None
    return outcome.view


async def dead_letter(
    store: EventStore, delivery_id: UUID, reason: str, *, clock: Clock = system_clock,
) -> DeliveryView | None:
    """Give up a delivery still waiting to be sent; the delivery after it (unchanged when it was
    no longer waiting), None when there is no such delivery."""

    def decide(view: DeliveryView | None, now: datetime) -> Decided[None]:
        if view is None or view.status not in model.WAITING:
            return Decided()
        return Decided([catalogue.DeliveryDeadLettered(delivery_id=delivery_id, reason=reason, at=now)])

    outcome = await Executor(store, clock=clock).execute(
        streams.delivery(delivery_id), load=lambda: read(store, delivery_id), decide=decide, evolve=evolve_delivery,
    )
    return outcome.view


async def replay(store: EventStore, delivery_id: UUID, *, clock: Clock = system_clock) -> DeliveryView:
    """Put a dead letter (or a delivery waiting for its next retry) back in the queue, due now,
    with its maximum age counted from now. Raises NotFound, or Conflict for a delivery that was
    sent or has not been tried yet."""

    def decide(view: DeliveryView | None, now: datetime) -> Decided[None]:
        if view is None:
            raise NotFound(f"Delivery {delivery_id} not found.")
        if view.status == model.SENT:
            raise Conflict(f"Delivery {delivery_id} was sent; only undelivered ones are retried.")
        if view.status == model.PENDING:
            raise Conflict(f"Delivery {delivery_id} is already waiting for its first attempt.")
        return Decided([catalogue.DeliveryReplayed(delivery_id=delivery_id, at=now)])

    outcome = await Executor(store, clock=clock).execute(
        streams.delivery(delivery_id), load=lambda: read(store, delivery_id), decide=decide, evolve=evolve_delivery,
    )
    assert outcome.view is not None
    return outcome.view


async def replay_dead(store: EventStore, *, clock: Clock = system_clock) -> list[UUID]:
    """Replay every dead letter; the ids replayed (one replayed meanwhile by someone else is skipped)."""
    async with store.reading() as tx:
        ids = await model.dead_ids(tx)
    replayed = []
    for delivery_id in ids:
        try:
            await replay(store, delivery_id, clock=clock)
        except Conflict:
            continue
        replayed.append(delivery_id)
    return replayed


def expired_reason(policy: RetryPolicy, attempts: int) -> str:
    """Why a delivery past its maximum age is dead, after ``attempts`` attempts."""
    tried = "never attempted" if attempts == 0 else f"{attempts} attempt{'s' if attempts != 1 else ''}"
    return f"not delivered within {_age(policy.max_age)} ({tried})"


def _failure(attempt: AttemptRecord) -> str:
    parts = [f"HTTP {attempt.status_code}"] if attempt.status_code is not None else []
    if attempt.error:
        parts.append(attempt.error)
    elif attempt.excerpt:
        parts.append(attempt.excerpt[:200])
    return ": ".join(parts) or attempt.outcome


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


__all__ = [
    "DEFAULT_MAX_AGE", "GONE", "OUTCOMES", "PERMANENT", "RETRY", "SENT",
    "AttemptRecord", "RetryPolicy", "dead_letter", "decide_attempt", "delivery_id_for", "expired_reason", "read", "record_attempt",
    "replay", "replay_dead", "resolve_id_for", "schedule", "schedule_resolve",
]
