"""The reads behind the run history routes and the UI's summaries, over the runs tables with the
run filters of run_filters.py: one query per request. The bucket maths and the per-run estimates
are projections/history.py's pure functions; "now" is the caller's (the app's injected clock).

An unfiltered history whose buckets the pre-aggregated projection (projections/run_history.py)
tiles exactly is answered from it instead, with the events it has not folded yet folded in at
read time, unless there are more than AGGREGATE_MAX_LAG of them: then from the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections.history import (
    FAILED_TYPES, TERMINAL_TYPES, RunPoint, StateTally, Window, dashboard_window, merged, tally,
)
from runlog.projections import run_history
from runlog.projections.tables import in_list, list_param, us

from ..schemas import filters as f
from .filtering import Related, Resource
from .run_filters import DEPLOYMENT_OF_RUN, FLOW_OF_RUN, FLOW_RUN, FLOW_RUN_QUERY, TASK_RUN, TASK_RUN_QUERY


class _State(msgspec.Struct):
    timestamp: datetime


class _Times(msgspec.Struct):
    """What the history reads of a run's encoded view (the rest is skipped, not decoded)."""

    total_run_time: float = 0.0
    state: _State | None = None


_decode_times = msgspec.json.Decoder(_Times).decode

_TERMINAL_LIST = ", ".join(f"'{t}'" for t in sorted(TERMINAL_TYPES))  # our own constants

# One statement, so both parts read one snapshot (see filtering.fetch_page_and_count): runs not
# Running summed in SQL by bucket and state (their run time is their total, read from the view's
# JSON, the one place it is kept; their lateness is _lateness_sql), then the Running runs one
# by one with their views, whose time depends on "now" and their state's timestamp, which only
# the view holds; those few are tallied in Python (projections/history.py); last the log's head,
# which the runs tables (an inline projection) reflect. The first column says which part a row is of.
_HISTORY = (
    "SELECT 0, ({a}.expected_start_time - ?) / ?, {a}.state_type, {a}.state_name, COUNT(*), SUM({total}), "
    "SUM({lateness}), NULL, NULL FROM {table} {a} WHERE {a}.expected_start_time >= ? "
    "AND {a}.expected_start_time < ? AND {a}.state_type IS NOT NULL AND {a}.state_type <> 'RUNNING' AND {where} "
    "GROUP BY 2, 3, 4 "
    "UNION ALL SELECT 1, {a}.expected_start_time, {a}.state_type, {a}.state_name, 1, 0, 0, {a}.start_time, {a}.view "
    "FROM {table} {a} WHERE {a}.expected_start_time >= ? AND {a}.expected_start_time < ? "
    "AND {a}.state_type = 'RUNNING' AND {where} "
    "UNION ALL SELECT 2, (SELECT coalesce(max(position), 0) FROM events), NULL, NULL, NULL, NULL, NULL, NULL, NULL"
)
_TOTAL_RUN_TIME = {
    "sqlite": "COALESCE(json_extract(CAST({a}.view AS TEXT), '$.total_run_time'), 0)",
    "postgres": "COALESCE((convert_from({a}.view, 'UTF8')::json ->> 'total_run_time')::float8, 0)",
}


def _lateness_sql(a: str) -> str:
    """Prefect's estimated start time delta in microseconds, given "now" twice as parameters."""
    return (
        f"CASE WHEN {a}.start_time > {a}.expected_start_time THEN {a}.start_time - {a}.expected_start_time "
        f"WHEN {a}.start_time IS NULL AND {a}.state_type NOT IN ({_TERMINAL_LIST}) AND {a}.expected_start_time < ? "
        f"THEN ? - {a}.expected_start_time ELSE 0 END"
    )


def _point(row: Sequence[Any]) -> RunPoint:
    """A Running run's row of _HISTORY as the tally takes it."""
    times = _decode_times(bytes(row[8]))
    stamp = us(times.state.timestamp) if times.state is not None else None
    return RunPoint(row[1], row[7], row[2], row[3], times.total_run_time, stamp)


class History(NamedTuple):
    """A history's buckets, the log position they reflect, and where they were read from."""

    buckets: list[list[StateTally]]
    position: int
    source: str  # "aggregate" or "query"


AGGREGATE_MAX_LAG = 10_000
"""Events the history projection may lag the log's head by and still answer (it folds them in
at read time, projections/run_history.read_history): further behind (catching up after an
upgrade or a restore), an answer comes from the query instead."""

_KINDS = {"flow_runs": run_history.FLOW_RUN, "task_runs": run_history.TASK_RUN}


async def queried_history(
    store: EventStore, table: str, alias: str, query: Resource, body: Any, win: Window, now: datetime
) -> History:
    """The history from the runs table, one statement (the fallback for every request)."""
    moment = us(now)
    async with store.reading() as tx:
        where, params = query.where(tx, body)
        sql = _HISTORY.format(
            a=alias, table=table, where=where, total=_TOTAL_RUN_TIME[tx.dialect].format(a=alias),
            lateness=_lateness_sql(alias),
        )
        rows = await tx.fetch(
            sql, win.start, win.interval, moment, moment, win.start, win.end, *params, win.start, win.end, *params
        )
    position = next(int(row[1]) for row in rows if row[0] == 2)
    if win.count == 0:
        return History([], position, "query")
    running = (_point(row) for row in rows if row[0] == 1)
    buckets = tally(win, running, moment)  # type: ignore[arg-type]
    return History(merged(buckets, (
        (int(row[1]), StateTally(row[2], row[3] or "", int(row[4]), float(row[5] or 0), float(row[6] or 0) / 1e6))
        for row in rows if row[0] == 0
    )), position, "query")


def _unfiltered(body: Any) -> bool:
    """Whether no filter of ``body`` (a count request) admits fewer runs than all: each is
    absent or equal to its type's empty filter."""
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is not None and value != type(value)():
            return False
    return True


async def aggregated_history(store: EventStore, table: str, win: Window, now: datetime) -> History | None:
    """The unfiltered history from the aggregate brought up to the log's head, or None when it
    cannot answer exactly (the buckets are not whole grains) or lags too far."""
    grain = run_history.grain_for(win)
    if grain is None:
        return None
    snapshot = await run_history.read_history(
        store, _KINDS[table], win, grain, us(now), max_tail=AGGREGATE_MAX_LAG,  # type: ignore[arg-type]
    )
    if snapshot is None:
        return None
    return History(snapshot.buckets(), snapshot.position, "aggregate")


async def _history(
    store: EventStore, table: str, alias: str, query: Resource, body: Any, win: Window, now: datetime
) -> History:
    if _unfiltered(body):
        answer = await aggregated_history(store, table, win, now)
        if answer is not None:
            return answer
    return await queried_history(store, table, alias, query, body, win, now)


async def flow_run_history(store: EventStore, filters: f.FlowRunCountRequest, win: Window, now: datetime) -> History:
    """Each bucket's flow runs by state, among the runs ``filters`` admits."""
    return await _history(store, "flow_runs", "fr", FLOW_RUN_QUERY, filters, win, now)


async def task_run_history(store: EventStore, filters: f.TaskRunCountRequest, win: Window, now: datetime) -> History:
    return await _history(store, "task_runs", "tr", TASK_RUN_QUERY, filters, win, now)


# -- /flow_runs/lateness ------------------------------------------------------------------------

_LATENESS = "SELECT AVG(CAST({lateness} AS DOUBLE PRECISION)) FROM flow_runs fr WHERE {where}"


async def average_lateness(store: EventStore, filters: f.FlowRunCountRequest, now: datetime) -> float | None:
    """The mean lateness in seconds of the runs ``filters`` admits; None when there are none."""
    moment = us(now)
    async with store.reading() as tx:
        where, params = FLOW_RUN_QUERY.where(tx, filters)
        rows = await tx.fetch(_LATENESS.format(lateness=_lateness_sql("fr"), where=where), moment, moment, *params)
    value = rows[0][0]
    return None if value is None else float(value) / 1e6


# -- /ui/flow_runs/count-task-runs, /ui/flows/count-deployments, /ui/flows/next-runs -----------


# A task run that is the parent of a subflow run is the subflow's, not a task of its own.
_TASK_RUNS_PER_FLOW_RUN = (
    "SELECT tr.flow_run_id, COUNT(*) FROM task_runs tr WHERE {in_list} "
    "AND NOT EXISTS (SELECT 1 FROM flow_runs sfr WHERE sfr.parent_task_run_id = tr.id) GROUP BY tr.flow_run_id"
)
_DEPLOYMENTS_PER_FLOW = "SELECT d.flow_id, COUNT(*) FROM deployments d WHERE {in_list} GROUP BY d.flow_id"


async def task_run_counts(store: EventStore, flow_run_ids: list[UUID]) -> dict[UUID, int]:
    return await _counts(store, _TASK_RUNS_PER_FLOW_RUN, "tr.flow_run_id", flow_run_ids)


async def deployment_counts(store: EventStore, flow_ids: list[UUID]) -> dict[UUID, int]:
    return await _counts(store, _DEPLOYMENTS_PER_FLOW, "d.flow_id", flow_ids)


async def _counts(store: EventStore, sql: str, column: str, ids: list[UUID]) -> dict[UUID, int]:
    """``sql`` (ours) counts rows per ``column`` among ``ids``: every id asked, 0 if none."""
    if not ids:
        return {}
    async with store.reading() as tx:
        rows = await tx.fetch(sql.format(in_list=in_list(tx, column)), list_param(tx, [str(i) for i in ids]))
    found = {row[0]: int(row[1]) for row in rows}
    return {i: found.get(str(i), 0) for i in ids}


# Each flow's Scheduled run due soonest (ties to the smallest id, so the answer is stable): one
# index probe per flow asked (flow_runs_flow_scheduled), however many runs it has scheduled.
_IDS = {"sqlite": "json_each(?) ids", "postgres": "unnest(?::text[]) AS ids(value)"}
_NEXT_RUNS = (
    "SELECT fr.flow_id, fr.id, fr.name, fr.state_name, fr.state_type, fr.next_scheduled_start_time "
    "FROM flow_runs fr WHERE fr.id IN (SELECT (SELECT x.id FROM flow_runs x WHERE x.flow_id = ids.value "
    "AND x.state_type = 'SCHEDULED' AND x.next_scheduled_start_time IS NOT NULL "
    "ORDER BY x.next_scheduled_start_time, x.id LIMIT 1) FROM {ids})"
)


async def next_runs(store: EventStore, flow_ids: list[UUID]) -> dict[UUID, tuple[Any, ...] | None]:
    """Per flow asked, its next Scheduled run as (id, name, state name, state type, next
    scheduled start in microseconds), or None."""
    if not flow_ids:
        return {}
    async with store.reading() as tx:
        rows = await tx.fetch(_NEXT_RUNS.format(ids=_IDS[tx.dialect]), list_param(tx, [str(i) for i in flow_ids]))
    first = {row[0]: tuple(row[1:]) for row in rows}
    return {i: first.get(str(i)) for i in flow_ids}


# -- /ui/task_runs/count and /ui/task_runs/dashboard/counts -------------------------------------

_BY_STATE = (
    "SELECT tr.state_type, COUNT(*) FROM task_runs tr WHERE tr.state_type IS NOT NULL AND {where} "
    "GROUP BY tr.state_type"
)


async def task_run_counts_by_state(store: EventStore, filters: f.TaskRunCountRequest) -> dict[str, int]:
    async with store.reading() as tx:
        where, params = TASK_RUN_QUERY.where(tx, filters)
        rows = await tx.fetch(_BY_STATE.format(where=where), *params)
    return {row[0]: int(row[1]) for row in rows}


# The dashboard's task runs may also be filtered by their flow run's pool and queue.
DASHBOARD_QUERY = Resource({
    "task_runs": TASK_RUN,
    ("flow_runs", "flows", "deployments", "work_pools", "work_queues"): Related(
        "EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = tr.flow_run_id AND {where})",
        Resource({
            "flow_runs": FLOW_RUN, "flows": FLOW_OF_RUN, "deployments": DEPLOYMENT_OF_RUN,
            "work_pools": FLOW_RUN_QUERY.entries["work_pools"],
            "work_queues": FLOW_RUN_QUERY.entries["work_pool_queues"],
        }),
    ),
})

# Finished task runs only, placed by start time; the filter bounds start_time from below by
# the window's start, so every offset is >= 0 and integer division is the floor.
_DASHBOARD = (
    "SELECT (tr.start_time - ?) / ?, "
    "SUM(CASE WHEN tr.state_type IN ({failed}) THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN tr.state_type IN ({failed}) THEN 0 ELSE 1 END) "
    "FROM task_runs tr WHERE tr.start_time IS NOT NULL AND tr.state_type IN ({terminal}) AND {where} GROUP BY 1"
).replace("{failed}", ", ".join(f"'{t}'" for t in sorted(FAILED_TYPES))).replace("{terminal}", _TERMINAL_LIST)


async def dashboard_counts(store: EventStore, body: Any, now: datetime) -> list[tuple[int, int]]:
    """(completed, failed) for each of the 20 buckets; ``body.task_runs.start_time.after_`` is set."""
    times = body.task_runs.start_time
    start, width = dashboard_window(us(times.after_), us(times.before_), us(now))  # type: ignore[arg-type]
    counts = [(0, 0)] * 20
    if width <= 0:
        return counts
    async with store.reading() as tx:
        where, params = DASHBOARD_QUERY.where(tx, body)
        rows = await tx.fetch(_DASHBOARD.replace("{where}", where), start, width, *params)
    for bucket, failed, completed in rows:
        # A run after the window's end (no before_, started after now) has no bucket: Prefect
        # fails on it; it is left out here.
        if 0 <= int(bucket) < len(counts):
            counts[int(bucket)] = (int(completed), int(failed))
    return counts
