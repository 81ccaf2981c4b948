"""The seams between the dispatcher and what it is given: a channel loader and a sender.

The dispatcher (dispatcher.py) knows nothing of channel kinds or wire formats. For each due
delivery it asks a ``ChannelLoader`` for the channel (its kind and its block document's data,
secrets decrypted, never stored in a delivery) and hands the message to a ``Sender``, which
shapes the request, sends it and classifies the answer as an ``Attempt``. The server wires in
the channel package's sender and the blocks' loader; webhook.py is a sender for plain JSON
webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from runlog.commands.deliveries import GONE, OUTCOMES, PERMANENT, RETRY, SENT


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


@dataclass(frozen=True)
class Channel:
    """A channel as the sender needs it: its kind (a block type slug) and its configuration."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """What one send came to.

    ``outcome``: "sent"; "retry" (timeout, connection error, 408/425/429/5xx), with
    ``retry_after`` seconds when the receiver said how long to wait; "permanent" (other 4xx, a
    redirect); "gone" (404/410: the endpoint no longer exists). ``excerpt`` is the start of the
    answer's body and ``error`` what failed, both already redacted: no secret may be in them.
    ``parts_sent`` names the recipients that have the message, for a kind that sends one
    request per recipient (the next attempt skips them).
    """

    outcome: str
    status_code: int | None = None
    retry_after: float | None = None
    excerpt: str | None = None
    error: str | None = None
    parts_sent: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown attempt outcome {self.outcome!r}")


class Sender(Protocol):
    """Sends one message; it keeps its own HTTP session and closes it in ``aclose``.

    ``alert_key`` is the key of the alert a resolve closes (None: the delivery id);
    ``skip_parts`` the recipients earlier attempts reached, left out of this one."""

    async def __call__(
        self, kind: str, data: dict[str, Any], message: Message, *,
        delivery_id: UUID, now: datetime, resolve: bool = False, alert_key: str | None = None,
        skip_parts: frozenset[str] = frozenset(),
    ) -> Attempt: ...

    async def aclose(self) -> None: ...


class ChannelLoader(Protocol):
    async def __call__(self, channel_id: UUID) -> Channel | None:
        """The channel, or None when it no longer exists (its deliveries are then dead letters)."""
        ...


__all__ = ["GONE", "PERMANENT", "RETRY", "SENT", "Attempt", "Channel", "ChannelLoader", "Message", "Sender"]
