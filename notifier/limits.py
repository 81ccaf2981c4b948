"""How hard each channel kind may be pushed: concurrent sends and sends per second.

Each channel (one block document) gets its own queue with these limits, so a slow or
throttled receiver holds up only its own channel. The defaults follow the vendors' published
limits (Slack's incoming webhooks: about one message a second; PagerDuty Events v2: 120 a
minute per routing key; Teams Workflows: a few a second) and leave generic webhooks unpaced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class ChannelLimits:
    concurrency: int = 2
    """Sends to one channel at once."""
    rate: float | None = None
    """Sends per second started on one channel; None: no pacing beyond the concurrency."""


DEFAULT_LIMITS: Mapping[str, ChannelLimits] = MappingProxyType({
    "slack-webhook": ChannelLimits(concurrency=1, rate=1.0),
    "discord-webhook": ChannelLimits(concurrency=1, rate=2.0),
    "ms-teams-webhook": ChannelLimits(concurrency=1, rate=4.0),
    "mattermost-webhook": ChannelLimits(concurrency=2),
    "opsgenie-webhook": ChannelLimits(concurrency=2),
    "pager-duty-webhook": ChannelLimits(concurrency=2, rate=2.0),
    "sendgrid-email": ChannelLimits(concurrency=4),
    "twilio-sms": ChannelLimits(concurrency=2, rate=1.0),
    "custom-webhook": ChannelLimits(concurrency=4),
    "json-webhook": ChannelLimits(concurrency=4),
})
FALLBACK_LIMITS = ChannelLimits()


def limits_for(kind: str, table: Mapping[str, ChannelLimits] = DEFAULT_LIMITS) -> ChannelLimits:
    return table.get(kind, FALLBACK_LIMITS)


class Pacer:
    """Spaces the starts of sends at least 1/rate seconds apart (no pacing when rate is None).

    Pacing is about the receiver's real time, not the delivery schedule's clock, so it reads a
    monotonic clock; both it and the sleep are injectable for tests.
    """

    def __init__(
        self, rate: float | None, *, monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("a rate must be positive")
        self._spacing = 0.0 if rate is None else 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_start = float("-inf")

    async def acquire(self) -> None:
        if not self._spacing:
            return
        now = self._monotonic()
        start = max(self._next_start, now)
        self._next_start = start + self._spacing  # taken before waiting: concurrent callers queue up
        if start > now:
            await self._sleep(start - now)


__all__ = ["DEFAULT_LIMITS", "FALLBACK_LIMITS", "ChannelLimits", "Pacer", "limits_for"]
