"""How answers and failures are classified, against a real receiver: what is retried (and
after how long), what is permanent, what marks a channel gone; redirects, stalls, dropped
connections and endless bodies."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import timedelta

import pytest

from runlog.notifier.http import EXCERPT_LIMIT, Outcome

from .helpers import NOW, deliver
from .receiver import CLOSE, CUT, ENDLESS, SLOW_JSON, STALL


def hook(rcv) -> dict:
    return {"name": "n", "url": rcv.url + "/hook", "json_data": {"text": "{{body}}"}}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.SENT), (204, Outcome.SENT), (500, Outcome.RETRY), (502, Outcome.RETRY), (504, Outcome.RETRY),
     (408, Outcome.RETRY), (425, Outcome.RETRY), (400, Outcome.PERMANENT), (401, Outcome.PERMANENT),
     (403, Outcome.PERMANENT), (422, Outcome.PERMANENT), (404, Outcome.GONE), (410, Outcome.GONE)],
)
async def test_status_codes(rcv, session, status, outcome):
    rcv.script((status, {}, b""))
    attempt = await deliver(session, "custom-webhook", hook(rcv))
    assert (attempt.outcome, attempt.status, attempt.retry_after) == (outcome, status, None)
    assert (attempt.error is None) == (outcome is Outcome.SENT)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_in_seconds(rcv, session, status):
    rcv.script((status, {"Retry-After": "7"}, b""))
    attempt = await deliver(session, "custom-webhook", hook(rcv))
    assert (attempt.outcome, attempt.retry_after) == (Outcome.RETRY, 7.0)


async def test_retry_after_as_an_http_date_counts_from_the_given_now(rcv, session):
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    past = format_datetime(NOW - timedelta(seconds=90), usegmt=True)
    rcv.script((429, {"Retry-After": later}, b""), (503, {"Retry-After": past}, b""), (429, {"Retry-After": "soon"}, b""))
    assert (await deliver(session, "custom-webhook", hook(rcv))).retry_after == 90.0
    assert (await deliver(session, "custom-webhook", hook(rcv))).retry_after == 0.0
    unreadable = await deliver(session, "custom-webhook", hook(rcv))
    assert (unreadable.outcome, unreadable.retry_after) == (Outcome.RETRY, None)


async def test_a_redirect_is_not_followed(rcv, session):
    rcv.script((302, {"Location": rcv.url + "/elsewhere?token=abc"}, b""))
    attempt = await deliver(session, "custom-webhook", hook(rcv))
    assert attempt.outcome is Outcome.PERMANENT and attempt.status == 302
    assert "redirect not followed" in attempt.error and "token" not in attempt.error
    assert [s.path for s in rcv.seen] == ["/hook"]


async def test_a_stalled_receiver_times_out_as_a_retry(rcv, session):
    rcv.script(STALL)
    attempt = await deliver(session, "custom-webhook", hook(rcv), timeout=0.5)
    assert attempt.outcome is Outcome.RETRY and attempt.status is None
    assert "no answer within 0.5 s" in attempt.error
    assert 0.5 <= attempt.elapsed < 5


async def test_the_blocks_own_shorter_timeout_applies(rcv, session):
    rcv.script(STALL)
    attempt = await deliver(session, "custom-webhook", {**hook(rcv), "timeout": 0.3}, timeout=30)
    assert attempt.outcome is Outcome.RETRY and "0.3 s" in attempt.error


async def test_a_dropped_connection_is_a_retry(rcv, session):
    rcv.script(CLOSE)
    attempt = await deliver(session, "custom-webhook", hook(rcv))
    assert attempt.outcome is Outcome.RETRY and attempt.status is None
    assert "Disconnected" in attempt.error or "Connection" in attempt.error


async def test_a_refused_connection_is_a_retry(session):
    import socket

    with socket.socket() as s:  # a port nobody listens on: bound, never listened to
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        attempt = await deliver(session, "custom-webhook", {"name": "n", "url": f"http://127.0.0.1:{port}/x"})
    assert attempt.outcome is Outcome.RETRY and "Connect" in attempt.error


async def test_an_endless_body_is_read_only_up_to_the_cap(rcv, session):
    rcv.script(ENDLESS)
    # Reading it all would take until the timeout; the cap makes it return at once.
    attempt = await deliver(session, "custom-webhook", hook(rcv), timeout=5)
    assert attempt.outcome is Outcome.SENT and attempt.status == 200
    assert attempt.excerpt == "x" * EXCERPT_LIMIT


async def test_only_http_urls_are_accepted(session):
    for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://h/x"):
        attempt = await deliver(session, "custom-webhook", {"name": "n", "url": url})
        assert attempt.outcome is Outcome.PERMANENT and "http(s)" in attempt.error


async def test_a_channel_missing_a_field_is_permanent_and_named(session):
    attempt = await deliver(session, "slack", {})
    assert attempt.outcome is Outcome.PERMANENT and "'url'" in attempt.error
    attempt = await deliver(session, "no-such-kind", {})
    assert attempt.outcome is Outcome.PERMANENT and "unknown channel kind" in attempt.error


async def test_resolve_is_refused_for_kinds_that_cannot(session):
    with pytest.raises(ValueError, match="cannot resolve"):
        await deliver(session, "slack", {"url": "http://127.0.0.1:1/x"}, resolve=True)


async def test_a_body_cut_short_after_a_2xx_still_counts_as_sent(rcv, session):
    # Content-Length promises more than comes: the status was the receiver's answer.
    rcv.script(CUT)
    attempt = await deliver(session, "custom-webhook", hook(rcv))
    assert (attempt.outcome, attempt.status) == (Outcome.SENT, 200)


async def test_an_answer_arriving_in_pieces_is_read_whole_up_to_the_cap(rcv, session):
    rcv.script(SLOW_JSON)
    attempt = await deliver(session, "discord", {"webhook_id": "1", "webhook_token": "t"}, base=rcv.url)
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "42"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_allow_private_urls_false_keeps_to_public_addresses(rcv, session, host):
    port = rcv.url.rsplit(":", 1)[1]
    data = {**hook(rcv), "url": f"http://{host}:{port}/hook", "allow_private_urls": False}
    attempt = await deliver(session, "custom-webhook", data)
    assert attempt.outcome is Outcome.PERMANENT and "public addresses only" in attempt.error
    assert rcv.seen == []
    # The same channel allowed private addresses (Prefect's default) reaches the receiver.
    if host != "[::1]":  # the receiver listens on IPv4 only
        attempt = await deliver(session, "custom-webhook", {**data, "allow_private_urls": True})
        assert attempt.outcome is Outcome.SENT and len(rcv.seen) == 1


async def test_without_retry_after_the_rate_limit_headers_say_when(rcv, session):
    reset = str(int(NOW.timestamp()) + 42)
    rcv.script((429, {"X-RateLimit-Reset-After": "2.5", "X-RateLimit-Reset": reset}, b""),
               (429, {"X-RateLimit-Reset": reset}, b""), (429, {"X-RateLimit-Reset": "later"}, b""))
    assert (await deliver(session, "custom-webhook", hook(rcv))).retry_after == 2.5
    assert (await deliver(session, "sendgrid", {"api_key": "k", "sender_email": "a@b.c", "to_emails": ["d@e.f"]},
                          base=rcv.url)).retry_after == 42.0
    assert (await deliver(session, "custom-webhook", hook(rcv))).retry_after is None


async def test_a_header_that_would_split_the_request_is_refused(rcv, session):
    data = {**hook(rcv), "headers": {"X-Note": "a\r\nX-Injected: 1"}}
    attempt = await deliver(session, "custom-webhook", data)
    assert attempt.outcome is Outcome.PERMANENT and rcv.seen == []
