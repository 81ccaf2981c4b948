"""The pure parts: the retry policy, how an attempt is recorded, the webhook's answer
classification and Retry-After, and the pacer; table-driven, no database, no sleeping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.commands.deliveries import AttemptRecord, RetryPolicy, decide_attempt, delivery_id_for
from runlog.notifier.limits import DEFAULT_LIMITS, FALLBACK_LIMITS, Pacer, limits_for
from runlog.notifier.seams import Attempt
from runlog.notifier.webhook import classify, retry_after
from runlog.projections.deliveries import DeliveryView, evolve_delivery
from runlog.schema import events as catalogue

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("failures", "draw", "seconds"), [
    (1, 1.0, 5.0), (1, 0.0, 2.5), (2, 1.0, 15.0), (3, 1.0, 45.0), (7, 1.0, 3600.0), (500, 1.0, 3600.0),
    (3, 0.5, 33.75),
])
def test_backoff_is_exponential_jittered_and_capped(failures, draw, seconds):
    assert RetryPolicy().backoff(failures, draw) == pytest.approx(seconds)


@pytest.mark.parametrize(("asked", "seconds"), [(7.0, 7.0), (0.0, 1.0), (10**6, 3600.0)])
def test_retry_after_is_honoured_within_bounds(asked, seconds):
    assert RetryPolicy().delay(1, asked, draw=0.0) == seconds


@pytest.mark.parametrize(("failures", "draw", "seconds"), [
    (1, 1.0, 1.0), (2, 1.0, 3.0), (3, 1.0, 4.0), (30, 1.0, 4.0), (3, 0.0, 2.0),
])
def test_the_backoff_settings_set_the_first_wait_and_the_longest(failures, draw, seconds):
    assert RetryPolicy(base=1.0, max_backoff=4.0).backoff(failures, draw) == pytest.approx(seconds)


def test_the_longest_backoff_does_not_shorten_a_retry_after():
    assert RetryPolicy(base=1.0, max_backoff=4.0).delay(1, 60.0, draw=1.0) == 60.0


def view(**changes) -> DeliveryView:
    scheduled = catalogue.DeliveryScheduled(
        delivery_id=uuid.uuid4(), rule_id=uuid.uuid4(), channel_id=uuid.uuid4(), event_id=uuid.uuid4(), scheduled_at=NOW,
    )
    return DeliveryView(scheduled=scheduled, age_from=NOW, updated=NOW, version=1, **changes)


def attempt(outcome: str, **fields) -> AttemptRecord:
    at = fields.pop("at", NOW)
    return AttemptRecord(started=at, finished=at, outcome=outcome, **fields)


@pytest.mark.parametrize(("record", "ending", "next_in"), [
    (attempt("retry", status_code=500), None, 5.0),
    (attempt("retry", status_code=429, retry_after=30.0), None, 30.0),
    (attempt("retry", error="connection failed (ClientConnectorError)"), None, 5.0),
    (attempt("permanent", status_code=401, excerpt="invalid token"), catalogue.DeliveryDeadLettered, None),
    (attempt("gone", status_code=404), catalogue.DeliveryDeadLettered, None),
    (attempt("retry", status_code=503, at=NOW + timedelta(hours=23, minutes=59, seconds=58)),
     catalogue.DeliveryDeadLettered, None),
])
def test_an_attempt_is_recorded_with_its_consequence(record, ending, next_in):
    events = decide_attempt(view(), record, RetryPolicy(), draw=1.0)
    attempted = events[0]
    assert isinstance(attempted, catalogue.DeliveryAttempted) and attempted.attempt == 1
    assert [type(e) for e in events[1:]] == ([ending] if ending else [])
    expected = None if next_in is None else record.finished + timedelta(seconds=next_in)
    assert attempted.next_attempt_at == expected


def test_a_successful_attempt_is_one_event_the_sending_carrying_the_attempt():
    record = attempt("sent", status_code=200, excerpt="ok")
    (sent,) = decide_attempt(view(), record, RetryPolicy(), draw=1.0)
    assert isinstance(sent, catalogue.DeliverySent) and sent.at == record.finished
    carried = sent.attempt
    assert isinstance(carried, catalogue.DeliveryAttempted)
    assert (carried.attempt, carried.outcome, carried.status_code, carried.excerpt) == (1, "sent", 200, "ok")
    assert carried.next_attempt_at is None


def test_a_sending_carrying_its_attempt_folds_as_the_attempt_then_the_sending_did():
    """Logs written before the sending carried its attempt have a DeliveryAttempted and then a
    DeliverySent: both shapes make the same delivery (the attempt, its timings, sent)."""
    failed = attempt("retry", status_code=500)
    first = view(attempts=[])
    (retried,) = decide_attempt(first, failed, RetryPolicy(), draw=1.0)
    waiting = evolve_delivery(first, retried, 2)
    succeeded = attempt("sent", status_code=200, at=NOW + timedelta(seconds=5))
    (sent,) = decide_attempt(waiting, succeeded, RetryPolicy(), draw=1.0)
    now = evolve_delivery(waiting, sent, 3)
    before = evolve_delivery(evolve_delivery(waiting, sent.attempt, 3), catalogue.DeliverySent(
        delivery_id=sent.delivery_id, at=sent.at), 4)
    assert now.status == before.status == "sent"
    assert now.attempts == before.attempts and [a.outcome for a in now.attempts] == ["retry", "sent"]
    assert (now.sent_at, now.next_attempt_at, now.updated) == (before.sent_at, None, before.updated)


def test_dead_letter_reasons_say_what_happened():
    (_, dead) = decide_attempt(view(), attempt("permanent", status_code=401, excerpt="invalid token"), RetryPolicy(), 1)
    assert dead.reason == "HTTP 401: invalid token"
    late = attempt("retry", status_code=503, at=NOW + timedelta(hours=24))
    (_, expired) = decide_attempt(view(attempts=[]), late, RetryPolicy(), 1)
    assert expired.reason == "not delivered within 24 h (1 attempt); last: HTTP 503"


def test_delivery_ids_are_stable_per_event_rule_and_action():
    event, rule = uuid.uuid4(), uuid.uuid4()
    assert delivery_id_for(event, rule, 0) == delivery_id_for(event, rule, 0)
    assert len({delivery_id_for(event, rule, 0), delivery_id_for(event, rule, 1), delivery_id_for(uuid.uuid4(), rule, 0)}) == 3


@pytest.mark.parametrize(("status", "outcome"), [
    (200, "sent"), (202, "sent"), (204, "sent"), (301, "permanent"), (400, "permanent"), (401, "permanent"),
    (403, "permanent"), (404, "gone"), (408, "retry"), (410, "gone"), (413, "permanent"), (422, "permanent"),
    (425, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"),
])
def test_answers_are_classified(status, outcome):
    assert classify(status) == outcome


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 2.5 ", 2.5), ("-3", 0.0), ("Sun, 01 Mar 2026 12:01:30 GMT", 90.0),
    ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0), ("soon", None), ("", None), (None, None),
])
def test_retry_after_reads_seconds_and_http_dates(header, seconds):
    assert retry_after(header, NOW) == seconds


def test_an_unknown_outcome_is_refused():
    with pytest.raises(ValueError, match="unknown attempt outcome"):
        Attempt("maybe")


async def test_the_pacer_spaces_sends_at_its_rate():
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = Pacer(2.0, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await pacer.acquire()
    assert waits == [0.5, 1.0]
    now[0] += 10  # idle for a while: no debt carried over
    await pacer.acquire()
    assert waits == [0.5, 1.0]
    unpaced = Pacer(None, monotonic=lambda: now[0], sleep=sleep)
    await unpaced.acquire()
    assert waits == [0.5, 1.0]


def test_slack_is_paced_at_one_a_second_and_unknown_kinds_get_the_fallback():
    assert (limits_for("slack-webhook").concurrency, limits_for("slack-webhook").rate) == (1, 1.0)
    assert limits_for("carrier-pigeon") is FALLBACK_LIMITS
    assert all(1 <= limit.concurrency <= 4 for limit in DEFAULT_LIMITS.values())
