"""Standard Webhooks signing, checked with an independent implementation (the
``standardwebhooks`` package) and against the spec's published test vector."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from runlog.notifier.channels import signing
from runlog.notifier.channels.webhook import SIGNING_SECRET_KEY
from runlog.notifier.http import Outcome

from .helpers import DELIVERY, NOW, deliver


def test_the_specs_test_vector():
    # From the Standard Webhooks specification's reference implementations.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sig = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_whsec_and_usable():
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and secret != signing.new_secret()
    Webhook(secret)  # the independent implementation accepts it as a key


async def test_a_signed_request_verifies_and_keeps_its_id_across_retries(rcv, session):
    secret = signing.new_secret()
    data = {"name": "n", "url": rcv.url + "/in", "json_data": {"text": "{{body}}"},
            "secrets": {SIGNING_SECRET_KEY: secret}}
    rcv.script((500, {}, b""), (200, {}, b""))
    first = await deliver(session, "custom-webhook", data)
    second = await deliver(session, "custom-webhook", data)
    assert (first.outcome, second.outcome) == (Outcome.RETRY, Outcome.SENT)
    ids = {s.headers["webhook-id"] for s in rcv.seen}
    assert ids == {str(DELIVERY)}
    for seen in rcv.seen:
        stamp = int(seen.headers["webhook-timestamp"])
        assert stamp == int(NOW.timestamp())
        expected = Webhook(secret).sign(seen.headers["webhook-id"], datetime.fromtimestamp(stamp, UTC), seen.body)
        assert seen.headers["webhook-signature"] == expected
        # A receiver with another secret would refuse it.
        assert seen.headers["webhook-signature"] != Webhook(signing.new_secret()).sign(
            seen.headers["webhook-id"], datetime.fromtimestamp(stamp, UTC), seen.body)


async def test_rotation_sends_one_signature_per_secret(rcv, session):
    old, new = signing.new_secret(), signing.new_secret()
    data = {"name": "n", "url": rcv.url, "form_data": {"b": "{{body}}"}, "secrets": {SIGNING_SECRET_KEY: f"{old} {new}"}}
    await deliver(session, "custom-webhook", data)
    (seen,) = rcv.seen
    when = datetime.fromtimestamp(int(seen.headers["webhook-timestamp"]), UTC)
    assert seen.headers["webhook-signature"].split(" ") == [
        Webhook(old).sign(str(DELIVERY), when, seen.body), Webhook(new).sign(str(DELIVERY), when, seen.body)]


async def test_a_malformed_signing_secret_is_permanent_and_not_quoted(session):
    data = {"name": "n", "url": "http://127.0.0.1:1/", "secrets": {SIGNING_SECRET_KEY: "whsec_!!not base64!!"}}
    attempt = await deliver(session, "custom-webhook", data)
    assert attempt.outcome is Outcome.PERMANENT and "signing secret" in attempt.error
    assert "not base64!!" not in attempt.error
