"""schema/notification_blocks.json is what Prefect 3.8.8's client registers for its nine
notification blocks. After a Prefect upgrade, regenerate it with

    python -c "from tests.schema.test_notification_blocks import snapshot; import json; \\
        print(json.dumps(snapshot(), indent=1, sort_keys=True))" > schema/notification_blocks.json
"""

from __future__ import annotations

from typing import Any

from prefect.blocks import notifications as n

from runlog.commands.block_checksum import schema_checksum
from runlog.schema.notification_blocks import channel_kind, channel_kinds

KINDS = {
    "slack": n.SlackWebhook, "teams": n.MicrosoftTeamsWebhook, "pagerduty": n.PagerDutyWebHook,
    "twilio": n.TwilioSMS, "opsgenie": n.OpsgenieWebhook, "mattermost": n.MattermostWebhook,
    "discord": n.DiscordWebhook, "webhook": n.CustomWebhookNotificationBlock, "sendgrid": n.SendgridEmail,
}


def snapshot() -> dict[str, Any]:
    fields = {"name", "slug", "logo_url", "documentation_url", "description", "code_example"}
    return {
        kind: {
            "block_type": block._to_block_type().model_dump(mode="json", include=fields),
            "fields": block.model_json_schema(),
            "capabilities": sorted(block.get_block_capabilities()),
            "version": block.get_block_schema_version(),
            "checksum": block._calculate_schema_checksum(),
        }
        for kind, block in KINDS.items()
    }


def test_the_snapshot_is_what_the_installed_prefect_registers() -> None:
    expected = snapshot()
    kinds = channel_kinds()
    assert sorted(kinds) == sorted(expected)
    for name, kind in kinds.items():
        entry = expected[name]
        assert (kind.block_type, kind.fields, kind.capabilities, kind.version, kind.checksum) == (
            entry["block_type"], entry["fields"], entry["capabilities"], entry["version"], entry["checksum"],
        ), name
        assert schema_checksum(kind.fields) == kind.checksum


def test_kinds_are_found_by_short_name_or_slug() -> None:
    assert channel_kind("slack") is channel_kind("slack-webhook")
    assert channel_kind("teams").slug == "ms-teams-webhook"
    assert channel_kind("webhook").secret_fields == ["secrets.*"]
    assert channel_kind("nope") is None
