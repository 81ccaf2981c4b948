"""Each channel's request as the receiver sees it: method, path, auth, content type, body
fields; and what each counts as delivered. A real receiver on 127.0.0.1, no HTTP mocks."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest

from runlog.api.settings import load_settings
from runlog.notifier.channels import KINDS, RESOLVABLE, ChannelConfigError, channel_kind, check, destination
from runlog.notifier.http import Message, Outcome, part_id, send

from .helpers import DELIVERY, MESSAGE, NOW, deliver


def test_the_nine_kinds_are_prefects_block_type_slugs():
    assert set(KINDS) == {
        "custom-webhook", "slack-webhook", "discord-webhook", "ms-teams-webhook", "mattermost-webhook",
        "opsgenie-webhook", "pager-duty-webhook", "sendgrid-email", "twilio-sms",
    }
    assert channel_kind("slack") is KINDS["slack-webhook"]
    assert channel_kind("pagerduty") is KINDS["pager-duty-webhook"]
    assert RESOLVABLE == {"opsgenie-webhook", "pager-duty-webhook"}


async def test_slack_posts_an_attachment_and_needs_ok(rcv, session):
    url = f"{rcv.url}/services/T000/B000/XXXXSECRET"
    attempt = await deliver(session, "slack", {"url": url, "notify_type": "failure"})
    assert attempt.outcome is Outcome.SENT and attempt.status == 200
    (seen,) = rcv.seen
    assert (seen.method, seen.path) == ("POST", "/services/T000/B000/XXXXSECRET")
    assert seen.headers["Content-Type"].startswith("application/json")
    (att,) = seen.json()["attachments"]
    assert att["title"] == "Run failed" and att["text"] == MESSAGE.body
    assert att["color"] == "#A32037" and att["ts"] == int(NOW.timestamp())

    rcv.script((200, {}, b"invalid_payload"))
    attempt = await deliver(session, "slack", {"url": url})
    assert attempt.outcome is Outcome.PERMANENT and "ok" in attempt.error


async def test_slack_base_url_override_keeps_the_webhook_path(rcv, session):
    attempt = await deliver(session, "slack-webhook", {"url": "https://hooks.slack.com/services/T1/B1/tok"}, base=rcv.url)
    assert attempt.outcome is Outcome.SENT
    assert rcv.seen[0].path == "/services/T1/B1/tok"


async def test_discord_waits_for_the_saved_message(rcv, session):
    rcv.script((200, {"Content-Type": "application/json"}, b'{"id": "112233"}'))
    data = {"webhook_id": "4455", "webhook_token": "tok-abc", "botname": "prefect", "tts": False}
    attempt = await deliver(session, "discord", data, base=rcv.url)
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "112233"
    (seen,) = rcv.seen
    assert seen.path == "/api/webhooks/4455/tok-abc" and seen.query == {"wait": "true"}
    body = seen.json()
    assert body["content"] == f"Run failed\r\n{MESSAGE.body}" and body["username"] == "prefect"


async def test_discord_429_honours_the_json_retry_after(rcv, session):
    rcv.script((429, {"Retry-After": "3"}, b'{"message": "rate limited", "retry_after": 1.25, "global": false}'))
    attempt = await deliver(session, "discord", {"webhook_id": "1", "webhook_token": "t"}, base=rcv.url)
    assert attempt.outcome is Outcome.RETRY and attempt.retry_after == 1.25


async def test_discord_content_is_cut_to_2000(rcv, session):
    rcv.script((200, {}, b"{}"))
    await deliver(session, "discord", {"webhook_id": "1", "webhook_token": "t"}, base=rcv.url,
                  message=Message("x" * 5000))
    content = rcv.seen[0].json()["content"]
    assert len(content) == 2000 and content.endswith("…")


async def test_teams_posts_an_adaptive_card(rcv, session):
    rcv.script((202, {}, b""))
    url = f"{rcv.url}/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGSECRET"
    attempt = await deliver(session, "ms-teams-webhook", {"url": url})
    assert attempt.outcome is Outcome.SENT and attempt.status == 202
    (seen,) = rcv.seen
    assert seen.path == "/workflows/abc/triggers/manual/paths/invoke" and seen.query["sig"] == "SIGSECRET"
    body = seen.json()
    assert body["type"] == "message"
    (att,) = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard"
    assert [b["text"] for b in card["body"]] == ["Run failed", MESSAGE.body]


async def test_mattermost_builds_its_url_and_posts_once_per_channel(rcv, session):
    port = int(rcv.url.rsplit(":", 1)[1])
    data = {"hostname": "127.0.0.1", "port": port, "token": "mm-token", "path": "chat",
            "channels": ["ops", "oncall"], "botname": "prefect", "secure": False}
    attempt = await deliver(session, "mattermost", data)
    assert attempt.outcome is Outcome.SENT and (len(attempt.parts_sent), attempt.parts_total) == (2, 2)
    assert [s.path for s in rcv.seen] == ["/chat/hooks/mm-token"] * 2
    assert [s.json()["channel"] for s in rcv.seen] == ["ops", "oncall"]
    assert rcv.seen[0].json()["text"].endswith(MESSAGE.body) and rcv.seen[0].json()["username"] == "prefect"


async def test_opsgenie_alert_with_alias_and_responders(rcv, session):
    rcv.script((202, {}, b'{"result": "Request will be processed", "requestId": "req-1"}'))
    data = {"apikey": "genie-key-1", "region_name": "eu", "target_team": ["ops"], "target_user": ["ann"],
            "priority": 2, "tags": ["etl"], "details": {"k": "v"}}
    attempt = await deliver(session, "opsgenie", data, base=rcv.url, alert_key="rule1-run1")
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "req-1"
    (seen,) = rcv.seen
    assert (seen.method, seen.path) == ("POST", "/v2/alerts")
    assert seen.headers["Authorization"] == "GenieKey genie-key-1"
    body = seen.json()
    assert body["alias"] == "rule1-run1" and body["message"] == "Run failed"
    assert body["description"] == MESSAGE.body and body["priority"] == "P2"
    assert {"type": "team", "name": "ops"} in body["responders"]
    assert {"type": "user", "username": "ann"} in body["responders"]


async def test_opsgenie_message_is_cut_to_130(rcv, session):
    rcv.script((202, {}, b"{}"))
    await deliver(session, "opsgenie", {"apikey": "k"}, base=rcv.url, message=Message("b", subject="s" * 300))
    body = rcv.seen[0].json()
    assert len(body["message"]) == 130 and body["alias"] == str(DELIVERY)


async def test_opsgenie_resolve_closes_by_alias(rcv, session):
    rcv.script((202, {}, b"{}"))
    attempt = await deliver(session, "opsgenie", {"apikey": "k"}, base=rcv.url, alert_key="rule/run", resolve=True)
    assert attempt.outcome is Outcome.SENT
    (seen,) = rcv.seen
    assert seen.raw_path == "/v2/alerts/rule%2Frun/close"
    assert seen.query == {"identifierType": "alias"}


async def test_pagerduty_trigger_and_resolve_share_the_dedup_key(rcv, session):
    rcv.script((202, {}, b'{"status": "success", "dedup_key": "rule1-run1"}'), (202, {}, b"{}"))
    data = {"integration_key": "R0UTINGKEY", "api_key": "unused-api-key", "notify_type": "failure",
            "custom_details": {"env": "prod"}, "clickable_url": "https://ui.example/run/1"}
    attempt = await deliver(session, "pagerduty", data, base=rcv.url, alert_key="rule1-run1")
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "rule1-run1"
    await deliver(session, "pagerduty", data, base=rcv.url, alert_key="rule1-run1", resolve=True)
    trigger, resolve = rcv.seen
    assert trigger.path == "/v2/enqueue" and "Authorization" not in trigger.headers
    event = trigger.json()
    assert event["routing_key"] == "R0UTINGKEY" and event["event_action"] == "trigger"
    assert event["dedup_key"] == "rule1-run1"
    payload = event["payload"]
    assert payload["summary"] == "Run failed" and payload["severity"] == "critical"
    assert payload["custom_details"] == {"env": "prod", "Prefect Notification Body": MESSAGE.body}
    assert payload["timestamp"] == NOW.isoformat() and event["links"] == [{"href": "https://ui.example/run/1"}]
    assert resolve.json() == {"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": "rule1-run1",
                              "client": "Prefect Notifications"}


async def test_pagerduty_summary_is_cut_to_1024(rcv, session):
    rcv.script((202, {}, b"{}"))
    await deliver(session, "pagerduty", {"integration_key": "k", "api_key": "a"}, base=rcv.url,
                  message=Message("y" * 3000))
    assert len(rcv.seen[0].json()["payload"]["summary"]) == 1024


async def test_sendgrid_mail_send(rcv, session):
    rcv.script((202, {"X-Message-Id": "msg-77"}, b""))
    data = {"api_key": "SG.key", "sender_email": "alerts@example.com", "to_emails": ["a@example.com", "b@example.com"]}
    attempt = await deliver(session, "sendgrid", data, base=rcv.url)
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "msg-77"
    (seen,) = rcv.seen
    assert seen.path == "/v3/mail/send" and seen.headers["Authorization"] == "Bearer SG.key"
    assert seen.headers["Content-Type"] == "application/json"
    mail = seen.json()
    assert mail["personalizations"] == [{"to": [{"email": "a@example.com"}]}, {"to": [{"email": "b@example.com"}]}]
    assert mail["from"] == {"email": "alerts@example.com"} and mail["subject"] == "Run failed"
    assert mail["content"] == [{"type": "text/plain", "value": MESSAGE.body}]


async def test_twilio_form_basic_auth_one_request_per_number(rcv, session):
    rcv.default = (201, {}, b'{"sid": "SM1", "status": "queued"}')
    data = {"account_sid": "AC123", "auth_token": "tw-token", "from_phone_number": "18001234567",
            "to_phone_numbers": ["18004242424", "+18004242425"]}
    attempt = await deliver(session, "twilio", data, base=rcv.url, message=Message("z" * 2000, subject="S"))
    assert attempt.outcome is Outcome.SENT and attempt.provider_ref == "SM1" and len(attempt.parts_sent) == 2
    first, second = rcv.seen
    assert first.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert first.headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:tw-token").decode()
    assert first.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(first.body.decode())
    assert form["From"] == ["+18001234567"] and form["To"] == ["+18004242424"]
    assert len(form["Body"][0]) == 1600
    assert parse_qs(second.body.decode())["To"] == ["+18004242425"]


async def test_a_retry_resumes_after_the_recipients_already_reached(rcv, session):
    rcv.script((201, {}, b"{}"), (500, {}, b""))
    data = {"account_sid": "AC1", "auth_token": "t0ken", "from_phone_number": "1", "to_phone_numbers": ["2", "3"]}
    attempt = await deliver(session, "twilio", data, base=rcv.url)
    assert attempt.outcome is Outcome.RETRY and (len(attempt.parts_sent), attempt.parts_total) == (1, 2)
    assert attempt.parts_sent == (part_id("twilio-sms", "to:+2"),), "a part is named by a digest, not the number"
    rcv.script((201, {}, b"{}"))
    attempt = await deliver(session, "twilio", data, base=rcv.url, skip_parts=attempt.parts_sent)
    assert attempt.outcome is Outcome.SENT and len(attempt.parts_sent) == 2
    assert [parse_qs(s.body.decode())["To"] for s in rcv.seen] == [["+2"], ["+3"], ["+3"]]


async def test_a_retry_reaches_a_number_added_meanwhile_and_skips_the_reached_one_moved(rcv, session):
    rcv.script((201, {}, b"{}"), (500, {}, b""))
    data = {"account_sid": "AC1", "auth_token": "t0ken", "from_phone_number": "1", "to_phone_numbers": ["2", "3"]}
    first = await deliver(session, "twilio", data, base=rcv.url)
    assert first.outcome is Outcome.RETRY
    rcv.default = (201, {}, b"{}")
    edited = {**data, "to_phone_numbers": ["4", "3", "2"]}  # the channel edited before the retry
    attempt = await deliver(session, "twilio", edited, base=rcv.url, skip_parts=first.parts_sent)
    assert attempt.outcome is Outcome.SENT and len(attempt.parts_sent) == 3
    assert [parse_qs(s.body.decode())["To"] for s in rcv.seen] == [["+2"], ["+3"], ["+4"], ["+3"]]


async def test_custom_webhook_like_prefects_block(rcv, session):
    data = {
        "name": "ops-hook", "url": rcv.url + "/hook/{{token}}", "method": "PUT",
        "params": {"src": "{{name}}"},
        "json_data": {"text": "{{subject}}: {{body}}", "raw": "{{body}}", "nothing": "{{missing}}"},
        "headers": {"X-Token": "Bearer {{token}}"}, "cookies": {"c": "1"},
        "secrets": {"token": "S3CR3T"},
    }
    attempt = await deliver(session, "webhook", data)
    assert attempt.outcome is Outcome.PERMANENT and "missing" in attempt.error  # refused like Prefect's block
    del data["json_data"]["nothing"]
    attempt = await deliver(session, "webhook", data)
    assert attempt.outcome is Outcome.SENT
    (seen,) = rcv.seen
    assert (seen.method, seen.path, seen.query) == ("PUT", "/hook/S3CR3T", {"src": "ops-hook"})
    assert seen.headers["User-Agent"] == "Prefect Notifications"
    assert seen.headers["X-Token"] == "Bearer S3CR3T" and seen.headers["Cookie"] == "c=1"
    assert seen.json() == {"text": f"Run failed: {MESSAGE.body}", "raw": MESSAGE.body}
    assert seen.headers["webhook-id"] == str(DELIVERY) and seen.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert "webhook-signature" not in seen.headers  # no signing secret, no signature


async def test_custom_webhook_form_bodies(rcv, session):
    base = {"name": "n", "url": rcv.url + "/f"}
    await deliver(session, "custom-webhook", {**base, "form_data": {"msg": "{{body}}"}})
    await deliver(session, "custom-webhook", {**base, "form_data": "subject={{subject}}"})
    form, raw = rcv.seen
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(form.body.decode()) == {"msg": [MESSAGE.body]}
    assert raw.body == b"subject=Run failed" and "Content-Type" not in raw.headers
    both = await deliver(session, "custom-webhook", {**base, "form_data": "x", "json_data": {"a": 1}})
    assert both.outcome is Outcome.PERMANENT and len(rcv.seen) == 2


async def test_custom_webhook_never_reads_the_servers_environment(rcv, session, monkeypatch):
    monkeypatch.setenv("RUNLOG_TEST_LEAK", "env-value")
    attempt = await deliver(session, "custom-webhook", {"name": "n", "url": rcv.url, "json_data": {"x": "{{ $RUNLOG_TEST_LEAK }}"}})
    assert attempt.outcome is Outcome.PERMANENT and rcv.seen == []


async def test_a_json_body_survives_quotes_newlines_and_unicode(rcv, session):
    message = Message('he said "hi"\nthen ✓ \\ left', subject='"q"')
    await deliver(session, "custom-webhook", {"name": "n", "url": rcv.url, "json_data": {"b": "{{body}}", "s": "{{subject}}"}},
                  message=message)
    assert json.loads(rcv.seen[0].body) == {"b": message.body, "s": message.subject}


def test_check_refuses_what_could_never_be_sent():
    check("slack", {"url": "https://hooks.slack.com/services/T/B/x"})
    check("custom-webhook", {"name": "n", "url": "https://h/{{tok}}", "secrets": {"tok": "t"}})
    for kind, data, named in [
        ("slack", {}, "'url'"),
        ("slack", {"url": "ftp://h/x"}, "http(s)"),
        ("ms-teams-webhook", {"url": "http://[::1/x"}, "malformed"),
        ("twilio", {"account_sid": "AC", "auth_token": "t", "from_phone_number": "1"}, "'to_phone_numbers'"),
        ("custom-webhook", {"name": "n", "url": "https://h/{{nope}}"}, "{{ nope }}"),
        ("sendgrid", {"api_key": "k", "sender_email": "a@b", "to_emails": []}, "'to_emails'"),
    ]:
        with pytest.raises(ChannelConfigError) as info:
            check(kind, data)
        assert named in str(info.value)
    with pytest.raises(ValueError, match="unknown channel kind"):
        check("fax", {})


async def test_the_base_url_setting_points_a_vendor_kind_anywhere(rcv, session, tmp_path):
    settings = load_settings(env={"RUNLOG_HOME": str(tmp_path), "RUNLOG_NOTIFIER_BASE_URLS": f"sendgrid={rcv.url}/sg"})
    rcv.script((202, {}, b""))
    attempt = await send(session, "sendgrid-email", {"api_key": "k", "sender_email": "a@b.c", "to_emails": ["d@e.f"]},
                         MESSAGE, delivery_id=DELIVERY, now=NOW, base_urls=dict(settings.notifier_base_urls))
    assert attempt.outcome is Outcome.SENT and rcv.seen[0].path == "/sg/v3/mail/send"


def test_destination_shows_scheme_and_host_only():
    assert destination("slack", {"url": "https://hooks.slack.com/services/T/B/secret"}) == "POST https://hooks.slack.com/…"
    assert destination("opsgenie", {"apikey": "k", "region_name": "eu"}) == "POST https://api.eu.opsgenie.com/…"
    assert destination("pagerduty", {"integration_key": "k"}, "http://127.0.0.1:9") == "POST http://127.0.0.1:9/…"


def test_office_365_connector_urls_are_refused():
    with pytest.raises(ChannelConfigError, match="Workflows URL"):
        check("teams", {"url": "https://contoso.webhook.office.com/webhookb2/abc/IncomingWebhook/def/ghi"})
