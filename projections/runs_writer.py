"""Keeps the flow_runs and task_runs tables (and their tag tables) in step with the log.

Runs inline, inside the append's transaction: for the runs a batch touches it loads their
current views, folds the batch's events into them (projections/runs.py) and upserts the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from runlog.eventstore import PreparedWrite, RecordedEvent, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .cache import ViewCache
from .runs import FlowRunView, TaskRunView, evolve_flow_run, evolve_task_run
from .tables import in_list, list_param, us

FLOW_RUN_STREAM = "flow-run-"
TASK_RUN_STREAM = "task-run-"

_FLOW_RUN_TYPES = frozenset(
    {"flow_run.created", "flow_run.state_changed", "flow_run.updated", "flow_run.deleted"}
)
_TASK_RUN_TYPES = frozenset({"task_run.created", "task_run.state_changed", "task_run.updated", "task_run.deleted"})

SQL_UPSERT_FLOW_RUN = (
    "INSERT INTO flow_runs (id, version, flow_id, name, state_type, state_name, start_time, end_time, "
    "expected_start_time, next_scheduled_start_time, deployment_id, parent_task_run_id, work_queue_name, "
    "flow_version, idempotency_key, created, view) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET version = excluded.version, name = excluded.name, "
    "state_type = excluded.state_type, state_name = excluded.state_name, start_time = excluded.start_time, "
    "end_time = excluded.end_time, expected_start_time = excluded.expected_start_time, "
    "next_scheduled_start_time = excluded.next_scheduled_start_time, work_queue_name = excluded.work_queue_name, "
    "flow_version = excluded.flow_version, view = excluded.view"
)
SQL_UPSERT_TASK_RUN = (
    "INSERT INTO task_runs (id, version, flow_run_id, name, task_key, dynamic_key, state_type, state_name, "
    "state_timestamp, start_time, end_time, expected_start_time, created, view) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET version = excluded.version, flow_run_id = excluded.flow_run_id, "
    "name = excluded.name, task_key = excluded.task_key, dynamic_key = excluded.dynamic_key, "
    "state_type = excluded.state_type, state_name = excluded.state_name, "
    "state_timestamp = excluded.state_timestamp, start_time = excluded.start_time, "
    "end_time = excluded.end_time, expected_start_time = excluded.expected_start_time, view = excluded.view"
)
SQL_UPSERT = {"flow_runs": SQL_UPSERT_FLOW_RUN, "task_runs": SQL_UPSERT_TASK_RUN}
# PostgreSQL functions doing what apply's statements do, for a batch sent in one statement
# (migration 0006): rows as arrays of the table's row type, then deleted runs, runs whose tags
# are replaced, and the new tags as (run id, tag) pairs.
SQL_APPLY = {
    "flow_runs": "runlog_apply_flow_runs(?::flow_runs[], ?::text[], ?::text[], ?::text[], ?::text[])",
    "task_runs": "runlog_apply_task_runs(?::task_runs[], ?::text[], ?::text[], ?::text[], ?::text[])",
}
SQL_INSERT_TAG = {
    "flow_runs": "INSERT INTO flow_run_tags (run_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
    "task_runs": "INSERT INTO task_run_tags (run_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
}
SQL_DELETE_TAGS = {
    "flow_runs": "DELETE FROM flow_run_tags WHERE run_id = ?",
    "task_runs": "DELETE FROM task_run_tags WHERE run_id = ?",
}
SQL_DELETE_RUN = {
    "flow_runs": "DELETE FROM flow_runs WHERE id = ?",
    "task_runs": "DELETE FROM task_runs WHERE id = ?",
}

_view_encoder = msgspec.json.Encoder()
_flow_run_decoder = msgspec.json.Decoder(FlowRunView)
_task_run_decoder = msgspec.json.Decoder(TaskRunView)


def decode_flow_run(data: bytes) -> FlowRunView:
    return _flow_run_decoder.decode(data)


def decode_task_run(data: bytes) -> TaskRunView:
    return _task_run_decoder.decode(data)


def _state_columns(view: FlowRunView | TaskRunView) -> tuple[Any, Any]:
    state = view.state
    return (state.type.value, state.name) if state is not None else (None, None)


def _flow_run_row(view: FlowRunView) -> tuple:
    state_type, state_name = _state_columns(view)
    return (
        str(view.id), view.version, str(view.flow_id), view.name, state_type, state_name,
        us(view.start_time), us(view.end_time), us(view.expected_start_time), us(view.next_scheduled_start_time),
        _text(view.deployment_id), _text(view.parent_task_run_id), view.work_queue_name, view.flow_version,
        view.idempotency_key, us(view.created), _view_encoder.encode(view),
    )


def _task_run_row(view: TaskRunView) -> tuple:
    state_type, state_name = _state_columns(view)
    return (
        str(view.id), view.version, _text(view.flow_run_id), view.name, view.task_key, view.dynamic_key,
        state_type, state_name, us(view.state.timestamp if view.state else None), us(view.start_time),
        us(view.end_time), us(view.expected_start_time), us(view.created), _view_encoder.encode(view),
    )


def cache_key(table: str, run_id: object) -> str:
    return f"{table}:{run_id}"


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class RunsProjection:
    """The inline projection of flow runs and task runs.

    ``cache`` (projections/cache.py) may hold committed views; a view found there at exactly
    the version before a batch's first event for that run saves reading it back.
    """

    name = "runs"
    tables = ("flow_runs", "flow_run_tags", "task_runs", "task_run_tags")

    def __init__(self, cache: ViewCache | None = None) -> None:
        self.cache = cache if cache is not None else ViewCache(0)

    async def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        for table, prefix, evolve, decode_view, to_row, types in _TABLES:
            batch = [(e.stream_id, e.version, e.data) for e in events if e.type in types]
            if not batch:
                continue
            views, missing = self._known_views(batch, table, prefix)
            if missing:
                # The table name comes from this module's constants, never from input.
                sql = f"SELECT id, view FROM {table} WHERE {in_list(tx, 'id')}"
                rows = await tx.fetch(sql, list_param(tx, missing))
                views.update({row[0]: decode_view(bytes(row[1])) for row in rows})
            change = _fold(views, batch, prefix, evolve, to_row)
            if change.upserts:
                await tx.executemany(SQL_UPSERT[table], change.upserts)
            if change.deleted:
                await tx.executemany(SQL_DELETE_RUN[table], [(run_id,) for run_id in change.deleted])
            if change.untagged:
                await tx.executemany(SQL_DELETE_TAGS[table], [(run_id,) for run_id in change.untagged])
            if change.tags:
                await tx.executemany(SQL_INSERT_TAG[table], change.tags)

    def prepare(self, rows: Sequence[Row]) -> list[PreparedWrite] | None:
        """The batch's writes as one call per table, when every view it needs is cached.

        The writer sends these with the append in one statement (eventstore/postgres.py);
        None makes it take the transaction path, where ``apply`` reads what is missing.
        """
        writes = []
        for table, prefix, evolve, _decode_view, to_row, types in _TABLES:
            batch = [(r.stream_id, r.version, r.event.data) for r in rows if r.event.type in types]
            if not batch:
                continue
            views, missing = self._known_views(batch, table, prefix)
            if missing:
                return None
            change = _fold(views, batch, prefix, evolve, to_row)
            writes.append(PreparedWrite(SQL_APPLY[table], (
                change.upserts, list(change.deleted), list(change.untagged),
                [run_id for run_id, _ in change.tags], [tag for _, tag in change.tags],
            )))
        return writes

    def _known_views(self, batch: Sequence[tuple[str, int, bytes]], table: str, prefix: str) -> tuple[dict[str, Any], list[str]]:
        """Views cached at the version before the batch, and the runs whose view must be read.

        A run whose stream starts in this batch has no row yet: nothing to read for it.
        """
        first_version: dict[str, int] = {}
        for stream_id, version, _data in batch:
            first_version.setdefault(stream_id.removeprefix(prefix), version)
        views: dict[str, Any] = {}
        missing = []
        for run_id, version in first_version.items():
            cached = self.cache.at_version(cache_key(table, run_id), version - 1)
            if cached is not None:
                views[run_id] = cached
            elif version > 1:
                missing.append(run_id)
        return views, missing


class _Change(msgspec.Struct):
    upserts: list[tuple]
    deleted: list[str]
    untagged: list[str]  # runs whose tag rows are replaced (retagged) or go (deleted)
    tags: list[tuple[str, str]]


def _fold(views: dict[str, Any], batch: Sequence[tuple[str, int, bytes]], prefix: str, evolve, to_row) -> _Change:  # type: ignore[no-untyped-def]
    """Fold the batch's events into ``views`` (in place) and say what the tables must get."""
    before_tags = {run_id: list(view.tags) for run_id, view in views.items()}
    for stream_id, version, data in batch:
        run_id = stream_id.removeprefix(prefix)
        views[run_id] = evolve(views.get(run_id), catalogue.decode(data), version)
    upserts = [to_row(view) for view in views.values() if view is not None]
    deleted = [run_id for run_id, view in views.items() if view is None and run_id in before_tags]
    retagged = [
        (run_id, view) for run_id, view in views.items()
        if view is not None and before_tags.get(run_id) != list(view.tags)
    ]
    untagged = [run_id for run_id, _ in retagged if run_id in before_tags] + deleted
    tags = [(run_id, tag) for run_id, view in retagged for tag in dict.fromkeys(view.tags)]
    return _Change(upserts, deleted, untagged, tags)


_TABLES = (
    ("flow_runs", FLOW_RUN_STREAM, evolve_flow_run, decode_flow_run, _flow_run_row, _FLOW_RUN_TYPES),
    ("task_runs", TASK_RUN_STREAM, evolve_task_run, decode_task_run, _task_run_row, _TASK_RUN_TYPES),
)
