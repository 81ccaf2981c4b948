"""The block documents the stock Prefect client saves are what the senders read: each of the
nine notification blocks, built with Prefect 3.8.8's own classes and dumped as the client sends
them (secrets included, as a load with include_secrets returns them), makes a delivered request."""

from __future__ import annotations

import uuid

import pytest
from prefect.blocks import notifications as n

from runlog.notifier.http import Outcome

from .helpers import deliver

# Prefect's blocks import apprise, which imports the standard library's deprecated imghdr.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

TEAMS = ("https://prod-00.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
         "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIG")


def blocks(port: int) -> list:
    return [
        n.SlackWebhook(url="https://hooks.slack.com/services/T0/B0/tok"),
        n.MicrosoftTeamsWebhook(url=TEAMS),
        n.DiscordWebhook(webhook_id="123", webhook_token="tok"),
        n.MattermostWebhook(hostname="127.0.0.1", port=port, token="tok", channels=["ops"]),
        n.OpsgenieWebhook(apikey="key", target_team=["ops"], region_name="eu"),
        n.PagerDutyWebHook(integration_key="ik", api_key="ak", custom_details={"a": "b"}),
        n.SendgridEmail(api_key="key", sender_email="alerts@example.com", to_emails=["ops@example.com"]),
        n.TwilioSMS(account_sid="AC1", auth_token="tok", from_phone_number="18001234567",
                    to_phone_numbers=["18004242424"]),
        n.CustomWebhookNotificationBlock(name="hook", url="http://127.0.0.1:%d/in/{{tok}}" % port,
                                         json_data={"text": "{{subject}}: {{body}}"}, secrets={"tok": "s"}),
    ]


def saved_data(block) -> dict:
    doc = block._to_block_document(name="x", block_schema_id=uuid.uuid4(), block_type_id=uuid.uuid4())
    return doc.model_dump(mode="json", context={"include_secrets": True})["data"]


@pytest.mark.parametrize("index", range(9))
async def test_a_block_saved_by_the_prefect_client_sends(rcv, session, index):
    block = blocks(int(rcv.url.rsplit(":", 1)[1]))[index]
    rcv.default = (202 if block.get_block_type_slug() != "slack-webhook" else 200, {}, b"ok")
    attempt = await deliver(session, block.get_block_type_slug(), saved_data(block), base=rcv.url)
    assert attempt.outcome is Outcome.SENT, attempt
    (seen,) = rcv.seen
    assert seen.method == "POST" and seen.body
