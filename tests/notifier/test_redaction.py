"""No seeded secret ever appears in what an attempt records (its error, excerpt, target or
provider ref), even when the receiver echoes the whole request back, a redirect points at a
URL holding one, or the connection fails on a URL made of them."""

from __future__ import annotations

import base64
import socket
from urllib.parse import quote

import pytest

from runlog.notifier.http import Attempt, Outcome

from .helpers import deliver

SECRET = "s3cr3t-Zq9XvW2"  # one per field below, made distinct with a suffix


def secrets_of(kind: str, url: str) -> tuple[dict, list[str]]:
    """Block data for KIND pointing at URL, and every secret string it holds."""
    s = [f"{SECRET}-{i}" for i in range(3)]
    port = int(url.rsplit(":", 1)[1])
    data = {
        "slack-webhook": {"url": f"{url}/services/T0/B0/{s[0]}"},
        "ms-teams-webhook": {"url": f"{url}/workflows/w/triggers/manual/paths/invoke?api-version=1&sig={s[0]}"},
        "discord-webhook": {"webhook_id": s[0], "webhook_token": s[1]},
        "mattermost-webhook": {"hostname": "127.0.0.1", "port": port, "token": s[0]},
        "opsgenie-webhook": {"apikey": s[0]},
        "pager-duty-webhook": {"integration_key": s[0], "api_key": s[1]},
        "sendgrid-email": {"api_key": s[0], "sender_email": "a@b.c", "to_emails": ["d@e.f"]},
        "twilio-sms": {"account_sid": "AC1", "auth_token": s[0], "from_phone_number": "1", "to_phone_numbers": ["2"]},
        "custom-webhook": {"name": "n", "url": url + "/h/{{a}}?k={{b}}", "headers": {"Authorization": "Bearer {{c}}"},
                           "json_data": {"key": "{{a}}"}, "secrets": {"a": s[0], "b": s[1], "c": s[2]}},
    }[kind]
    seeded = list(s)
    if kind == "twilio-sms":
        seeded.append(base64.b64encode(f"AC1:{s[0]}".encode()).decode())
    return data, seeded


def echo(seen) -> bytes:
    """The request as an indiscreet receiver would quote it in an error."""
    head = [seen.raw_path, "?", "&".join(f"{k}={v}" for k, v in seen.query.items()), " ",
            seen.headers.get("Authorization", ""), " "]
    return "".join(head).encode() + seen.body


def assert_clean(attempt: Attempt, seeded: list[str]) -> None:
    recorded = " ".join(str(x) for x in (attempt.error, attempt.excerpt, attempt.target, attempt.provider_ref))
    for secret in seeded:
        for form in (secret, quote(secret, safe="")):
            assert form not in recorded, f"{form!r} leaked into {recorded!r}"


KINDS = ["slack-webhook", "ms-teams-webhook", "discord-webhook", "mattermost-webhook", "opsgenie-webhook",
         "pager-duty-webhook", "sendgrid-email", "twilio-sms", "custom-webhook"]


@pytest.mark.parametrize("kind", KINDS)
async def test_an_echoed_request_is_redacted(rcv, session, kind):
    data, seeded = secrets_of(kind, rcv.url)
    rcv.script((500, {}, echo))
    attempt = await deliver(session, kind, data, base=rcv.url)
    assert attempt.outcome is Outcome.RETRY
    # The test can fail: the echo did carry a secret within what the excerpt keeps.
    raw = echo(rcv.seen[0]).decode()[:1000]
    assert any(s in raw or quote(s, safe="") in raw for s in seeded)
    assert "********" in attempt.excerpt
    assert_clean(attempt, seeded)


@pytest.mark.parametrize("kind", ["slack-webhook", "discord-webhook", "custom-webhook"])
async def test_a_failed_connection_names_no_secret(session, kind):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        data, seeded = secrets_of(kind, url)
        attempt = await deliver(session, kind, data, base=url)
    assert attempt.outcome is Outcome.RETRY and attempt.error
    assert_clean(attempt, seeded)


async def test_a_redirect_to_a_secret_url_names_no_secret(rcv, session):
    data, seeded = secrets_of("custom-webhook", rcv.url)
    rcv.script((307, {"Location": f"{rcv.url}/next/{seeded[0]}?token={seeded[1]}"}, echo))
    attempt = await deliver(session, "custom-webhook", data)
    assert attempt.outcome is Outcome.PERMANENT
    assert_clean(attempt, seeded)


async def test_a_malformed_url_names_no_secret(session):
    data = {"name": "n", "url": "http://[::1/{{a}}", "secrets": {"a": SECRET}}
    attempt = await deliver(session, "custom-webhook", data)
    assert attempt.outcome is Outcome.PERMANENT
    assert_clean(attempt, [SECRET])
