"""Bodies and answers of /api/runlog/channels: a channel's test send and the channels' health
(runlog's own API; a channel is a notification block document)."""

from __future__ import annotations

from uuid import UUID

import msgspec

# The health read model's rows are answered as they are.
from runlog.projections.deliveries import ChannelHealth


class ChannelTestRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str | None = None
    """The text to send; a default test message when left out."""


class ChannelTest(msgspec.Struct, kw_only=True):
    """What the receiver answered to a test send. Nothing of it is recorded."""

    channel_id: UUID
    kind: str
    """The channel's block type slug."""
    sent: bool
    outcome: str
    """sent, retry, permanent or gone: what a delivery would have made of the answer."""
    status_code: int | None
    elapsed_ms: float
    target: str
    """The method, scheme and host requested (a webhook URL's path is its secret)."""
    excerpt: str
    """The start of the receiver's answer, redacted."""
    error: str | None


__all__ = ["ChannelHealth", "ChannelTest", "ChannelTestRequest"]
