"""Filtering, counting and paging flow runs and task runs, with Prefect 3.8's semantics.

The filters are declared here as resources (see filtering.py): each field of Prefect's flow,
flow run, task run and deployment filters maps to our own columns, and the request bodies
relate them with fixed EXISTS subqueries (a flow run's flow, a task run's flow run), so every
filter, flows' included, is evaluated in SQL with its values bound as parameters.
"""

from __future__ import annotations

from runlog.eventstore import Tx
from runlog.projections.runs_writer import decode_flow_run, decode_task_run

from ..schemas import filters as f
from .work_pools import WORK_POOL, WORK_QUEUE
from .filtering import (
    FALSE, TRUE, Cond, Criteria, Custom, Ignored, Listing, Related, Resource, Sql,
    any_in, at_or_after, at_or_before, combine, contains, json_tags, not_any_in, null, on, tag_table, tags_all,
    tags_any, tags_null, view_time, views_of, where_exists,
)

__all__ = ["FALSE", "TRUE", "Cond"]


IDS = {"any_": any_in, "not_any_": not_any_in}
NAMES = {"any_": any_in, "like_": contains}
TIMES = {"before_": at_or_before, "after_": at_or_after}
NULLABLE_TIMES = {**TIMES, "is_null_": null}


# -- flows (aliased f) ---------------------------------------------------------------------------

# A flow keeps its tags only in its JSON view; flows are few, so reading them there is cheap.
FLOW_TAGS = json_tags("tags")

# As Prefect: a flow "has a deployment" when a deployment of it exists.
_FLOW_HAS_DEPLOYMENT = "EXISTS (SELECT 1 FROM deployments fd WHERE fd.flow_id = {expr})"


def _flow_deployment(d: Sql, expr: str, is_null: bool | None) -> Cond | None:
    if is_null is None:
        return None
    sql = _FLOW_HAS_DEPLOYMENT.format(expr=expr)
    return (f"NOT {sql}" if is_null else sql), ()


FLOW = Resource({
    "id": Criteria("f.id", IDS),
    "deployment": Criteria("f.id", {"is_null_": _flow_deployment}),
    "name": Criteria("f.name", NAMES),
    # any_ is /flows/filter's own (schemas/flows.py), where an empty list is no criterion.
    "tags": Criteria("f.view", {
        "all_": tags_all(FLOW_TAGS), "any_": tags_any(FLOW_TAGS, empty_matches_none=False),
        "is_null_": tags_null(FLOW_TAGS),
    }),
})


# -- flow runs (aliased fr) ----------------------------------------------------------------------

FLOW_RUN_TAGS = tag_table("flow_run_tags", "run_id")
# As Prefect does: a run that has not started is placed at its expected start time.
_STARTED = "COALESCE(fr.start_time, fr.expected_start_time)"
# Subflow runs of the given runs: their parent task run belongs to one of them.
_PARENT_IN = "EXISTS (SELECT 1 FROM task_runs ptr WHERE ptr.id = {expr} AND {cond})"

# like_ on a run's name is a semi-join with flow_run_names (migration 0030), where PostgreSQL
# keeps the trigram index that serves a substring match: on flow_runs every state change would
# rewrite the name's index entries.
_NAME_LIKE = "{expr} IN (SELECT n.run_id FROM flow_run_names n WHERE {cond})"
# SQLite's trigram index (migration 0035, FTS5) finds a substring of 3 or more characters as
# the phrase of its trigrams: exact (each trigram at the position after the last), literal (in
# an FTS5 string only '"' is special, doubled) and case-insensitive by Unicode's case folding,
# as PostgreSQL's lower() in a UTF-8 database is (SQLite's own lower() folds ASCII only).
_NAME_TRIGRAMS = (
    "{expr} IN (SELECT n.run_id FROM flow_run_name_trigrams t JOIN flow_run_names n ON n.id = t.rowid "
    "WHERE t.flow_run_name_trigrams MATCH ?)"
)
TRIGRAM = 3
"""The shortest like_ the trigram index serves; a shorter one on SQLite reads every name, with
SQLite's lower(), which folds ASCII letters only (documented in the README beside the trigram index)."""


def _name_like(d: Sql, expr: str, value: str | None) -> Cond | None:
    if value and d.dialect == "sqlite" and len(value) >= TRIGRAM:
        return _NAME_TRIGRAMS.format(expr=expr), ('"' + value.replace('"', '""') + '"',)
    return where_exists(_NAME_LIKE, on("n.name", contains))(d, expr, value)


FLOW_RUN = Resource({
    "id": Criteria("fr.id", IDS),
    "name": Criteria("fr.name", {"any_": any_in, "like_": on("fr.id", _name_like)}),
    "tags": Criteria("fr.id", {
        "all_": tags_all(FLOW_RUN_TAGS), "any_": tags_any(FLOW_RUN_TAGS), "is_null_": tags_null(FLOW_RUN_TAGS),
    }),
    "deployment_id": Criteria("fr.deployment_id", {"any_": any_in, "is_null_": null}, indexed=True),
    "work_queue_name": Criteria("fr.work_queue_name", {"any_": any_in, "is_null_": null}),
    # Prefect keeps a state type/name sub-filter only when it makes a single comparison: one
    # that sets both any_ and not_any_ (an AND) or neither (TRUE) is dropped. Kept for compatibility.
    "state": Resource({
        "type": Criteria("fr.state_type", IDS, single=True, indexed=True),
        "name": Criteria("fr.state_name", IDS, single=True, indexed=True),
    }),
    "flow_version": Criteria("fr.flow_version", {"any_": any_in}),
    "start_time": Criteria("fr.start_time", {
        "before_": on(_STARTED, at_or_before), "after_": on(_STARTED, at_or_after), "is_null_": null,
    }),
    "end_time": Criteria("fr.end_time", NULLABLE_TIMES),
    "expected_start_time": Criteria("fr.expected_start_time", TIMES, ranged=True),
    "next_scheduled_start_time": Criteria("fr.next_scheduled_start_time", TIMES),
    "parent_flow_run_id": Criteria("fr.parent_task_run_id", {
        "any_": where_exists(_PARENT_IN, on("ptr.flow_run_id", any_in)),
    }),
    "parent_task_run_id": Criteria("fr.parent_task_run_id", {"any_": any_in, "is_null_": null}),
    "idempotency_key": Criteria("fr.idempotency_key", IDS),
    # Prefect matches the id and type inside its created_by JSON; runlog keeps both in columns.
    "created_by": Criteria("fr.created_by_type", {
        "id_": on("fr.created_by_id", any_in), "type_": any_in, "is_null_": null,
    }),
})


# -- deployments (aliased d) ------------------------------------------------------------------

DEPLOYMENT_TAGS = json_tags("tags")


def _flow_or_deployment_name(d: Sql, flt: f.DeploymentOrFlowNameFilter) -> list[Cond]:
    """like_ on the deployment's name or its flow's."""
    own = contains(d, "d.name", flt.like_)
    if own is None:
        return []
    flows = contains(d, "fdn.name", flt.like_)
    assert flows is not None
    of_flow = (f"EXISTS (SELECT 1 FROM flows fdn WHERE fdn.id = d.flow_id AND {flows[0]})", flows[1])
    return [combine([own, of_flow], "or_")]


def _equals(d: Sql, expr: str, value: bool | None) -> Cond | None:
    return None if value is None else (f"{expr} = ?", (int(value),))


# concurrency_limit is ignored, as Prefect ignores it.
DEPLOYMENT = Resource({
    "id": Criteria("d.id", IDS),
    "name": Criteria("d.name", NAMES),
    "flow_or_deployment_name": Custom(_flow_or_deployment_name, ("like_",)),
    "paused": Criteria("d.paused", {"eq_": _equals}),
    "tags": Criteria("d.view", {
        "all_": tags_all(DEPLOYMENT_TAGS), "any_": tags_any(DEPLOYMENT_TAGS), "is_null_": tags_null(DEPLOYMENT_TAGS),
    }),
    "work_queue_name": Criteria("d.work_queue_name", {"any_": any_in}),
    "concurrency_limit": Ignored(),
})


# -- task runs (aliased tr) ----------------------------------------------------------------------

TASK_RUN_TAGS = tag_table("task_run_tags", "run_id")
_SUBFLOW = "EXISTS (SELECT 1 FROM flow_runs sfr WHERE sfr.parent_task_run_id = {expr})"


def _has_subflow_runs(d: Sql, expr: str, value: bool | None) -> Cond | None:
    if value is None:
        return None
    sql = _SUBFLOW.format(expr=expr)
    return (sql if value else f"NOT {sql}"), ()


def _task_run_flow_run_id(d: Sql, flt: f.TaskRunFilterFlowRunId) -> list[Cond]:
    """Prefect's: is_null_ (False by default) is checked first, and any_ only when it is False."""
    part = []
    if flt.is_null_ is True:
        part.append(("tr.flow_run_id IS NULL", ()))
    elif flt.is_null_ is False and flt.any_ is None:
        part.append(("tr.flow_run_id IS NOT NULL", ()))
    elif flt.any_ is not None:
        part.append(any_in(d, "tr.flow_run_id", flt.any_))
    return [combine(part, flt.operator)]


TASK_RUN = Resource({
    "id": Criteria("tr.id", {"any_": any_in}),
    "name": Criteria("tr.name", NAMES),
    "tags": Criteria("tr.id", {"all_": tags_all(TASK_RUN_TAGS), "is_null_": tags_null(TASK_RUN_TAGS)}),
    "state": Resource({
        "type": Criteria("tr.state_type", {"any_": any_in}),
        "name": Criteria("tr.state_name", {"any_": any_in}),
    }),
    "start_time": Criteria("tr.start_time", NULLABLE_TIMES),
    "end_time": Criteria("tr.end_time", NULLABLE_TIMES),
    "expected_start_time": Criteria("tr.expected_start_time", TIMES),
    "subflow_runs": Criteria("tr.id", {"exists_": _has_subflow_runs}),
    "flow_run_id": Custom(_task_run_flow_run_id, ("any_", "is_null_")),
})


# -- request bodies ------------------------------------------------------------------------------

# A flow run whose flow does not exist (stored by a runlog that did not check, or written
# around the API) is left out: clients list runs with their flows and fail on an unknown one.
HAS_FLOW: Cond = ("EXISTS (SELECT 1 FROM flows f WHERE f.id = fr.flow_id)", ())
# The flows matching are found once per query, not once per run: an uncorrelated subquery
# (SQLite evaluates an IN list once; on PostgreSQL, ARRAY() is an init plan run once, where a
# semi-join could re-test the flow's JSON tags for every run).
FLOW_OF_RUN = Related({
    "sqlite": "fr.flow_id IN (SELECT f.id FROM flows f WHERE {where})",
    "sqlite_walk": "+fr.flow_id IN (SELECT f.id FROM flows f WHERE {where})",
    "postgres": "fr.flow_id = ANY(ARRAY(SELECT f.id FROM flows f WHERE {where}))",
    # (text || '' matches no index of the column: PostgreSQL's way of keeping it off one.)
    "postgres_walk": "(fr.flow_id || '') = ANY(ARRAY(SELECT f.id FROM flows f WHERE {where}))",
}, FLOW)
# As Prefect joins them: a run matches a deployment filter through the deployment it names.
DEPLOYMENT_OF_RUN = Related("EXISTS (SELECT 1 FROM deployments d WHERE d.id = fr.deployment_id AND {where})", DEPLOYMENT)

# The flow-run side of a body (its flow runs, flows and deployments filters) over ``fr``: what
# a task run's or an artifact's flow run must match, in one EXISTS.
FLOW_RUN_SIDE = Resource({
    "flow_runs": FLOW_RUN,
    "flows": FLOW_OF_RUN,
    "deployments": DEPLOYMENT_OF_RUN,
})


def _walked(template: str, not_null: bool = False) -> dict[str, str]:
    """``template`` (on ``fr.``'s own column first) for both dialects, and as neither planner
    can read by that column's index, for a page walking the sort's (``Dialect.walk``): the
    queues' ids are known only once the page runs, so PostgreSQL estimates a queue's runs from
    the column's average (2,900 at a million runs where the pool had 137,000, which it then read
    and sorted: 3-5 s a page)."""
    column, rest = template.split(" ", 1)
    read = f"({column} IS NOT NULL AND {template})" if not_null else template
    return {"sqlite": read, "postgres": read, "sqlite_walk": f"+{template}",
            "postgres_walk": f"({column} || '') {rest}"}


FLOW_RUN_QUERY = Resource({
    # Prefect matches these as EXISTS(the run's work queue / its pool, matching): the queue is
    # flow_runs.work_queue_id, set when the run was created in a pool and cleared when that
    # queue is deleted (as Prefect's foreign key clears it). Written as IN (the matching
    # queues), so that the planner may read those few queues' runs from the index on the column
    # once instead of probing the queue of every run. The IS NOT NULL (which IN implies) lets
    # PostgreSQL's planner read them from flow_runs_queue_scheduled, partial on it: it does not
    # infer it through the semi-join (migration 0031 dropped the index it had for this alone).
    # A walking page (below) reads no index of the column, so it goes without.
    "work_pools": Related(_walked(
        "fr.work_queue_id IN (SELECT wq.id FROM work_queues wq JOIN work_pools wp ON wp.id = wq.work_pool_id "
        "WHERE {where})", not_null=True), WORK_POOL,
    ),
    "work_pool_queues": Related(
        _walked("fr.work_queue_id IN (SELECT wq.id FROM work_queues wq WHERE {where})", not_null=True), WORK_QUEUE,
    ),
    "flow_runs": FLOW_RUN,
    "deployments": DEPLOYMENT_OF_RUN,
    "flows": FLOW_OF_RUN,
    "task_runs": Related("EXISTS (SELECT 1 FROM task_runs tr WHERE tr.flow_run_id = fr.id AND {where})", TASK_RUN),
}, always=[HAS_FLOW])

TASK_RUN_QUERY = Resource({
    "task_runs": TASK_RUN,
    # The task run's flow run must exist and match every flow-run-side filter.
    ("flow_runs", "flows", "deployments"): Related(
        "EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = tr.flow_run_id AND {where})", FLOW_RUN_SIDE,
    ),
})


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

# task_runs has no next_scheduled_start_time column, so that sort reads it from the view (see
# view_time); the id breaks any tie its precision leaves.
TASK_RUN_ORDER = {
    "ID_DESC": "tr.id DESC",
    "EXPECTED_START_TIME_ASC": "tr.expected_start_time ASC NULLS LAST, tr.id DESC",
    "EXPECTED_START_TIME_DESC": "tr.expected_start_time DESC NULLS FIRST, tr.id DESC",
    "NAME_ASC": "tr.name ASC, tr.id DESC",
    "NAME_DESC": "tr.name DESC, tr.id DESC",
    "END_TIME_DESC": "tr.end_time DESC NULLS FIRST, tr.id DESC",
    "NEXT_SCHEDULED_START_TIME_ASC": view_time("tr", "next_scheduled_start_time", "ASC NULLS LAST, tr.id DESC"),
}


# -- queries ------------------------------------------------------------------------------------

def _counted(d: Sql, body: object) -> Cond:
    # Imported here: run_counts applies this module's declarations to the count rows.
    from .run_counts import count_statement

    return count_statement(d, body)


async def _page_shape(tx: Tx, body: object, sort: str, limit: int | None, offset: int) -> Sql:
    from .run_counts import page_shape

    return await page_shape(tx, body, sort, limit, offset)


FLOW_RUNS = Listing(
    "flow_runs fr", "fr.view", FLOW_RUN_QUERY, FLOW_RUN_ORDER, views_of(decode_flow_run), _counted, _page_shape,
)
TASK_RUNS = Listing("task_runs tr", "tr.view", TASK_RUN_QUERY, TASK_RUN_ORDER, views_of(decode_task_run))

filter_flow_runs, count_flow_runs, paginate_flow_runs = FLOW_RUNS.page, FLOW_RUNS.count, FLOW_RUNS.page_and_count
filter_task_runs, count_task_runs, paginate_task_runs = TASK_RUNS.page, TASK_RUNS.count, TASK_RUNS.page_and_count
