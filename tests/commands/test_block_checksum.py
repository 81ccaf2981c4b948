"""The server computes a block schema's checksum exactly as the Prefect client does."""

from __future__ import annotations

import pytest
from prefect.blocks import notifications
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr

from runlog.commands.block_checksum import schema_checksum


class Credentials(Block):
    _block_type_slug = "runlog-test-credentials"
    password: SecretStr
    user: str = "u"


class Holder(Block):
    """A block nesting another: its definitions hold a block, left out of the checksum."""

    _block_type_slug = "runlog-test-holder"
    credentials: Credentials
    label: str = "x"


BLOCKS = [
    notifications.SlackWebhook, notifications.MicrosoftTeamsWebhook, notifications.PagerDutyWebHook,
    notifications.TwilioSMS, notifications.OpsgenieWebhook, notifications.MattermostWebhook,
    notifications.DiscordWebhook, notifications.CustomWebhookNotificationBlock, notifications.SendgridEmail,
    Secret, LocalFileSystem, Credentials, Holder,
]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.__name__)
def test_checksum_matches_the_prefect_clients(block) -> None:
    assert schema_checksum(block.model_json_schema()) == block._calculate_schema_checksum()


def test_secret_fields_do_not_change_the_checksum_and_other_fields_do() -> None:
    fields = notifications.SlackWebhook.model_json_schema()
    assert schema_checksum({**fields, "secret_fields": []}) == schema_checksum(fields)
    assert schema_checksum({**fields, "title": "Other"}) != schema_checksum(fields)
