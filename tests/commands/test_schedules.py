"""Schedule maths (commands/schedules.py), table-tested without a database, and cross-checked
against Prefect 3.8.8's own schedule classes (the prefect package of the test extra) for
intervals, crons and rrules around DST changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from runlog.commands import schedules
from runlog.commands.flow_runs import run_id_for_key
from runlog.commands.schedules import (
    CronSchedule,
    IntervalSchedule,
    InvalidSchedule,
    RRuleSchedule,
    SchedulerLimits,
    dates,
    horizon_dates,
    needs_runs,
    plan_runs,
    scheduled_run_id,
    scheduled_run_key,
)

NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "start", "end", "n", "expected"),
    [
        # A plain interval from its anchor; the start itself counts when it is on the grid.
        (IntervalSchedule(interval=timedelta(hours=1), anchor_date=utc(2026, 1, 1)), utc(2026, 3, 1, 12), None, 3,
         [utc(2026, 3, 1, 12), utc(2026, 3, 1, 13), utc(2026, 3, 1, 14)]),
        (IntervalSchedule(interval=timedelta(minutes=15), anchor_date=utc(2026, 1, 1, 0, 5)), utc(2026, 3, 1, 12, 6),
         utc(2026, 3, 1, 12, 50), None, [utc(2026, 3, 1, 12, 20), utc(2026, 3, 1, 12, 35), utc(2026, 3, 1, 12, 50)]),
        # A start before the anchor: the grid extends backwards.
        (IntervalSchedule(interval=timedelta(hours=1), anchor_date=utc(2026, 3, 1, 10)), utc(2026, 3, 1, 7, 30), None, 2,
         [utc(2026, 3, 1, 8), utc(2026, 3, 1, 9)]),
        # Daily at 09:00 New York keeps 09:00 local across the spring change (8 March 2026).
        (IntervalSchedule(interval=timedelta(days=1), anchor_date=ny(2026, 1, 1, 9), timezone="America/New_York"),
         ny(2026, 3, 7, 0), None, 3, [ny(2026, 3, 7, 9), ny(2026, 3, 8, 9), ny(2026, 3, 9, 9)]),
        # Hourly in New York steps real hours: 01:00 EST is followed by 03:00 EDT.
        (IntervalSchedule(interval=timedelta(hours=1), anchor_date=ny(2026, 1, 1), timezone="America/New_York"),
         ny(2026, 3, 8, 0), None, 3, [ny(2026, 3, 8, 0), ny(2026, 3, 8, 1), ny(2026, 3, 8, 3)]),
        # ... and in autumn 01:00 comes twice, an hour apart.
        (IntervalSchedule(interval=timedelta(hours=1), anchor_date=ny(2026, 1, 1), timezone="America/New_York"),
         ny(2026, 11, 1, 0), None, 4,
         [ny(2026, 11, 1, 0), ny(2026, 11, 1, 1), ny(2026, 11, 1, 1, fold=1), ny(2026, 11, 1, 2)]),
        # Cron: weekdays at 09:00 New York, across the spring change.
        (CronSchedule(cron="0 9 * * 1-5", timezone="America/New_York"), ny(2026, 3, 6, 10), None, 2,
         [ny(2026, 3, 9, 9), ny(2026, 3, 10, 9)]),
        # Cron hourly in New York: the skipped 02:00 lands on the hour before the change.
        (CronSchedule(cron="0 * * * *", timezone="America/New_York"), ny(2026, 3, 8, 0, 30), None, 3,
         [ny(2026, 3, 8, 1), ny(2026, 3, 8, 3), ny(2026, 3, 8, 4)]),
        # Cron: a start exactly on a firing time includes it; a microsecond later does not.
        (CronSchedule(cron="*/10 * * * *"), utc(2026, 3, 1, 12), None, 2, [utc(2026, 3, 1, 12), utc(2026, 3, 1, 12, 10)]),
        (CronSchedule(cron="*/10 * * * *"), utc(2026, 3, 1, 12) + timedelta(microseconds=1), None, 1,
         [utc(2026, 3, 1, 12, 10)]),
        # day_or=False: the 13th only when it is a Friday.
        (CronSchedule(cron="0 0 13 * 5", day_or=False), utc(2026, 1, 1), utc(2026, 12, 31), None,
         [utc(2026, 2, 13), utc(2026, 3, 13), utc(2026, 11, 13)]),
        # RRule: every other day at 09:30 New York, DTSTART in the rule.
        (RRuleSchedule(rrule="DTSTART:20260301T093000\nRRULE:FREQ=DAILY;INTERVAL=2", timezone="America/New_York"),
         ny(2026, 3, 5, 12), None, 3, [ny(2026, 3, 7, 9, 30), ny(2026, 3, 9, 9, 30), ny(2026, 3, 11, 9, 30)]),
        # RRule without DTSTART: counted from 2020-01-01; COUNT ends it.
        (RRuleSchedule(rrule="FREQ=YEARLY;COUNT=8"), utc(2026, 1, 1), utc(2030, 1, 1), None,
         [utc(2026, 1, 1), utc(2027, 1, 1)]),
    ],
)
def test_schedule_dates(schedule, start, end, n, expected) -> None:
    got = dates(schedule, start=start, end=end, n=n)
    assert got == expected
    assert [d.utcoffset() for d in got] == [d.utcoffset() for d in expected]  # the same instants, not just walls


CROSS_CHECKS = [
    ("interval", {"interval": 3600, "anchor_date": "2026-01-01T00:00:00Z", "timezone": "America/New_York"}),
    ("interval", {"interval": 86400, "anchor_date": "2026-01-01T14:00:00Z", "timezone": "America/New_York"}),
    ("interval", {"interval": 90000, "anchor_date": "2026-01-01T06:30:00Z", "timezone": "Europe/Berlin"}),
    ("interval", {"interval": 600, "anchor_date": "2025-12-31T23:55:00Z"}),
    ("cron", {"cron": "0 9 * * *", "timezone": "America/New_York"}),
    ("cron", {"cron": "30 * * * *", "timezone": "America/New_York"}),
    ("cron", {"cron": "0 2 * * *", "timezone": "Europe/Berlin"}),
    ("cron", {"cron": "0 0 13 * 5", "day_or": False}),
    ("rrule", {"rrule": "DTSTART:20260101T090000\nRRULE:FREQ=DAILY;BYHOUR=1,2,9", "timezone": "America/New_York"}),
    ("rrule", {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE", "timezone": "Europe/Berlin"}),
]
# Windows around the 2026 changes: New York on 8 March and 1 November, Berlin on 29 March and 25 October.
WINDOWS = [
    (utc(2026, 3, 6), utc(2026, 3, 10)), (utc(2026, 10, 30), utc(2026, 11, 3)),
    (utc(2026, 3, 27), utc(2026, 3, 31)), (utc(2026, 10, 23), utc(2026, 10, 27)),
]


@pytest.mark.parametrize(("kind", "fields"), CROSS_CHECKS)
@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_dates_match_prefects_own_schedule_classes(kind, fields, start, end) -> None:
    from prefect.server.schemas import schedules as prefect_schedules

    prefect_class = {"interval": prefect_schedules.IntervalSchedule, "cron": prefect_schedules.CronSchedule,
                     "rrule": prefect_schedules.RRuleSchedule}[kind]
    theirs = prefect_class.model_validate(fields)
    ours_class = {"interval": IntervalSchedule, "cron": CronSchedule, "rrule": RRuleSchedule}[kind]
    raw = dict(fields)
    if kind == "interval":
        raw["interval"] = timedelta(seconds=raw["interval"])
        raw["anchor_date"] = datetime.fromisoformat(raw["anchor_date"])
    ours = ours_class(**raw)
    for n in (None, 5):
        expected = asyncio.run(theirs.get_dates(n=n, start=start, end=end))
        got = dates(ours, start=start, end=end, n=n)
        if kind == "interval" and n is None:
            # One deliberate difference: on Python below 3.13 Prefect drops the second of two
            # runs whose local times are equal (an hourly schedule's repeated hour in autumn,
            # which its sets compare by wall clock); its docstring, and Prefect on Python 3.13,
            # keep both, and so does runlog.
            instants = {d.astimezone(UTC) for d in expected}
            got = [d for d in got if not (d.fold and d.replace(fold=0).astimezone(UTC) in instants)]
        assert [d.astimezone(UTC) for d in got] == [d.astimezone(UTC) for d in expected]
        assert [d.isoformat(" ") for d in got] == [str(d) for d in expected]  # the key's spelling too


@pytest.mark.parametrize(
    ("future", "expected"),
    [
        ([], True),  # a new schedule
        ([T0 + timedelta(minutes=m) for m in (10, 20)], True),  # fewer than 3
        ([T0 + timedelta(minutes=m) for m in (10, 20, 30)], True),  # 3, but none an hour ahead
        ([T0 + timedelta(minutes=m) for m in (10, 20, 60)], False),  # 3 reaching exactly an hour
        ([T0 - timedelta(minutes=5)] + [T0 + timedelta(minutes=m) for m in (10, 20)], True),  # past runs do not count
        ([T0 + timedelta(days=d) for d in (1, 2, 3)], False),
    ],
)
def test_a_schedule_needs_runs_below_three_or_short_of_an_hour(future, expected) -> None:
    assert needs_runs(future, T0) is expected


def test_no_minimum_count_and_no_runs_means_no_visit() -> None:
    assert needs_runs([], T0, SchedulerLimits(min_runs=0)) is False


@pytest.mark.parametrize(
    ("interval", "count", "last"),
    [
        (timedelta(minutes=1), 61, T0 + timedelta(hours=1)),  # Prefect's 61 runs for a 60 s schedule
        (timedelta(hours=1), 3, T0 + timedelta(hours=2)),  # at least 3 runs
        (timedelta(seconds=10), 100, T0 + timedelta(seconds=990)),  # at most 100 runs
        (timedelta(days=30), 3, T0 + timedelta(days=60)),
        (timedelta(days=60), 2, T0 + timedelta(days=60)),  # never past 100 days
    ],
)
def test_the_horizon_of_one_schedule(interval, count, last) -> None:
    chosen = horizon_dates(IntervalSchedule(interval=interval, anchor_date=T0), T0)
    assert len(chosen) == count
    assert chosen[0] == T0 and chosen[-1] == last


def test_plan_runs_leaves_out_times_that_have_runs_and_does_nothing_when_full() -> None:
    hourly = IntervalSchedule(interval=timedelta(hours=1), anchor_date=T0)
    first = plan_runs(hourly, T0)
    assert first == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    # 90 minutes on, one run is still ahead: the horizon is filled again around it.
    later = T0 + timedelta(minutes=90)
    assert plan_runs(hourly, later, future_runs=first) == [T0 + timedelta(hours=3), T0 + timedelta(hours=4)]
    # Enough runs ahead: nothing to do.
    assert plan_runs(hourly, T0, future_runs=first + [T0 + timedelta(hours=3)]) == []
    # A time whose run was already created (and has since started) is never planned again.
    assert plan_runs(hourly, T0, future_runs=[], existing=[T0]) == [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]


def test_a_scheduled_run_key_and_id_are_prefects_key_and_never_change() -> None:
    deployment, schedule, flow = UUID(int=1), UUID(int=2), UUID(int=3)
    moment = ny(2026, 3, 9, 9)
    key = scheduled_run_key(deployment, schedule, moment)
    assert key == f"scheduled {deployment} {schedule} 2026-03-09 09:00:00-04:00"
    assert scheduled_run_id(flow, deployment, schedule, moment) == run_id_for_key(flow, key)
    assert scheduled_run_id(flow, deployment, schedule, moment) == scheduled_run_id(flow, deployment, schedule, moment)
    assert scheduled_run_id(flow, deployment, schedule, moment) != scheduled_run_id(
        flow, deployment, schedule, moment + timedelta(hours=1))
    state = schedules.scheduled_state(moment)
    assert (state.name, state.message, state.state_details.scheduled_time) == (
        "Scheduled", "Flow run scheduled", utc(2026, 3, 9, 13))
    assert schedules.scheduled_run_tags(["etl"]) == ["auto-scheduled", "etl"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (CronSchedule(cron="61 * * * *"), 'Invalid cron string: "61 * * * *"'),
        (CronSchedule(cron="H 0 * * *"), "Invalid cron string"),
        (CronSchedule(cron="0 0 * * *", timezone="Mars/Olympus"), 'Invalid timezone: "Mars/Olympus"'),
        (IntervalSchedule(interval=timedelta(0), anchor_date=T0), "The interval must be positive"),
        (RRuleSchedule(rrule="FREQ=SOMETIMES"), 'Invalid RRule string "FREQ=SOMETIMES"'),
    ],
)
def test_invalid_schedules_are_refused_with_prefects_messages(schedule, message) -> None:
    with pytest.raises(InvalidSchedule, match=message.replace("*", r"\*")):
        schedules.validate(schedule)
