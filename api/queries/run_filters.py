"""Filtering, counting and paging flow runs and task runs, with Prefect 3.8's semantics.

Every filter field maps to a fixed SQL fragment over our own columns (see ``_flow_run_conditions``
and ``_task_run_conditions``); request values only ever travel as bound parameters. Tags are
matched with EXISTS on the tag tables. The flow filter is resolved first, in Python, to a list
of flow ids: flows are few and keep their tags only in their view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore, Tx
from runlog.projections.flows import FlowView, decode_flow
from runlog.projections.runs import FlowRunView, TaskRunView
from runlog.projections.runs_writer import decode_flow_run, decode_task_run
from runlog.projections.tables import in_list, list_param, us

from ..schemas import filters as f

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""


# A condition: an SQL fragment with ``?`` placeholders and its parameters, in order.
Cond = tuple[str, tuple[Any, ...]]

TRUE: Cond = ("1 = 1", ())
FALSE: Cond = ("1 = 0", ())


def _combine(conds: Sequence[Cond], operator: str = "and_") -> Cond:
    """Prefect's as_sql_filter: no criteria is TRUE, else AND or OR of them."""
    if not conds:
        return TRUE
    if len(conds) == 1:
        return conds[0]
    joiner = " AND " if operator == "and_" else " OR "
    return "(" + joiner.join(sql for sql, _ in conds) + ")", tuple(p for _, params in conds for p in params)


def _not(cond: Cond) -> Cond:
    return f"NOT ({cond[0]})", cond[1]


def _is_in(tx: Tx, column: str, values: Sequence[Any]) -> Cond:
    """``column`` is one of ``values``; ``column`` is always one of our own column names."""
    return in_list(tx, column), (list_param(tx, [str(v) for v in values]),)


def _is_null(column: str, is_null: bool) -> Cond:
    return (f"{column} IS NULL" if is_null else f"{column} IS NOT NULL"), ()


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: str, value: str) -> Cond:
    """Prefect's like_ (ILIKE '%value%'), portable: a case-insensitive literal substring match."""
    return f"lower({column}) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\'", ("%" + _escape_like(value) + "%",)


def _times(column: str, flt: f.TimeFilter, bounded: str | None = None) -> list[Cond]:
    """before_/after_ are inclusive; ``bounded`` is the expression they compare, if not ``column``."""
    expr = bounded or column
    conds: list[Cond] = []
    if flt.before_ is not None:
        conds.append((f"{expr} <= ?", (us(flt.before_),)))
    if flt.after_ is not None:
        conds.append((f"{expr} >= ?", (us(flt.after_),)))
    if isinstance(flt, f.NullableTimeFilter) and flt.is_null_ is not None:
        conds.append(_is_null(column, flt.is_null_))
    return conds


def _name(tx: Tx, column: str, flt: f.FlowRunFilterName | f.TaskRunFilterName) -> list[Cond]:
    conds: list[Cond] = []
    if flt.any_ is not None:
        conds.append(_is_in(tx, column, flt.any_))
    if flt.like_:
        conds.append(_like(column, flt.like_))
    return conds


def _tags(tx: Tx, tag_table: str, run_column: str, all_: list[str] | None, any_: list[str] | None,
          is_null: bool | None) -> list[Cond]:
    """Tag criteria as EXISTS on a tag table; ``tag_table`` and ``run_column`` are our names."""
    # A run's tags are unique in its tag table (primary key), so counting matches checks all_.
    conds: list[Cond] = []
    if all_:
        wanted = sorted(set(all_))
        sql = f"(SELECT COUNT(*) FROM {tag_table} t WHERE t.run_id = {run_column} AND {in_list(tx, 't.tag')}) = ?"
        conds.append((sql, (list_param(tx, wanted), len(wanted))))
    if any_ is not None:
        sql = f"EXISTS (SELECT 1 FROM {tag_table} t WHERE t.run_id = {run_column} AND {in_list(tx, 't.tag')})"
        conds.append((sql, (list_param(tx, list(any_)),)))
    if is_null is not None:
        sql = f"EXISTS (SELECT 1 FROM {tag_table} t WHERE t.run_id = {run_column})"
        conds.append((f"NOT {sql}" if is_null else sql, ()))
    return conds


def _state_part(conds: list[Cond]) -> list[Cond]:
    """Prefect keeps a state type/name sub-filter only when it is a single comparison: one that
    sets both any_ and not_any_ (an AND) or neither (TRUE) is dropped. Kept for compatibility."""
    return conds if len(conds) == 1 else []


# -- flows (resolved in Python) ----------------------------------------------------------------


def _flow_matches(view: FlowView, flt: f.FlowFilter, with_deployments: set[UUID]) -> bool:
    checks: list[bool] = []
    if flt.id is not None:
        parts = []
        if flt.id.any_ is not None:
            parts.append(view.id in flt.id.any_)
        if flt.id.not_any_:
            parts.append(view.id not in flt.id.not_any_)
        checks.append(all(parts))
    if flt.deployment is not None:
        deployed = flt.deployment.is_null_
        checks.append(True if deployed is None else (view.id in with_deployments) != deployed)
    if flt.name is not None:
        parts = []
        if flt.name.any_ is not None:
            parts.append(view.name in flt.name.any_)
        if flt.name.like_:
            parts.append(flt.name.like_.lower() in view.name.lower())
        checks.append(all(parts))
    if flt.tags is not None:
        parts = []
        if flt.tags.all_:
            parts.append(set(flt.tags.all_) <= set(view.tags))
        if flt.tags.is_null_ is not None:
            parts.append(not view.tags if flt.tags.is_null_ else bool(view.tags))
        checks.append(_fold(parts, flt.tags.operator))
    return _fold(checks, flt.operator)


def _fold(parts: list[bool], operator: str) -> bool:
    if not parts:
        return True
    return all(parts) if operator == "and_" else any(parts)


async def _flow_ids(tx: Tx, flt: f.FlowFilter) -> list[str]:
    with_deployments: set[UUID] = set()
    if flt.deployment is not None and flt.deployment.is_null_ is not None:
        # A deployment is known by the runs that name it: a flow has one if one of its runs does.
        with_deployments = {UUID(str(r[0])) for r in await tx.fetch(SQL_FLOWS_WITH_DEPLOYMENTS)}
    rows = await tx.fetch(SQL_ALL_FLOWS)
    return [str(v.id) for v in (decode_flow(bytes(r[0])) for r in rows) if _flow_matches(v, flt, with_deployments)]


SQL_ALL_FLOWS = "SELECT view FROM flows"
SQL_FLOWS_WITH_DEPLOYMENTS = "SELECT DISTINCT flow_id FROM flow_runs WHERE deployment_id IS NOT NULL"


# -- flow runs and task runs --------------------------------------------------------------------


def _flow_run_conditions(tx: Tx, flt: f.FlowRunFilter, fr: str) -> Cond:
    """The FlowRunFilter over the flow_runs row aliased ``fr`` (one of our aliases)."""
    conds: list[Cond] = []
    if flt.id is not None:
        part = []
        if flt.id.any_ is not None:
            part.append(_is_in(tx, f"{fr}.id", flt.id.any_))
        if flt.id.not_any_:
            part.append(_not(_is_in(tx, f"{fr}.id", flt.id.not_any_)))
        conds.append(_combine(part))
    if flt.name is not None:
        conds.append(_combine(_name(tx, f"{fr}.name", flt.name)))
    if flt.tags is not None:
        t = flt.tags
        conds.append(_combine(_tags(tx, "flow_run_tags", f"{fr}.id", t.all_, t.any_, t.is_null_), t.operator))
    if flt.deployment_id is not None:
        d = flt.deployment_id
        part = []
        if d.any_ is not None:
            part.append(_is_in(tx, f"{fr}.deployment_id", d.any_))
        if d.is_null_ is not None:
            part.append(_is_null(f"{fr}.deployment_id", d.is_null_))
        conds.append(_combine(part, d.operator))
    if flt.work_queue_name is not None:
        q = flt.work_queue_name
        part = []
        if q.any_ is not None:
            part.append(_is_in(tx, f"{fr}.work_queue_name", q.any_))
        if q.is_null_ is not None:
            part.append(_is_null(f"{fr}.work_queue_name", q.is_null_))
        conds.append(_combine(part, q.operator))
    if flt.flow_version is not None:
        part = [] if flt.flow_version.any_ is None else [_is_in(tx, f"{fr}.flow_version", flt.flow_version.any_)]
        conds.append(_combine(part))
    if flt.state is not None:
        part = []
        if flt.state.type is not None:
            st = flt.state.type
            sub = [] if st.any_ is None else [_is_in(tx, f"{fr}.state_type", [s.value for s in st.any_])]
            if st.not_any_:
                sub.append(_not(_is_in(tx, f"{fr}.state_type", [s.value for s in st.not_any_])))
            part += _state_part(sub)
        if flt.state.name is not None:
            sn = flt.state.name
            sub = [] if sn.any_ is None else [_is_in(tx, f"{fr}.state_name", sn.any_)]
            if sn.not_any_:
                sub.append(_not(_is_in(tx, f"{fr}.state_name", sn.not_any_)))
            part += _state_part(sub)
        conds.append(_combine(part, flt.state.operator))
    if flt.start_time is not None:
        # As Prefect does: a run that has not started is placed at its expected start time.
        started = f"COALESCE({fr}.start_time, {fr}.expected_start_time)"
        conds.append(_combine(_times(f"{fr}.start_time", flt.start_time, started)))
    if flt.end_time is not None:
        conds.append(_combine(_times(f"{fr}.end_time", flt.end_time)))
    if flt.expected_start_time is not None:
        conds.append(_combine(_times(f"{fr}.expected_start_time", flt.expected_start_time)))
    if flt.next_scheduled_start_time is not None:
        conds.append(_combine(_times(f"{fr}.next_scheduled_start_time", flt.next_scheduled_start_time)))
    if flt.parent_flow_run_id is not None:
        p = flt.parent_flow_run_id
        part = []
        if p.any_ is not None:
            # Subflow runs of the given runs: their parent task run belongs to one of them.
            sql, params = _is_in(tx, "ptr.flow_run_id", p.any_)
            parent = f"EXISTS (SELECT 1 FROM task_runs ptr WHERE ptr.id = {fr}.parent_task_run_id AND {sql})"
            part.append((parent, params))
        conds.append(_combine(part, p.operator))
    if flt.parent_task_run_id is not None:
        p2 = flt.parent_task_run_id
        part = []
        if p2.any_ is not None:
            part.append(_is_in(tx, f"{fr}.parent_task_run_id", p2.any_))
        if p2.is_null_ is not None:
            part.append(_is_null(f"{fr}.parent_task_run_id", p2.is_null_))
        conds.append(_combine(part, p2.operator))
    if flt.idempotency_key is not None:
        k = flt.idempotency_key
        part = []
        if k.any_ is not None:
            part.append(_is_in(tx, f"{fr}.idempotency_key", k.any_))
        if k.not_any_:
            part.append(_not(_is_in(tx, f"{fr}.idempotency_key", k.not_any_)))
        conds.append(_combine(part))
    if flt.created_by is not None:
        # runlog records no creator, so created_by is null on every run.
        c = flt.created_by
        part = []
        if c.id_ is not None:
            part.append(FALSE)
        if c.type_ is not None:
            part.append(FALSE)
        if c.is_null_ is not None:
            part.append(TRUE if c.is_null_ else FALSE)
        conds.append(_combine(part, c.operator))
    return _combine(conds, flt.operator)


def _task_run_conditions(tx: Tx, flt: f.TaskRunFilter, tr: str) -> Cond:
    """The TaskRunFilter over the task_runs row aliased ``tr`` (one of our aliases)."""
    conds: list[Cond] = []
    if flt.id is not None:
        conds.append(_combine([] if flt.id.any_ is None else [_is_in(tx, f"{tr}.id", flt.id.any_)]))
    if flt.name is not None:
        conds.append(_combine(_name(tx, f"{tr}.name", flt.name)))
    if flt.tags is not None:
        t = flt.tags
        conds.append(_combine(_tags(tx, "task_run_tags", f"{tr}.id", t.all_, None, t.is_null_), t.operator))
    if flt.state is not None:
        part = []
        if flt.state.type is not None and flt.state.type.any_ is not None:
            part.append(_is_in(tx, f"{tr}.state_type", [s.value for s in flt.state.type.any_]))
        if flt.state.name is not None and flt.state.name.any_ is not None:
            part.append(_is_in(tx, f"{tr}.state_name", flt.state.name.any_))
        conds.append(_combine(part, flt.state.operator))
    if flt.start_time is not None:
        conds.append(_combine(_times(f"{tr}.start_time", flt.start_time)))
    if flt.end_time is not None:
        conds.append(_combine(_times(f"{tr}.end_time", flt.end_time)))
    if flt.expected_start_time is not None:
        conds.append(_combine(_times(f"{tr}.expected_start_time", flt.expected_start_time)))
    if flt.subflow_runs is not None:
        part = []
        if flt.subflow_runs.exists_ is not None:
            sql = f"EXISTS (SELECT 1 FROM flow_runs sfr WHERE sfr.parent_task_run_id = {tr}.id)"
            part.append((sql if flt.subflow_runs.exists_ else f"NOT {sql}", ()))
        conds.append(_combine(part))
    if flt.flow_run_id is not None:
        r = flt.flow_run_id
        part = []
        if r.is_null_ is True:
            part.append(_is_null(f"{tr}.flow_run_id", True))
        elif r.is_null_ is False and r.any_ is None:
            part.append(_is_null(f"{tr}.flow_run_id", False))
        elif r.any_ is not None:
            part.append(_is_in(tx, f"{tr}.flow_run_id", r.any_))
        conds.append(_combine(part, r.operator))
    return _combine(conds, flt.operator)


def _deployment_conditions(tx: Tx, flt: f.DeploymentFilter, fr: str) -> Cond:
    """EXISTS(deployment of the run matching flt), with deployments known only by their ids.

    runlog keeps nothing else of a deployment, so a criterion on its name, paused flag, tags or
    work queue matches none (as on a Prefect server without that deployment); a sub-filter that
    sets no criterion is TRUE, as in Prefect. concurrency_limit is ignored, as Prefect ignores it.
    """
    part = []
    if flt.id is not None:
        sub = []
        if flt.id.any_ is not None:
            sub.append(_is_in(tx, f"{fr}.deployment_id", flt.id.any_))
        if flt.id.not_any_:
            sub.append(_not(_is_in(tx, f"{fr}.deployment_id", flt.id.not_any_)))
        part.append(_combine(sub))
    for unknown in (flt.name, flt.flow_or_deployment_name, flt.paused, flt.tags, flt.work_queue_name):
        if unknown is not None:
            part.append(FALSE if _sets_criteria(unknown) else TRUE)
    return _combine([_is_null(f"{fr}.deployment_id", False), _combine(part, flt.operator)])


def _sets_criteria(flt: f._Filter) -> bool:
    return any(getattr(flt, name) is not None for name in flt.__struct_fields__ if name != "operator")


async def _flow_run_where(tx: Tx, body: f.FlowRunCountRequest) -> Cond:
    """Prefect's _apply_flow_run_filters over flow_runs aliased ``fr``."""
    # A flow run whose flow does not exist (stored by a runlog that did not check, or written
    # around the API) is left out: clients list runs with their flows and fail on an unknown one.
    conds: list[Cond] = [HAS_FLOW]
    # Prefect matches these as EXISTS(the run's work queue / its pool, matching): runlog keeps
    # no work pools or queues (a run's work_queue_name is only a label), so no run has one.
    if body.work_pools is not None or body.work_pool_queues is not None:
        conds.append(FALSE)
    if body.flow_runs is not None:
        conds.append(_flow_run_conditions(tx, body.flow_runs, "fr"))
    if body.deployments is not None:
        conds.append(_deployment_conditions(tx, body.deployments, "fr"))
    if body.flows is not None:
        conds.append(_is_in(tx, "fr.flow_id", await _flow_ids(tx, body.flows)))
    if body.task_runs is not None:
        sql, params = _task_run_conditions(tx, body.task_runs, "tr")
        conds.append((f"EXISTS (SELECT 1 FROM task_runs tr WHERE tr.flow_run_id = fr.id AND {sql})", params))
    return _combine(conds)


HAS_FLOW: Cond = ("EXISTS (SELECT 1 FROM flows f WHERE f.id = fr.flow_id)", ())


async def _task_run_where(tx: Tx, body: f.TaskRunCountRequest) -> Cond:
    """Prefect's _apply_task_run_filters over task_runs aliased ``tr``."""
    conds: list[Cond] = []
    if body.task_runs is not None:
        conds.append(_task_run_conditions(tx, body.task_runs, "tr"))
    if body.flows is not None or body.flow_runs is not None or body.deployments is not None:
        # The task run's flow run must exist and match every flow-run-side filter.
        inner: list[Cond] = []
        if body.flow_runs is not None:
            inner.append(_flow_run_conditions(tx, body.flow_runs, "fr"))
        if body.flows is not None:
            inner.append(_is_in(tx, "fr.flow_id", await _flow_ids(tx, body.flows)))
        if body.deployments is not None:
            inner.append(_deployment_conditions(tx, body.deployments, "fr"))
        sql, params = _combine(inner)
        conds.append((f"EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = tr.flow_run_id AND {sql})", params))
    return _combine(conds)


# -- sorts --------------------------------------------------------------------------------------

# NULLs sort as PostgreSQL sorts them by default (last when ascending, first when descending),
# spelled out so SQLite agrees. Ties fall back to the id, so that pages never overlap.
FLOW_RUN_ORDER = {
    "ID_DESC": "fr.id DESC",
    "START_TIME_ASC": "COALESCE(fr.start_time, fr.expected_start_time) ASC NULLS LAST, fr.id DESC",
    "START_TIME_DESC": "COALESCE(fr.start_time, fr.expected_start_time) DESC NULLS FIRST, fr.id DESC",
    "EXPECTED_START_TIME_ASC": "fr.expected_start_time ASC NULLS LAST, fr.id DESC",
    "EXPECTED_START_TIME_DESC": "fr.expected_start_time DESC NULLS FIRST, fr.id DESC",
    "NAME_ASC": "fr.name ASC, fr.id DESC",
    "NAME_DESC": "fr.name DESC, fr.id DESC",
    "NEXT_SCHEDULED_START_TIME_ASC": "fr.next_scheduled_start_time ASC NULLS LAST, fr.id DESC",
    "END_TIME_DESC": "fr.end_time DESC NULLS FIRST, fr.id DESC",
}

# task_runs has no next_scheduled_start_time column, so that sort reads it from the view and
# compares it as a time (its text form need not sort chronologically). The julianday double is
# precise to tens of microseconds; the id breaks any tie that leaves.
_TASK_NEXT_SCHEDULED = {
    "sqlite": "julianday(json_extract(CAST(tr.view AS TEXT), '$.next_scheduled_start_time'))",
    "postgres": "(convert_from(tr.view, 'UTF8')::jsonb ->> 'next_scheduled_start_time')::timestamptz",
}
TASK_RUN_ORDER = {
    "ID_DESC": "tr.id DESC",
    "EXPECTED_START_TIME_ASC": "tr.expected_start_time ASC NULLS LAST, tr.id DESC",
    "EXPECTED_START_TIME_DESC": "tr.expected_start_time DESC NULLS FIRST, tr.id DESC",
    "NAME_ASC": "tr.name ASC, tr.id DESC",
    "NAME_DESC": "tr.name DESC, tr.id DESC",
    "END_TIME_DESC": "tr.end_time DESC NULLS FIRST, tr.id DESC",
}


def _task_run_order(tx: Tx, sort: str) -> str:
    if sort == "NEXT_SCHEDULED_START_TIME_ASC":
        return f"{_TASK_NEXT_SCHEDULED[tx.dialect]} ASC NULLS LAST, tr.id DESC"
    return TASK_RUN_ORDER[sort]


# -- queries ------------------------------------------------------------------------------------


async def _page(store: EventStore, table: str, alias: str, where: Callable[[Tx], Any], order: Callable[[Tx], str],
                decode: Callable[[bytes], Any], limit: int, offset: int) -> list[Any]:
    async with store.reading() as tx:
        sql, params = await where(tx)
        # table, alias and order are this module's constants; the rest are placeholders.
        rows = await tx.fetch(
            f"SELECT {alias}.view FROM {table} {alias} WHERE {sql} ORDER BY {order(tx)} LIMIT ? OFFSET ?",
            *params, limit, offset,
        )
    return [decode(bytes(row[0])) for row in rows]


async def _count(store: EventStore, table: str, alias: str, where: Callable[[Tx], Any]) -> int:
    async with store.reading() as tx:
        sql, params = await where(tx)
        rows = await tx.fetch(f"SELECT COUNT(*) FROM {table} {alias} WHERE {sql}", *params)
    return int(rows[0][0])


async def filter_flow_runs(
    store: EventStore, body: f.FlowRunCountRequest, *, sort: str, limit: int, offset: int
) -> list[FlowRunView]:
    return await _page(
        store, "flow_runs", "fr", lambda tx: _flow_run_where(tx, body), lambda _tx: FLOW_RUN_ORDER[sort],
        decode_flow_run, limit, offset,
    )


async def count_flow_runs(store: EventStore, body: f.FlowRunCountRequest) -> int:
    return await _count(store, "flow_runs", "fr", lambda tx: _flow_run_where(tx, body))


async def filter_task_runs(
    store: EventStore, body: f.TaskRunCountRequest, *, sort: str, limit: int, offset: int
) -> list[TaskRunView]:
    return await _page(
        store, "task_runs", "tr", lambda tx: _task_run_where(tx, body), lambda tx: _task_run_order(tx, sort),
        decode_task_run, limit, offset,
    )


async def count_task_runs(store: EventStore, body: f.TaskRunCountRequest) -> int:
    return await _count(store, "task_runs", "tr", lambda tx: _task_run_where(tx, body))


# -- runs as a criterion of other resources (artifacts) ------------------------------------------


async def flow_run_exists(
    tx: Tx, run_column: str, *, flow_runs: f.FlowRunFilter | None, flows: f.FlowFilter | None,
    deployments: f.DeploymentFilter | None,
) -> Cond:
    """The flow run in ``run_column`` (one of the caller's own columns) exists and matches every
    filter given: Prefect's EXISTS clause for artifacts."""
    inner: list[Cond] = []
    if flow_runs is not None:
        inner.append(_flow_run_conditions(tx, flow_runs, "fr"))
    if flows is not None:
        inner.append(_is_in(tx, "fr.flow_id", await _flow_ids(tx, flows)))
    if deployments is not None:
        inner.append(_deployment_conditions(tx, deployments, "fr"))
    sql, params = _combine(inner)
    return f"EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = {run_column} AND {sql})", params


def task_run_exists(tx: Tx, run_column: str, task_runs: f.TaskRunFilter) -> Cond:
    """The task run in ``run_column`` (one of the caller's own columns) exists and matches."""
    sql, params = _task_run_conditions(tx, task_runs, "tr")
    return f"EXISTS (SELECT 1 FROM task_runs tr WHERE tr.id = {run_column} AND {sql})", params
