"""Run history in time buckets, as Prefect 3.8's ``/flow_runs/history`` answers it: the bucket
maths and the per-run estimates as pure functions over integer microseconds since the epoch
(the runs tables' time format), so the query that reads the runs (api/queries/history.py) and
a pre-aggregated view of them share one definition.

Prefect's rules, kept here: ceil((end - start) / interval) buckets, at most 500, the last one
running past the end (runs in that overhang are counted); an interval under one second is
refused; each run is placed by its expected start time and counted under its current state
type and name; the run time and lateness sums clamp each run's value at zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

MAX_BUCKETS = 500
"""Prefect answers at most this many buckets, silently dropping the rest of the range."""

MIN_INTERVAL_US = 1_000_000
"""Prefect refuses an interval under one second."""

TERMINAL_TYPES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "CRASHED"})
RUNNING = "RUNNING"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryRangeError(ValueError):
    """A history request that cannot be answered: its message is the client's 422 detail."""


def interval_us(seconds: float) -> int:
    """An interval in seconds as whole microseconds, rounded as Prefect's timedelta(seconds=)
    rounds it (so 0.9999996 s is one second); refused under one second, as Prefect does."""
    try:
        micros = timedelta(seconds=seconds) // timedelta(microseconds=1)
    except (OverflowError, ValueError):
        raise HistoryRangeError("History interval is too large.") from None
    if micros < MIN_INTERVAL_US:
        raise HistoryRangeError("History interval must not be less than 1 second.")
    return micros


def to_datetime(micros: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Window:
    """``count`` buckets of ``interval`` microseconds from ``start``."""

    start: int
    interval: int
    count: int

    @property
    def end(self) -> int:
        """Where the last bucket ends (exclusive): at or past the requested end."""
        return self.start + self.count * self.interval

    def index(self, moment: int) -> int | None:
        """The bucket holding ``moment``, or None outside the window."""
        if moment < self.start or moment >= self.end:
            return None
        return (moment - self.start) // self.interval

    def bounds(self, index: int) -> tuple[int, int]:
        begin = self.start + index * self.interval
        return begin, begin + self.interval


def window(start: int, end: int, interval: int) -> Window:
    """The buckets covering [start, end): none when end is not after start; an end beyond the
    last representable time is refused rather than overflowing."""
    if interval < MIN_INTERVAL_US:
        raise HistoryRangeError("History interval must not be less than 1 second.")
    elapsed = end - start
    count = min(-(-elapsed // interval), MAX_BUCKETS) if elapsed > 0 else 0
    result = Window(start, interval, count)
    try:
        to_datetime(result.end)
    except OverflowError:
        raise HistoryRangeError("History range ends after the latest representable time.") from None
    return result


def lateness(expected: int | None, started: int | None, state_type: str | None, now: int) -> int:
    """Prefect's estimated start time delta, in microseconds, as its SQL computes it: how late
    the run started; for a run not started, not finished and past due, how late it is now;
    else 0. A run without a state is neither (SQL's NULL NOT IN (...) is not true)."""
    if expected is None:
        return 0
    if started is not None:
        return max(started - expected, 0)
    if state_type is not None and state_type not in TERMINAL_TYPES and expected < now:
        return now - expected
    return 0


def run_time(total_run_time: float, state_type: str | None, state_timestamp: int | None, now: int) -> float:
    """Prefect's estimated run time in seconds, at least 0: the run's total, plus the current
    stretch for a Running run (now - its state's timestamp)."""
    seconds = total_run_time
    if state_type == RUNNING and state_timestamp is not None:
        seconds += (now - state_timestamp) / 1_000_000
    return max(seconds, 0.0)


class RunPoint(NamedTuple):
    """What the history needs of one run (times in microseconds since the epoch)."""

    expected_start_time: int
    start_time: int | None
    state_type: str | None
    state_name: str | None
    total_run_time: float
    state_timestamp: int | None


@dataclass
class StateTally:
    """The runs of one bucket under one state: Prefect's HistoryResponseState."""

    state_type: str
    state_name: str
    count_runs: int = 0
    sum_estimated_run_time: float = 0.0
    sum_estimated_lateness: float = 0.0


def tally(win: Window, runs: Iterable[RunPoint], now: int) -> list[list[StateTally]]:
    """Each bucket's tallies by (state type, state name), sorted by them; an empty bucket has
    none. Runs outside the window, or without a state (Prefect cannot answer one), are left out."""
    buckets: list[dict[tuple[str, str], StateTally]] = [{} for _ in range(win.count)]
    for run in runs:
        index = win.index(run.expected_start_time)
        if index is None or run.state_type is None:
            continue
        name = run.state_name or ""
        key = (run.state_type, name)
        entry = buckets[index].get(key)
        if entry is None:
            entry = buckets[index][key] = StateTally(run.state_type, name)
        entry.count_runs += 1
        entry.sum_estimated_run_time += run_time(run.total_run_time, run.state_type, run.state_timestamp, now)
        entry.sum_estimated_lateness += lateness(run.expected_start_time, run.start_time, run.state_type, now) / 1e6
    return [[bucket[key] for key in sorted(bucket)] for bucket in buckets]


def merged(buckets: list[list[StateTally]], more: Iterable[tuple[int, StateTally]]) -> list[list[StateTally]]:
    """``buckets`` with the tallies ``more`` (each with its bucket index) added to theirs: the
    same state in the same bucket sums, the rest joins; each bucket stays sorted by state."""
    keyed = [{(t.state_type, t.state_name): t for t in bucket} for bucket in buckets]
    for index, extra in more:
        key = (extra.state_type, extra.state_name)
        entry = keyed[index].get(key)
        if entry is None:
            keyed[index][key] = StateTally(extra.state_type, extra.state_name, extra.count_runs,
                                           extra.sum_estimated_run_time, extra.sum_estimated_lateness)
        else:
            entry.count_runs += extra.count_runs
            entry.sum_estimated_run_time += extra.sum_estimated_run_time
            entry.sum_estimated_lateness += extra.sum_estimated_lateness
    return [[bucket[key] for key in sorted(bucket)] for bucket in keyed]


# -- the UI dashboard's task run counts -----------------------------------------------------------

DASHBOARD_BUCKETS = 20
FAILED_TYPES = frozenset({"FAILED", "CRASHED"})
_MINUTE = 60_000_000


def dashboard_window(after: int, before: int | None, now: int) -> tuple[int, int]:
    """Prefect's /ui/task_runs/dashboard/counts range, as (start, bucket width) in microseconds:
    from ``after`` down to its minute to the last microsecond of ``before``'s minute (or now's),
    in 20 buckets, each width rounded to the microsecond as a timedelta divided by 20 is."""
    start = after - after % _MINUTE
    last = before if before is not None else now
    end = last - last % _MINUTE + _MINUTE - 1
    width = timedelta(microseconds=end - start) / DASHBOARD_BUCKETS
    return start, width // timedelta(microseconds=1)
