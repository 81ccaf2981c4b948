"""The nine notification block types, as Prefect 3.8.8's client registers them: a channel is a
block document of one of these.

notification_blocks.json holds, per channel kind, the block type (name, slug, ...), the block
schema's fields (JSON schema, secret_fields included), capabilities, version and checksum, exactly
as ``prefect.blocks.notifications`` produces them: registering the same fields gives the same
checksum, so a channel made with ``runlog channel create`` is loadable by the stock client and one
saved by the client is a channel here. tests/schema/test_notification_blocks.py checks the file
against the installed Prefect (and says how to regenerate it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ChannelKind:
    kind: str
    """runlog's short name: slack, teams, pagerduty, twilio, opsgenie, mattermost, discord, webhook, sendgrid."""
    block_type: dict[str, Any]
    fields: dict[str, Any]
    capabilities: list[str]
    version: str
    checksum: str

    @property
    def slug(self) -> str:
        return str(self.block_type["slug"])

    @property
    def secret_fields(self) -> list[str]:
        return list(self.fields.get("secret_fields", []))


@cache
def channel_kinds() -> dict[str, ChannelKind]:
    """Every channel kind by short name, in the file's (alphabetical) order."""
    raw = json.loads(resources.files(__package__).joinpath("notification_blocks.json").read_text())
    return {kind: ChannelKind(kind=kind, **entry) for kind, entry in raw.items()}


def channel_kind(name: str) -> ChannelKind | None:
    """The kind called ``name``, by short name or block type slug."""
    kinds = channel_kinds()
    return kinds.get(name) or next((k for k in kinds.values() if k.slug == name), None)


def channel_slugs() -> list[str]:
    return [kind.slug for kind in channel_kinds().values()]


__all__ = ["ChannelKind", "channel_kind", "channel_kinds", "channel_slugs"]
