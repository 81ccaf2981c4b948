"""Prefect's three schedule shapes (interval, cron, rrule), checked and completed as Prefect's
server models do before a schedule is stored. Pure: "now" is the caller's (an interval's
default anchor date)."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import msgspec

from .errors import Unprocessable

MAX_SCHEDULED_RUNS = 50
"""Prefect's PREFECT_DEPLOYMENT_SCHEDULE_MAX_SCHEDULED_RUNS default: a schedule's max_scheduled_runs
may not exceed it."""

MAX_RRULE_LENGTH = 6500
"""Prefect's: about a year of RDATEs."""


class InvalidSchedule(Unprocessable):
    """A schedule Prefect would refuse: answered with 422."""


class _Interval(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    interval: float | timedelta
    anchor_date: datetime | None = None
    timezone: str | None = None


class _Cron(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    cron: str
    timezone: str | None = None
    day_or: bool = True


class _RRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rrule: str
    timezone: str | None = "UTC"


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_timezone(timezone: str | None) -> None:
    if timezone and timezone not in _timezones():
        raise InvalidSchedule(
            f'Invalid timezone: "{timezone}" (specify in IANA tzdata format, for example, America/New_York)'
        )


# -- cron -------------------------------------------------------------------------------------

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (lowest, highest, names) of minute, hour, day of month, month, day of week (7 is Sunday too).
_CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, _MONTHS), (0, 7, _DAYS))
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_ITEM = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


def _cron_value(token: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if token.isdigit():
        return low <= int(token) <= high
    return token in names


def _cron_item(item: str, low: int, high: int, names: tuple[str, ...], position: int) -> bool:
    if (position == 2 and item == "l") or (position == 4 and re.fullmatch(r"[a-z0-9]+#[1-5]", item)):
        return True  # croniter's last day of the month and nth weekday of the month
    match = _ITEM.match(item)
    if match is None:
        return False
    step = match["step"]
    if step is not None and int(step) == 0:
        return False
    bounds = match["range"]
    if bounds == "*":
        return True
    parts = bounds.split("-")
    return all(_cron_value(part, low, high, names) for part in parts)


def valid_cron(cron: str) -> bool:
    """A cron expression as croniter (Prefect's check) accepts it: five standard fields (names,
    steps, ranges, L, # and @macros), then optionally seconds and a year."""
    text = cron.strip().lower()
    if text in _MACROS:
        return True
    fields = text.split()
    if len(fields) not in (5, 6, 7):
        return False
    extra = ((0, 59, ()), (1970, 2099, ()))[: len(fields) - 5]
    for position, (field, (low, high, names)) in enumerate(zip(fields, (*_CRON_FIELDS, *extra), strict=True)):
        if not all(_cron_item(item, low, high, names, position) for item in field.split(",")):
            return False
    return True


def _check_cron(cron: str) -> None:
    if not valid_cron(cron):
        raise InvalidSchedule(f'Invalid cron string: "{cron}"')
    if any(part.casefold() in ("r", "h") for part in cron.split()):
        raise InvalidSchedule(f'Random and Hashed expressions are unsupported, received: "{cron}"')


def _check_rrule(rrule: str) -> None:
    import dateutil.rrule  # imported when a rule is checked: the server needs it nowhere else

    try:
        dateutil.rrule.rrulestr(rrule, cache=True)
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule(f'Invalid RRule string "{rrule}": {exc}') from None
    if len(rrule) > MAX_RRULE_LENGTH:
        raise InvalidSchedule(f'Invalid RRule string "{rrule[:40]}..."\nMax length is {MAX_RRULE_LENGTH}, got {len(rrule)}')


def _seconds(interval: float | timedelta) -> float:
    return interval.total_seconds() if isinstance(interval, timedelta) else float(interval)


def normalized_schedule(schedule: Any, now: datetime) -> dict[str, Any]:
    """The schedule as Prefect stores it (defaults filled in), or InvalidSchedule."""
    if not isinstance(schedule, dict):
        raise InvalidSchedule("A schedule must be an object: an interval, cron or rrule schedule")
    try:
        if "interval" in schedule:
            interval = msgspec.convert(schedule, _Interval, strict=False)
            seconds = _seconds(interval.interval)
            if seconds <= 0:
                raise InvalidSchedule("The interval must be positive")
            _check_timezone(interval.timezone)
            anchor = interval.anchor_date or now
            if anchor.tzinfo is None:
                anchor = anchor.replace(tzinfo=UTC)  # Prefect reads a naive anchor in UTC
            # Prefect infers a timezone from the anchor's zone; an anchor parsed from text carries
            # only an offset, which Prefect reads as UTC.
            timezone = interval.timezone or "UTC"
            return {"interval": seconds, "anchor_date": anchor.isoformat().replace("+00:00", "Z"),
                    "timezone": timezone}
        if "cron" in schedule:
            cron = msgspec.convert(schedule, _Cron, strict=False)
            _check_cron(cron.cron)
            _check_timezone(cron.timezone)
            return {"cron": cron.cron, "timezone": cron.timezone, "day_or": cron.day_or}
        if "rrule" in schedule:
            rrule = msgspec.convert(schedule, _RRule, strict=False)
            _check_rrule(rrule.rrule)
            _check_timezone(rrule.timezone)
            return {"rrule": rrule.rrule, "timezone": rrule.timezone}
    except msgspec.ValidationError as exc:
        raise InvalidSchedule(f"Invalid schedule: {exc}") from None
    raise InvalidSchedule("A schedule must be an interval, cron or rrule schedule")


def check_max_scheduled_runs(value: int | None) -> None:
    if value is None:
        return
    if value <= 0:
        raise InvalidSchedule("`max_scheduled_runs` must be greater than 0.")
    if value > MAX_SCHEDULED_RUNS:
        raise InvalidSchedule(f"`max_scheduled_runs` must be less than or equal to {MAX_SCHEDULED_RUNS}.")


__all__ = ["InvalidSchedule", "MAX_SCHEDULED_RUNS", "check_max_scheduled_runs", "normalized_schedule", "valid_cron"]
