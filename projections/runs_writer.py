"""Keeps the flow_runs and task_runs tables (and their tag tables) in step with the log.

Runs inline, inside the append's transaction: for the runs a batch touches it loads their
current views, folds the batch's events into them (projections/runs.py) and upserts the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from eventstore import RecordedEvent, Tx
from schema import events as catalogue

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

    def __init__(self, cache: ViewCache | None = None) -> None:
        self.cache = cache if cache is not None else ViewCache(0)

    async def apply(self, tx: Tx, events: Sequence[RecordedEvent]) -> None:
        flow_runs = [e for e in events if e.type in _FLOW_RUN_TYPES]
        task_runs = [e for e in events if e.type in _TASK_RUN_TYPES]
        if flow_runs:
            await self._apply(tx, flow_runs, "flow_runs", FLOW_RUN_STREAM, evolve_flow_run, decode_flow_run, _flow_run_row)
        if task_runs:
            await self._apply(tx, task_runs, "task_runs", TASK_RUN_STREAM, evolve_task_run, decode_task_run, _task_run_row)

    async def _apply(self, tx: Tx, events, table, prefix, evolve, decode_view, to_row) -> None:  # type: ignore[no-untyped-def]
        first_version: dict[str, int] = {}
        for event in events:
            first_version.setdefault(event.stream_id.removeprefix(prefix), event.version)
        views: dict[str, Any] = {}
        for run_id, version in first_version.items():
            cached = self.cache.at_version(cache_key(table, run_id), version - 1)
            if cached is not None:
                views[run_id] = cached
        # A run whose stream starts in this batch has no row yet: nothing to read for it.
        missing = [run_id for run_id, version in first_version.items() if run_id not in views and version > 1]
        if missing:
            # The table name comes from this module's constants, never from input.
            sql = f"SELECT id, view FROM {table} WHERE {in_list(tx, 'id')}"
            rows = await tx.fetch(sql, list_param(tx, missing))
            views.update({row[0]: decode_view(bytes(row[1])) for row in rows})
        before_tags = {run_id: list(view.tags) for run_id, view in views.items()}
        for event in events:
            run_id = event.stream_id.removeprefix(prefix)
            views[run_id] = evolve(views.get(run_id), catalogue.decode(event.data), event.version)
        upserts = [to_row(view) for view in views.values() if view is not None]
        if upserts:
            await tx.executemany(SQL_UPSERT_FLOW_RUN if table == "flow_runs" else SQL_UPSERT_TASK_RUN, upserts)
        deleted = [(run_id,) for run_id, view in views.items() if view is None and run_id in before_tags]
        if deleted:
            await tx.executemany(SQL_DELETE_RUN[table], deleted)
        retagged = [
            (run_id, view) for run_id, view in views.items()
            if view is not None and before_tags.get(run_id) != list(view.tags)
        ]
        changed = [(run_id,) for run_id, _ in retagged if run_id in before_tags] + deleted
        if changed:
            await tx.executemany(SQL_DELETE_TAGS[table], changed)
        new_tags = [(run_id, tag) for run_id, view in retagged for tag in dict.fromkeys(view.tags)]
        if new_tags:
            await tx.executemany(SQL_INSERT_TAG[table], new_tags)
