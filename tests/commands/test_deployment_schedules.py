"""Prefect's schedule shapes, checked and completed without a database (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runlog.commands.deployment_schedules import (
    InvalidSchedule, check_max_scheduled_runs, normalized_schedule, valid_cron,
)

NOW = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "valid"), [
    ("* * * * *", True), ("0 9 * * mon-fri", True), ("*/15 0-6,18-23 1,15 jan-jun sun", True),
    ("0 0 L * *", True), ("0 0 * * 5#2", True), ("@daily", True), ("0 0 * * 7", True),
    ("0 0 1 * * 30", True), ("0 0 1 * * * 2020", True),  # croniter's seconds, then a year
    ("0 0 15W * *", False), ("0 0 * * 5L", False), ("* * * * * 60", False), ("0 0 1 * * * 1800", False),
    ("60 * * * *", False), ("* 24 * * *", False), ("* * 0 * *", False), ("* * * 13 *", False),
    ("* * * * 8", False), ("* * * *", False), ("*/0 * * * *", False), ("not a cron", False), ("", False),
    ("* * * * * * * *", False), ("@sometimes", False),
])
def test_cron_expressions_are_accepted_as_croniter_accepts_them(cron: str, valid: bool) -> None:
    assert valid_cron(cron) is valid


@pytest.mark.parametrize(("given", "stored"), [
    ({"interval": 60}, {"interval": 60.0, "anchor_date": "2025-06-01T08:30:00Z", "timezone": "UTC"}),
    ({"interval": 90.5, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "America/New_York"},
     {"interval": 90.5, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "America/New_York"}),
    ({"interval": 3600, "anchor_date": "2024-01-01T00:00:00"},  # naive: read as UTC
     {"interval": 3600.0, "anchor_date": "2024-01-01T00:00:00Z", "timezone": "UTC"}),
    ({"cron": "0 * * * *"}, {"cron": "0 * * * *", "timezone": None, "day_or": True}),
    ({"cron": "0 6 * * *", "timezone": "Europe/Paris", "day_or": False},
     {"cron": "0 6 * * *", "timezone": "Europe/Paris", "day_or": False}),
    ({"rrule": "FREQ=WEEKLY;BYDAY=MO"}, {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"}),
])
def test_schedules_are_stored_with_prefects_defaults(given: dict, stored: dict) -> None:
    assert normalized_schedule(given, NOW) == stored


@pytest.mark.parametrize("bad", [
    {"interval": 0}, {"interval": -1}, {"interval": "soon"}, {"interval": 60, "timezone": "Nowhere/City"},
    {"interval": 60, "extra": True}, {"cron": "H * * * *"}, {"cron": "99 * * * *"}, {"cron": 5},
    {"rrule": "FREQ=NEVER"}, {"rrule": "FREQ=DAILY;" + "BYHOUR=1;" * 1000}, {"something": "else"}, [], "daily",
])
def test_bad_schedules_are_refused(bad) -> None:
    with pytest.raises(InvalidSchedule):
        normalized_schedule(bad, NOW)


@pytest.mark.parametrize(("value", "ok"), [(None, True), (1, True), (50, True), (51, False), (0, False)])
def test_max_scheduled_runs_is_at_most_prefects_limit(value, ok: bool) -> None:
    if ok:
        check_max_scheduled_runs(value)
    else:
        with pytest.raises(InvalidSchedule):
            check_max_scheduled_runs(value)
