"""The clock every rule, command and route reads "now" from, so that tests can set it.

A clock is a plain callable returning an aware UTC datetime. The app holds one (``keys.CLOCK``);
code that needs "now" takes it as an argument instead of calling ``datetime.now``. Tests use
``ManualClock`` and move it explicitly, so no outcome depends on the calendar or on two clock
reads landing in the same microsecond.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until told to move."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now.astimezone(UTC)


__all__ = ["Clock", "ManualClock", "system_clock"]
