"""Schedule maths, pure: the run times of Prefect's three schedule kinds and the scheduler's choice
of which runs to create for one schedule.

``dates`` gives the times of an IntervalSchedule, CronSchedule or RRuleSchedule from ``start``
(inclusive) up to ``end`` (inclusive), at most ``n`` of them, as Prefect 3.8.8's server computes
them (``prefect/server/schemas/schedules.py``), daylight-saving changes included:

- interval: counted from the anchor date. An interval of whole days or more keeps the local
  wall-clock time across a DST change (a daily 09:00 stays 09:00); a shorter one steps in
  absolute time (hourly runs fire every real hour, so a local hour repeats in autumn).
- cron: croniter walks local wall-clock times; a time that a DST change skips moves to the
  hour before it and a time that repeats fires once, at its first occurrence.
- rrule: python-dateutil's rrule with its DTSTART taken in the schedule's time zone (2020-01-01
  when the rule names none).

``plan_runs`` is the scheduler's decision for one schedule (``prefect/server/services/
scheduler.py`` and ``models/deployments._generate_scheduled_flow_runs``): whether the schedule
needs runs (fewer than ``min_runs`` future auto-scheduled runs, or none reaching
``min_scheduled_time`` ahead) and, if so, the times from now on, at least ``min_runs`` and up to
``min_scheduled_time`` ahead, at most ``max_runs`` and never past ``max_scheduled_time``,
leaving out those that already have a run. ``scheduled_run_key`` and ``scheduled_run_id`` name
the run of one (deployment, schedule, time) the way Prefect's idempotency key does, so a run is
never created twice, however often or by however many processes the scheduler goes round.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import dateutil.rrule
import dateutil.tz
import msgspec

from runlog.schema.events import StateDetails, StateType

from .flow_runs import run_id_for_key
from .orchestration import ProposedState

MAX_ITERATIONS = 1000
"""Prefect looks at no more than this many candidate times per call."""
RRULE_DEFAULT_START = datetime(2020, 1, 1)
"""Prefect's DTSTART for a rule that names none."""
MAX_RRULE_LENGTH = 6500


class IntervalSchedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    interval: timedelta
    anchor_date: datetime
    timezone: str | None = None


class CronSchedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    cron: str
    timezone: str | None = None
    day_or: bool = True


class RRuleSchedule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rrule: str
    timezone: str | None = "UTC"


Schedule = IntervalSchedule | CronSchedule | RRuleSchedule


class InvalidSchedule(ValueError):
    """A schedule Prefect refuses (its messages): the API answers it with 422."""


def validate(schedule: Schedule) -> Schedule:
    """The schedule if Prefect would accept it, else InvalidSchedule saying why."""
    if schedule.timezone and schedule.timezone not in _timezones():
        raise InvalidSchedule(
            f'Invalid timezone: "{schedule.timezone}" (specify in IANA tzdata format, for example, America/New_York)'
        )
    if isinstance(schedule, IntervalSchedule):
        if schedule.interval <= timedelta(0):
            raise InvalidSchedule("The interval must be positive")
        if schedule.anchor_date.tzinfo is None:
            raise InvalidSchedule("The anchor date needs a time zone offset")
    elif isinstance(schedule, CronSchedule):
        from croniter import croniter  # not at import: it runs `file` on the interpreter to learn its word size

        if not croniter.is_valid(schedule.cron):
            raise InvalidSchedule(f'Invalid cron string: "{schedule.cron}"')
        if any(part.casefold() in ("r", "h") for part in schedule.cron.split()):
            raise InvalidSchedule(f'Random and Hashed expressions are unsupported, received: "{schedule.cron}"')
    else:
        try:
            dateutil.rrule.rrulestr(schedule.rrule, cache=True)
        except ValueError as exc:
            raise InvalidSchedule(f'Invalid RRule string "{schedule.rrule}": {exc}') from None
        if len(schedule.rrule) > MAX_RRULE_LENGTH:
            raise InvalidSchedule(
                f'Invalid RRule string "{schedule.rrule[:40]}..."\nMax length is {MAX_RRULE_LENGTH}, '
                f"got {len(schedule.rrule)}"
            )
    return schedule


_TIMEZONES: frozenset[str] | None = None


def _timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones()) | {"UTC"}
    return _TIMEZONES


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f'Invalid timezone: "{name}"') from None


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be an aware datetime")
    return moment


def _localize(wall: datetime, zone: ZoneInfo, fold: int) -> datetime:
    """A local wall-clock time (naive) in ``zone`` as Prefect's datetime library resolves it:
    ``fold`` picks the first (0) or second (1) of a repeated time; a time skipped by a DST
    change moves by the gap, back for fold 0 and forward for fold 1."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    exists = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
    chosen = (first, second)[fold if exists else 1 - fold]
    return chosen.astimezone(UTC).astimezone(zone)  # a skipped time comes out as the real one


def _interval_dates(schedule: IntervalSchedule, start: datetime, end: datetime | None) -> Iterator[datetime]:
    # Arithmetic and comparisons in UTC: Python compares and subtracts two datetimes of one
    # zone by their wall clocks, which is wrong across a DST change.
    zone = _zone(schedule.timezone)
    anchor = _aware(schedule.anchor_date, "anchor_date").astimezone(UTC)
    start = start.astimezone(UTC)
    limit = end.astimezone(UTC) if end is not None else None
    total = schedule.interval.total_seconds()
    days = schedule.interval.days
    rest = total - days * 86400

    def advance(moment: datetime) -> datetime:
        if days:
            # Whole days are calendar days: the wall clock moves, then the zone resolves it.
            wall = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=days, seconds=rest)
            return _localize(wall, zone, fold=1).astimezone(UTC)
        return moment + timedelta(seconds=rest)

    offset = int((start - anchor).total_seconds() / total)  # truncated toward zero, as Prefect does
    moment = anchor + timedelta(seconds=total * offset)
    while moment < start:
        moment = advance(moment)
    for _ in range(MAX_ITERATIONS + 2):
        if limit is not None and moment > limit:
            return
        yield moment.astimezone(zone)
        moment = advance(moment)


def _cron_dates(schedule: CronSchedule, start: datetime, end: datetime | None) -> Iterator[datetime]:
    zone = _zone(schedule.timezone)
    local = start.astimezone(zone) - timedelta(seconds=1)  # so that ``start`` itself may fire
    if local.microsecond:
        local += timedelta(seconds=1)
    from croniter import croniter

    walker = croniter(schedule.cron, local.replace(tzinfo=None), day_or=schedule.day_or)
    for _ in range(MAX_ITERATIONS + 2):
        moment = _localize(walker.get_next(datetime), zone, fold=0)
        if end is not None and moment.astimezone(UTC) > end.astimezone(UTC):
            return
        yield moment


def _rrule(schedule: RRuleSchedule, zone: dateutil.tz.tzfile) -> dateutil.rrule.rrule | dateutil.rrule.rruleset:
    rule = dateutil.rrule.rrulestr(schedule.rrule, dtstart=RRULE_DEFAULT_START, cache=True)

    def localized(r: dateutil.rrule.rrule) -> dateutil.rrule.rrule:
        changes = {"dtstart": r._dtstart.replace(tzinfo=zone)}
        if r._until:
            changes["until"] = r._until.replace(tzinfo=zone)
        return r.replace(**changes)

    if isinstance(rule, dateutil.rrule.rrule):
        return localized(rule)
    rule._rrule = [localized(r) for r in rule._rrule]
    rule._exrule = [localized(r) for r in rule._exrule]
    rule._rdate = [d.replace(tzinfo=zone) for d in rule._rdate]
    rule._exdate = [d.replace(tzinfo=zone) for d in rule._exdate]
    return rule


def _rrule_dates(schedule: RRuleSchedule, start: datetime, end: datetime | None) -> Iterator[datetime]:
    name = schedule.timezone or "UTC"
    zone = _zone(name)
    rule = _rrule(schedule, dateutil.tz.gettz(name))
    for count, moment in enumerate(rule.xafter(start.astimezone(zone), count=None, inc=True)):
        moment = moment.astimezone(zone)
        if end is not None and moment.astimezone(UTC) > end.astimezone(UTC):
            return
        yield moment
        if count > MAX_ITERATIONS:
            return


def dates(schedule: Schedule, *, start: datetime, end: datetime | None = None, n: int | None = None) -> list[datetime]:
    """The schedule's times from ``start`` (inclusive) to ``end`` (inclusive), at most ``n``
    (default: 1 without ``end``, else up to Prefect's 1,000), ascending, in the schedule's zone."""
    return list(iter_dates(schedule, start=start, end=end, n=n))


def iter_dates(
    schedule: Schedule, *, start: datetime, end: datetime | None = None, n: int | None = None,
) -> Iterator[datetime]:
    _aware(start, "start")
    if end is not None:
        _aware(end, "end")
    if n is None:
        n = MAX_ITERATIONS if end is not None else 1
    if isinstance(schedule, IntervalSchedule):
        candidates = _interval_dates(schedule, start, end)
    elif isinstance(schedule, CronSchedule):
        candidates = _cron_dates(schedule, start, end)
    else:
        candidates = _rrule_dates(schedule, start, end)
    seen: set[datetime] = set()  # in UTC: two times of one zone compare by wall clock, fold ignored
    for tried, moment in enumerate(candidates):
        instant = moment.astimezone(UTC)
        if instant not in seen:  # DST changes can produce one instant twice
            seen.add(instant)
            yield moment
        if len(seen) >= n or tried > MAX_ITERATIONS:
            return


# -- the scheduler's choice ----------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerLimits:
    """Prefect's scheduler settings (PREFECT_SERVER_SERVICES_SCHEDULER_*), with its defaults."""

    min_runs: int = 3
    max_runs: int = 100
    min_scheduled_time: timedelta = timedelta(hours=1)
    max_scheduled_time: timedelta = timedelta(days=100)


DEFAULT_LIMITS = SchedulerLimits()


def needs_runs(future_runs: Sequence[datetime], now: datetime, limits: SchedulerLimits = DEFAULT_LIMITS) -> bool:
    """Whether the scheduler visits a schedule whose auto-scheduled runs still Scheduled are
    at ``future_runs``: fewer than ``min_runs`` of them from now on, or the last one short of
    ``now + min_scheduled_time``."""
    ahead = [moment.astimezone(UTC) for moment in future_runs if moment.astimezone(UTC) >= now.astimezone(UTC)]
    if len(ahead) < limits.min_runs:
        return True
    return bool(ahead) and max(ahead) < now.astimezone(UTC) + limits.min_scheduled_time


def horizon_dates(schedule: Schedule, now: datetime, limits: SchedulerLimits = DEFAULT_LIMITS) -> list[datetime]:
    """The times the scheduler wants runs at: from ``now``, until both minimums are met (a
    count and a time ahead), never more than ``max_runs`` nor past ``now + max_scheduled_time``."""
    chosen: list[datetime] = []
    for moment in iter_dates(schedule, start=now, end=now + limits.max_scheduled_time, n=limits.max_runs):
        chosen.append(moment)
        if len(chosen) >= limits.min_runs and moment.astimezone(UTC) >= now.astimezone(UTC) + limits.min_scheduled_time:
            break
    return chosen


def plan_runs(
    schedule: Schedule, now: datetime, *, future_runs: Sequence[datetime] = (),
    existing: Collection[datetime] | None = None, limits: SchedulerLimits = DEFAULT_LIMITS,
) -> list[datetime]:
    """The times to create runs at for one schedule now: none when the schedule has enough
    (``needs_runs`` over its future Scheduled auto-scheduled runs), else ``horizon_dates`` less
    those that already have a run (``existing``, any state; default ``future_runs``)."""
    if not needs_runs(future_runs, now, limits):
        return []
    have = {moment.astimezone(UTC) for moment in (future_runs if existing is None else existing)}
    return [moment for moment in horizon_dates(schedule, now, limits) if moment.astimezone(UTC) not in have]


def scheduled_run_key(deployment_id: UUID, schedule_id: UUID, moment: datetime) -> str:
    """Prefect's idempotency key of an auto-scheduled run: the deployment, the schedule and the
    time as the schedule's zone writes it ("2026-03-09 09:00:00-04:00")."""
    return f"scheduled {deployment_id} {schedule_id} {moment.isoformat(' ')}"


def scheduled_run_id(flow_id: UUID, deployment_id: UUID, schedule_id: UUID, moment: datetime) -> UUID:
    """The id of that run: the one flow_runs.create gives a run with that key, so every
    scheduler process derives the same id and the run's stream is created once."""
    return run_id_for_key(flow_id, scheduled_run_key(deployment_id, schedule_id, moment))


def scheduled_state(moment: datetime) -> ProposedState:
    """The first state of an auto-scheduled run, as Prefect's scheduler writes it."""
    return ProposedState(
        type=StateType.SCHEDULED, name="Scheduled", message="Flow run scheduled",
        state_details=StateDetails(scheduled_time=moment.astimezone(UTC)),
    )


AUTO_SCHEDULED_TAG = "auto-scheduled"


def scheduled_run_tags(deployment_tags: Sequence[str]) -> list[str]:
    """An auto-scheduled run's tags: Prefect puts "auto-scheduled" before the deployment's."""
    return [AUTO_SCHEDULED_TAG, *deployment_tags]


__all__ = [
    "AUTO_SCHEDULED_TAG", "CronSchedule", "DEFAULT_LIMITS", "IntervalSchedule", "InvalidSchedule", "RRuleSchedule",
    "Schedule", "SchedulerLimits", "dates", "horizon_dates", "iter_dates", "needs_runs", "plan_runs",
    "scheduled_run_id", "scheduled_run_key", "scheduled_run_tags", "scheduled_state", "validate",
]
