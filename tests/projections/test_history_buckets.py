"""The history's bucket maths and per-run estimates (projections/history.py), pure and table-driven:
Prefect 3.8's bucket count and boundaries, placement by expected start time, its lateness and
run time rules, and the dashboard's 20 buckets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runlog.projections.history import (
    MAX_BUCKETS, HistoryRangeError, RunPoint, StateTally, dashboard_window, interval_us, lateness, merged, run_time,
    tally, to_datetime, window,
)
from runlog.projections.tables import us

S = 1_000_000  # one second in microseconds
T0 = us(datetime(2024, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(("elapsed", "interval", "count"), [
    (3 * S, S, 3),  # exact: no overhang
    (int(2.5 * S), S, 3),  # ceil: the last bucket runs past the end
    (1, S, 1),  # one microsecond of range is one bucket
    (0, S, 0),  # an empty range has no buckets
    (-5 * S, S, 0),  # nor has a reversed one
    (3600 * S, 60 * S, 60),
    (1000 * S, S, MAX_BUCKETS),  # capped at 500, silently
    (int(2.5 * S), int(1.5 * S), 2),
])
def test_the_bucket_count_is_the_ceiling_of_the_range_over_the_interval_capped_at_500(elapsed, interval, count):
    assert window(T0, T0 + elapsed, interval).count == count


def test_the_last_bucket_ends_past_the_requested_end_and_a_capped_window_ends_at_its_500th():
    assert window(T0, T0 + int(2.5 * S), S).end == T0 + 3 * S
    assert window(T0, T0 + 1000 * S, S).end == T0 + 500 * S


@pytest.mark.parametrize(("moment", "index"), [
    (T0 - 1, None),  # before the start
    (T0, 0),  # a boundary belongs to the bucket it starts
    (T0 + S - 1, 0),
    (T0 + S, 1),
    (T0 + int(2.7 * S), 2),  # in the overhang past the requested end: counted
    (T0 + 3 * S, None),  # past the last bucket
])
def test_a_moment_falls_in_the_bucket_whose_half_open_range_holds_it(moment, index):
    assert window(T0, T0 + int(2.5 * S), S).index(moment) == index


def test_bucket_bounds_step_by_the_interval_from_the_start():
    win = window(T0, T0 + 10 * S, int(1.5 * S))
    assert [win.bounds(i) for i in range(2)] == [(T0, T0 + int(1.5 * S)), (T0 + int(1.5 * S), T0 + 3 * S)]


@pytest.mark.parametrize(("seconds", "micros"), [
    (1, S), (1.5, int(1.5 * S)), (0.9999996, S),  # rounded to the microsecond first, as timedelta does
    (86400, 86400 * S),
])
def test_an_interval_is_whole_microseconds(seconds, micros):
    assert interval_us(seconds) == micros


@pytest.mark.parametrize(("seconds", "detail"), [
    (0.5, "History interval must not be less than 1 second."),
    (0, "History interval must not be less than 1 second."),
    (-1, "History interval must not be less than 1 second."),
    (0.999999, "History interval must not be less than 1 second."),
    (1e30, "History interval is too large."),
])
def test_an_interval_under_a_second_or_beyond_any_time_is_refused(seconds, detail):
    with pytest.raises(HistoryRangeError, match=detail):
        interval_us(seconds)


def test_a_window_ending_after_the_latest_representable_time_is_refused():
    with pytest.raises(HistoryRangeError):
        window(T0, T0 + 2 * S, 10**18)


@pytest.mark.parametrize(("expected", "started", "state", "now", "late"), [
    (T0, T0 + 5 * S, "COMPLETED", T0 + 100 * S, 5 * S),  # started late
    (T0, T0 - 5 * S, "RUNNING", T0 + 100 * S, 0),  # started early: never negative
    (T0, None, "SCHEDULED", T0 + 100 * S, 100 * S),  # past due, not started: late until now
    (T0, None, "PENDING", T0 - S, 0),  # not yet due
    (T0, None, "CANCELLED", T0 + 100 * S, 0),  # finished without running
    (T0, None, "CRASHED", T0 + 100 * S, 0),
    (T0, None, None, T0 + 100 * S, 0),  # no state: SQL's NULL NOT IN (...) is not true
    (None, T0, "COMPLETED", T0, 0),  # nothing expected
])
def test_lateness_follows_prefects_estimated_start_time_delta(expected, started, state, now, late):
    assert lateness(expected, started, state, now) == late


@pytest.mark.parametrize(("total", "state", "stamp", "now", "seconds"), [
    (12.5, "COMPLETED", T0, T0 + 100 * S, 12.5),
    (12.5, "RUNNING", T0, T0 + 30 * S, 42.5),  # the current stretch counts, up to now
    (0.0, "RUNNING", T0 + 10 * S, T0, 0.0),  # a state stamped after "now" clamps at 0
    (3.0, "PAUSED", T0, T0 + 30 * S, 3.0),
])
def test_run_time_adds_a_running_runs_current_stretch(total, state, stamp, now, seconds):
    assert run_time(total, state, stamp, now) == pytest.approx(seconds)


def test_runs_are_tallied_per_bucket_by_current_state_type_and_name_placed_by_expected_start():
    win = window(T0, T0 + 3 * S, S)
    now = T0 + 10 * S
    runs = [
        RunPoint(T0, T0 + 2 * S, "COMPLETED", "Completed", 4.0, T0 + 6 * S),  # bucket 0, 2 s late
        RunPoint(T0 + S // 2, T0 + S, "COMPLETED", "Completed", 1.0, T0 + 2 * S),  # bucket 0
        RunPoint(T0 + S // 2, None, "SCHEDULED", "Late", 0.0, T0),  # bucket 0, late until now
        RunPoint(T0 + 2 * S, T0 + 2 * S, "RUNNING", "Running", 1.0, T0 + 8 * S),  # bucket 2, running
        RunPoint(T0 + 3 * S, None, "SCHEDULED", "Scheduled", 0.0, T0),  # past the window
        RunPoint(T0 - 1, None, "SCHEDULED", "Scheduled", 0.0, T0),  # before it
        RunPoint(T0, None, None, None, 0.0, None),  # no state: left out
    ]
    assert tally(win, runs, now) == [
        [StateTally("COMPLETED", "Completed", 2, 5.0, 2.5), StateTally("SCHEDULED", "Late", 1, 0.0, 9.5)],
        [],
        [StateTally("RUNNING", "Running", 1, 3.0, 0.0)],
    ]


def test_merged_tallies_sum_per_bucket_and_state_and_stay_sorted():
    buckets = [[StateTally("RUNNING", "Running", 1, 10.0, 0.0)], []]
    more = [
        (0, StateTally("COMPLETED", "Completed", 2, 5.0, 1.0)),
        (0, StateTally("RUNNING", "Running", 3, 1.5, 2.0)),
        (1, StateTally("SCHEDULED", "Late", 1, 0.0, 7.0)),
    ]
    assert merged(buckets, more) == [
        [StateTally("COMPLETED", "Completed", 2, 5.0, 1.0), StateTally("RUNNING", "Running", 4, 11.5, 2.0)],
        [StateTally("SCHEDULED", "Late", 1, 0.0, 7.0)],
    ]


def test_a_window_of_no_buckets_tallies_nothing():
    assert tally(window(T0, T0, S), [RunPoint(T0, None, "SCHEDULED", "Scheduled", 0.0, T0)], T0) == []


def test_to_datetime_is_the_inverse_of_the_tables_time_format():
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert to_datetime(us(moment)) == moment


@pytest.mark.parametrize(("after", "before", "now", "start", "width"), [
    # From after's minute to the end of before's minute: 10:00 to 10:19:59.999999 in 20 buckets.
    (datetime(2024, 1, 1, 10, 0, 30), datetime(2024, 1, 1, 10, 19, 5), None,
     datetime(2024, 1, 1, 10, 0), 60_000_000),
    # Without before_, up to the end of now's minute.
    (datetime(2024, 1, 1, 10, 0), None, datetime(2024, 1, 1, 10, 39, 1),
     datetime(2024, 1, 1, 10, 0), 120_000_000),
])
def test_the_dashboard_splits_whole_minutes_into_twenty_buckets(after, before, now, start, width):
    def at(moment):
        return None if moment is None else us(moment.replace(tzinfo=UTC))

    got_start, got_width = dashboard_window(at(after), at(before), at(now) or 0)
    assert to_datetime(got_start) == start.replace(tzinfo=UTC)
    # (end - start) / 20, e.g. 1,199,999,999 us / 20, rounded to the microsecond as a timedelta divides.
    assert got_width == width
