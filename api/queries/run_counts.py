"""Counting flow runs from flow_run_counts (migration 0025) when the filter allows it exactly.

flow_run_counts holds, per dimension (every run once under 'run'; under 'deployment' and
'queue' by its deployment_id and work_queue_id when it has one; under 'tag' once per distinct
tag), flow and current state, how many runs there are. The runs projection keeps it in the transaction that
writes the runs (projections/runs_writer.py, FLOW_RUN_COUNTS), so a sum over it equals the
count over flow_runs at the same snapshot.

A filter can be answered from it when everything it asks is a condition on one run's flow,
state and at most one of those dimensions: the flows filter (any of it: it selects flows),
the state, one tag (``all_`` or ``any_`` of a single tag) or two (``all_``: their pair's rows;
``any_``: both tags' rows less the pair's, migration 0032), the deployment (the deployments
filter, ``deployment_id``) or the queue (the work pool and work queue filters). The conditions
are the run filters' own declarations (run_filters.py) applied to the count rows, whose
columns carry the same values (``''`` standing for NULL, turned back by NULLIF). The runs
without a deployment (``deployment_id`` ``is_null_``) have no rows of their own (migration 0029):
they are the 'run' rows' sum less the 'deployment' rows' under the same other conditions, which
are conditions on flow and state only, so both sums count the same runs but those. Anything else
(three tags, a time range, a name, task runs, a deployment and a pool together, an ``or_``
across criteria) is counted over flow_runs, skipping the flow check when no run needs it.

The same counts choose how a page filtered by tags alone is read on SQLite (``page_shape``):
they say exactly how many runs have each tag, which SQLite's statistics cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from runlog.eventstore import Tx
from runlog.projections.runs_writer import FLOW_RUN_COUNTS, TAG_PAIR_SEPARATOR, tag_pair
from runlog.projections.tables import in_list, list_param

from .filtering import Cond, Criteria, Dialect, Related, Resource, Sql, any_in, combine, null
from .run_filters import DEPLOYMENT, FLOW, FLOW_RUN_QUERY, IDS
from .work_pools import WORK_POOL, WORK_QUEUE

def counts_table(d: Sql) -> str:
    """What the counts are read from: on PostgreSQL the view of flow_run_counts' rows and the
    deltas not yet folded into them (migration 0034), whose sum by key is each count; a sum of
    rows that a condition selects is the same either way. SQLite has no deltas: the table."""
    return FLOW_RUN_COUNTS.totals if d.dialect == "postgres" else FLOW_RUN_COUNTS.name


# The fields of a flow run filter that a count row can answer; every other field must be unset.
_RUN_FIELDS = frozenset({"state", "tags", "deployment_id"})


def _one_tag(d: Sql, expr: str, values: Sequence[str] | None) -> Cond | None:
    """A tag criterion naming a single tag (``plan`` admits no other): the row is that tag's."""
    if not values:
        return None
    return any_in(d, expr, sorted(set(values)))


COUNT_ROWS = Resource({
    "flows": Related("c.flow_id IN (SELECT f.id FROM flows f WHERE {where})", FLOW),
    "deployments": Related("EXISTS (SELECT 1 FROM deployments d WHERE d.id = c.key AND {where})", DEPLOYMENT),
    "work_pools": Related(
        "c.key IN (SELECT wq.id FROM work_queues wq JOIN work_pools wp ON wp.id = wq.work_pool_id WHERE {where})",
        WORK_POOL,
    ),
    "work_pool_queues": Related("c.key IN (SELECT wq.id FROM work_queues wq WHERE {where})", WORK_QUEUE),
    "flow_runs": Resource({
        "state": Resource({
            "type": Criteria("NULLIF(c.state_type, '')", IDS, single=True),
            "name": Criteria("NULLIF(c.state_name, '')", IDS, single=True),
        }),
        "tags": Criteria("c.key", {"all_": _one_tag, "any_": _one_tag}),
        "deployment_id": Criteria("NULLIF(c.key, '')", {"any_": any_in, "is_null_": null}),
    }),
}, always=[("EXISTS (SELECT 1 FROM flows f WHERE f.id = c.flow_id)", ())])
"""The count request's filters over ``flow_run_counts c``, as run_filters.FLOW_RUN_QUERY has them
over ``flow_runs fr`` (the run's flow must exist there too)."""


def _unset(value: Any) -> bool:
    """No criterion at all: None, or a sub-filter whose every field is (an operator aside)."""
    if value is None:
        return True
    fields = getattr(value, "__struct_fields__", None)
    if fields is None:
        return False
    return all(_unset(getattr(value, name)) for name in fields if name != "operator")


def _tag_dimension(tags: Any) -> str | bool | None:
    """Whether the tags criterion needs the tag dimension (True), none (False), the pairs of
    tags ('tag_pair' for all_ of two tags, 'tag_any_pair' for any_ of two), or cannot be
    answered from counts (None): a criterion naming one tag can, and one naming two in all_ or
    in any_ alone (the pair's rows count the runs with both)."""
    if _unset(tags):
        return False
    if tags.is_null_ is not None:
        return None
    wanted = set(tags.all_ or ()) | set(tags.any_ or ())
    if tags.any_ is not None and not tags.any_:
        return None  # any_ of nothing matches nothing: rare, left to the query
    if not wanted:
        return False  # all_ of nothing is no criterion
    if len(wanted) == 1:
        return True
    if len(wanted) == 2 and (tags.all_ is None) != (tags.any_ is None) and not any(TAG_PAIR_SEPARATOR in t for t in wanted):
        # (A tag holding the separator could make another pair's key: left to the query.)
        return "tag_pair" if tags.all_ is not None else "tag_any_pair"
    return None


def plan(body: Any) -> str | None:
    """The dimension whose count rows answer ``body`` exactly, or None when only the query can."""
    if body is None:
        return "run"
    if getattr(body, "task_runs", None) is not None:
        return None  # even an empty one is a condition (the run has task runs)
    dims = set()
    runs = getattr(body, "flow_runs", None)
    if runs is not None:
        set_fields = [n for n in runs.__struct_fields__ if n != "operator" and not _unset(getattr(runs, n))]
        if any(name not in _RUN_FIELDS for name in set_fields):
            return None
        present = [n for n in runs.__struct_fields__ if n != "operator" and getattr(runs, n) is not None]
        if runs.operator != "and_" and len(present) > 1:
            # or_ across criteria of different dimensions is not one row's condition, and a
            # field without criteria is TRUE there, not nothing (as in Prefect).
            return None
        tag = _tag_dimension(runs.tags)
        if tag is None:
            return None
        if tag:
            dims.add(tag if isinstance(tag, str) else "tag")
        if not _unset(runs.deployment_id):
            dims.add("deployment")
    if getattr(body, "deployments", None) is not None:
        dims.add("deployment")
    if getattr(body, "work_pools", None) is not None or getattr(body, "work_pool_queues", None) is not None:
        dims.add("queue")
    if len(dims) > 1:
        return None
    if _no_deployment(body) and (runs.deployment_id.any_ is not None or getattr(body, "deployments", None) is not None):
        return None  # none of them, and also some of them: rare, left to the query
    return dims.pop() if dims else "run"


def _no_deployment(body: Any) -> bool:
    """Whether ``body`` asks for the runs without a deployment (``deployment_id.is_null_``)."""
    runs = getattr(body, "flow_runs", None)
    wanted = getattr(runs, "deployment_id", None)
    return wanted is not None and wanted.is_null_ is True


def _without_deployment(d: Sql, body: Any) -> Cond:
    """Runs without a deployment, which have no count rows (``plan`` has left only the flow and
    state conditions beside ``is_null_``): the runs so counted less those with a deployment."""
    runs = body.flow_runs
    rest = msgspec.structs.replace(runs, deployment_id=None)
    if all(getattr(rest, n) is None for n in rest.__struct_fields__ if n != "operator"):
        rest = None  # nothing else is asked of the run
    everyone = msgspec.structs.replace(body, flow_runs=rest)
    with_one = msgspec.structs.replace(
        body, flow_runs=msgspec.structs.replace(runs, deployment_id=msgspec.structs.replace(runs.deployment_id, is_null_=False))
    )
    counts = counts_table(d)
    every_sql, every_params = combine([("c.dim = ?", ("run",)), COUNT_ROWS.where(d, everyone)])
    one_sql, one_params = combine([("c.dim = ?", ("deployment",)), COUNT_ROWS.where(d, with_one)])
    return (
        f"SELECT (SELECT COALESCE(SUM(c.n), 0) FROM {counts} c WHERE {every_sql}) "
        f"- (SELECT COALESCE(SUM(c.n), 0) FROM {counts} c WHERE {one_sql})",
        (*every_params, *one_params),
    )


def _two_tags(d: Sql, body: Any, dim: str) -> Cond:
    """Runs with both of two tags (all_): their pair's rows; with either (any_): each tag's rows
    less the pair's, which counted the runs with both twice. ``plan`` has left only the flow
    and state conditions beside the tags, written here as for any other count row."""
    runs = body.flow_runs
    first, second = sorted(set(runs.tags.all_ or runs.tags.any_))
    rest = msgspec.structs.replace(runs, tags=None)
    if all(getattr(rest, n) is None for n in rest.__struct_fields__ if n != "operator"):
        rest = None
    others = msgspec.structs.replace(body, flow_runs=rest)
    pair_sql, pair_params = combine([("c.dim = 'tag_pair' AND c.key = ?", (tag_pair(first, second),)),
                                     COUNT_ROWS.where(d, others)])
    counts = counts_table(d)
    both = f"SELECT COALESCE(SUM(c.n), 0) FROM {counts} c WHERE {pair_sql}"
    if dim == "tag_pair":
        return both, pair_params
    each_sql, each_params = combine([("c.dim = 'tag'", ()), any_in(d, "c.key", [first, second]),  # type: ignore[list-item]
                                     COUNT_ROWS.where(d, others)])
    return (f"SELECT (SELECT COALESCE(SUM(c.n), 0) FROM {counts} c WHERE {each_sql}) - ({both})",
            (*each_params, *pair_params))


# The query's own filters without the check that each run's flow exists (FLOW_RUN_QUERY's
# ``always``), and whether any run lacks its flow (a flow deleted with runs left, or runs
# written around the API): read from the 'run' counts, a few hundred rows. (A row that is not 0
# where its count is, its deltas making up the rest, only sends the count to the checked query.)
_ANY_FLOW = Resource(FLOW_RUN_QUERY.entries)
_ORPHANS = (
    "EXISTS (SELECT 1 FROM {counts} o WHERE o.dim = 'run' AND o.n <> 0 "
    "AND NOT EXISTS (SELECT 1 FROM flows f WHERE f.id = o.flow_id))"
)


def count_statement(d: Sql, body: Any) -> Cond:
    """The statement counting ``body``'s flow runs: from flow_run_counts when ``plan`` finds a
    dimension that answers it, else over flow_runs.

    Over flow_runs, the check that each run's flow exists costs a lookup per counted run (a
    third of a large count's time); it is made only when some run lacks its flow. One
    statement decides and counts, so both read one snapshot; each backend runs only the CASE
    branch taken (SQLite evaluates a scalar subquery when reached, PostgreSQL an init plan
    when its value is first needed).
    """
    dim = plan(body)
    if dim == "deployment" and _no_deployment(body):
        return _without_deployment(d, body)
    if dim in ("tag_pair", "tag_any_pair"):
        # A run with more tags than PAIRED_TAGS_AT_MOST is in no pair's rows: when both tags
        # have such runs (a 'tag_unpaired' row each), the pair's rows may miss some.
        pair_sql, pair_params = _two_tags(d, body, dim)
        counted_sql, counted_params = _over_runs(d, body)
        tags = body.flow_runs.tags
        first, second = sorted(set(tags.all_ or tags.any_))
        unpaired = _UNPAIRED.format(counts=counts_table(d))
        return (f"SELECT CASE WHEN {unpaired} AND {unpaired} THEN ({counted_sql}) ELSE ({pair_sql}) END",
                (first, second, *counted_params, *pair_params))
    if dim is not None:
        sql, params = combine([("c.dim = ?", (dim,)), COUNT_ROWS.where(d, body)])
        return f"SELECT COALESCE(SUM(c.n), 0) FROM {counts_table(d)} c WHERE {sql}", params
    covered = _flow_in_range(d, body)
    if covered is not None:
        return covered
    return _over_runs(d, body)


FLOW_RANGE_COVERED_AT_MOST = 50_000
"""The most runs of the flows (and states) asked whose entries of flow_runs_flow_scheduled a
count of an expected start range reads (``_flow_in_range``): an entry read costs about a tenth
of a run read from the table (SQLite, CPU at 129,000 runs: 0.4 ms for a flow's 2,600 runs in
two states against 80 ms for the 7 days' 30,000 runs), so these bound the count at a few ms
however narrow the range, where the range's runs read from the table have no bound."""


def _flow_in_range(d: Sql, body: Any) -> Cond | None:
    """SQLite: the count of the runs of some flows (the flows filter; perhaps states by type)
    whose expected start is in a range, read from flow_runs_flow_scheduled alone (it holds the
    expected start, migration 0038) when the count rows say the flows' runs in those states
    number at most FLOW_RANGE_COVERED_AT_MOST; else over flow_runs as any other count. SQLite's
    planner reads the range's runs from the table instead (it cannot size the flows of a
    subquery): 1.2-2.2 s for 7 days at 1,000,000 runs. One statement decides and counts.
    None when ``body`` asks anything else (the state name is not in that index), and on
    PostgreSQL, whose planner reads the same index alone unprompted (its statistics know each
    flow id, and the index includes the time, migration 0038)."""
    rows = _flow_runs_of_range(d, body) if d.dialect == "sqlite" else None
    if rows is None:
        return None
    rows_sql, rows_params = rows
    covered_sql, covered_params = _over_runs(Dialect(d.dialect, flow_covers_range=True), body)
    plain_sql, plain_params = _over_runs(d, body)
    return (
        f"SELECT CASE WHEN ({rows_sql}) <= ? THEN ({covered_sql}) ELSE ({plain_sql}) END",
        (*rows_params, FLOW_RANGE_COVERED_AT_MOST, *covered_params, *plain_params),
    )


def _flow_runs_of_range(d: Sql, body: Any) -> Cond | None:
    """For ``_flow_in_range``'s shape of ``body`` (the flows filter, perhaps states by type, an
    expected start range), the statement summing the count rows of the flows' runs in those
    states whatever their time: the entries of flow_runs_flow_scheduled the range is checked
    in. None for any other body."""
    runs = getattr(body, "flow_runs", None)
    if getattr(body, "flows", None) is None or runs is None or runs.operator != "and_":
        return None
    if _unset(runs.expected_start_time) or (runs.state is not None and not _unset(runs.state.name)):
        return None
    rest = msgspec.structs.replace(runs, expected_start_time=None)
    if all(getattr(rest, n) is None for n in rest.__struct_fields__ if n != "operator"):
        rest = None
    others = msgspec.structs.replace(body, flow_runs=rest)
    if plan(others) != "run":
        return None
    sql, params = combine([("c.dim = 'run'", ()), COUNT_ROWS.where(d, others)])
    return f"SELECT COALESCE(SUM(c.n), 0) FROM {counts_table(d)} c WHERE {sql}", params


# (A row above 0 whose deltas bring its count to 0 only sends the count to the query.)
_UNPAIRED = "EXISTS (SELECT 1 FROM {counts} u WHERE u.dim = 'tag_unpaired' AND u.key = ? AND u.n > 0)"


def _over_runs(d: Sql, body: Any) -> Cond:
    """``body``'s runs counted over flow_runs, checking each run's flow only when some lacks it."""
    checked, checked_params = FLOW_RUN_QUERY.where(d, body)
    unchecked, unchecked_params = _ANY_FLOW.where(d, body)
    sql = (
        f"SELECT CASE WHEN {_ORPHANS.format(counts=counts_table(d))} THEN (SELECT COUNT(*) FROM flow_runs fr WHERE {checked}) "
        f"ELSE (SELECT COUNT(*) FROM flow_runs fr WHERE {unchecked}) END"
    )
    return sql, (*checked_params, *unchecked_params)


# -- reading a page filtered by tags ------------------------------------------------------------

# The sorts an index of flow_runs gives in order (migration 0023): walking it stops at the page.
_WALKED_SORTS = frozenset({"ID_DESC", "EXPECTED_START_TIME_DESC", "START_TIME_DESC", "NAME_ASC"})
_TAG_RUNS = "SELECT c.key, SUM(c.n) FROM {counts} c WHERE c.dim = 'tag' AND {keys} GROUP BY c.key"
_ALL_RUNS = "SELECT COALESCE(SUM(c.n), 0) FROM {counts} c WHERE c.dim = 'run'"
# A run walked past and probed costs about half of a run read and sorted (SQLite, CPU time at
# 360,000 runs: 3.6 us against 6.8 us, a page of a tag on 2% of the runs either way); in
# ID_DESC the runs read are sorted by the ids in the tag's index alone, before any row is
# read, about 0.3 us a run (1,000,000 runs: 63 ms for the 210,000 of a common tag).
_PROBES_PER_READ = 2.0
_PROBES_PER_ID_READ = 0.1


def _tags_alone(body: Any) -> tuple[str, list[str]] | None:
    """("all_" or "any_", the tags) when a flow run tags criterion is all that ``body`` asks."""
    if body is None or any(
        getattr(body, name, None) is not None for name in ("flows", "task_runs", "deployments", "work_pools", "work_pool_queues")
    ):
        return None
    runs = body.flow_runs
    if runs is None or [n for n in runs.__struct_fields__ if n != "operator" and getattr(runs, n) is not None] != ["tags"]:
        return None
    tags = runs.tags
    if tags.is_null_ is not None or (tags.all_ is None) == (tags.any_ is None):
        return None
    kind, wanted = ("all_", tags.all_) if tags.all_ is not None else ("any_", tags.any_)
    return (kind, sorted(set(wanted))) if wanted else None


def walk_is_shorter(kind: str, tagged: Sequence[int], total: int, rows: int, per_read: float = _PROBES_PER_READ) -> bool:
    """Whether walking the sort's index and probing each run's tags costs less than reading every
    run of the rarest tag (``all_``) or of all the tags (``any_``) and sorting them, for the
    first ``rows`` of the page (limit and offset) among ``total`` runs, ``tagged`` of which have
    each tag, a probe costing ``1 / per_read`` of a run read. The runs matching ``all_`` are
    estimated as if tags were independent."""
    if kind == "all_":
        driven = min(tagged)
        matching = float(total)
        for n in tagged:
            matching *= n / total if total else 0
    else:
        driven = sum(tagged)
        matching = min(total, driven)
    return matching > 0 and rows * total / matching <= per_read * driven


async def page_shape(tx: Tx, body: Any, sort: str, limit: int | None, offset: int) -> Sql:
    """How a page of flow runs is written (``Listing.shape``): on SQLite, a page filtered by tags
    alone, in a sort an index gives, probes each run's tags while walking that index when the
    tags are common enough for the walk to stop sooner than reading the tags' runs would end
    (SQLite's statistics know only the average tag, so it always reads the tag's runs and sorts
    them: a second at a million runs for a tag on a fifth of them). PostgreSQL plans both forms
    alike, from its own per-tag statistics.

    Any other filter the counts answer (flow, state, deployment, pool, a tag beside them) is
    counted exactly first, and walks the sort's index (``Dialect.walk``) when the runs walked
    past to fill the page are fewer than the runs it matches: SQLite otherwise reads them all
    from the index of a condition and sorts them (a flow's runs: 0.2-0.5 s at a million).

    On both backends, a range of one time (expected start, start) sorted by the other is read
    and sorted (``Dialect.sorted_read``): the times go together, which neither planner knows.
    On SQLite, a page of some flows' runs in an expected start range is read from the flows'
    index and sorted when few enough match (``_flow_range_page``)."""
    if tx.dialect == "sqlite":
        ranged = await _flow_range_page(tx, body)
        if ranged is not None:
            return ranged
    if limit is not None and _other_time(body, sort):
        return Dialect(tx.dialect, sorted_read=True)
    if limit is None or sort not in _WALKED_SORTS:
        return tx
    if tx.dialect == "postgres":
        # Its statistics know each tag, state and flow id, but not the runs of the flows or
        # queues a subquery finds (a work pool's): those pages are chosen from the counts too.
        if any(getattr(body, name, None) is not None for name in ("flows", "work_pools", "work_pool_queues")):
            return await _walk_shape(tx, body, sort, limit + offset)
        return tx
    alone = _tags_alone(body)
    if alone is None:
        return await _walk_shape(tx, body, sort, limit + offset)
    kind, wanted = alone
    keys, params = in_list(tx, "c.key"), (list_param(tx, wanted),)
    rows = await tx.fetch(_TAG_RUNS.format(counts=counts_table(tx), keys=keys), *params)
    found = {key: int(n) for key, n in rows}
    total = int((await tx.fetch(_ALL_RUNS.format(counts=counts_table(tx))))[0][0])
    per_read = _PROBES_PER_ID_READ if sort == "ID_DESC" else _PROBES_PER_READ
    if not walk_is_shorter(kind, [found.get(tag, 0) for tag in wanted], total, limit + offset, per_read):
        return tx
    return Dialect(tx.dialect, probe_tags=True)


# A run walked past costs about what a run read through a condition's index and sorted costs
# (both read the run's row: SQLite, CPU time at 450,000 runs, a page of the 4% of runs in a
# state: 22 ms walked, 26 ms read and sorted).
_WALKS_PER_READ = 1.0
_FILTERS = ("flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues")


async def _walk_shape(tx: Tx, body: Any, sort: str, rows: int) -> Sql:
    """``Dialect.walk`` (tags probed too) for a page of ``body`` when its exact count says the
    walk reads fewer runs; ``tx`` when the counts cannot say, or nothing but the sort is asked."""
    if body is None or all(getattr(body, name, None) is None for name in _FILTERS) or plan(body) is None:
        return tx
    sql, params = count_statement(tx, body)
    matching = int((await tx.fetch(sql, *params))[0][0])
    total = int((await tx.fetch(_ALL_RUNS.format(counts=counts_table(tx))))[0][0])
    tagged = body.flow_runs is not None and not _unset(body.flow_runs.tags)
    # In ID_DESC a tag's index gives its runs' ids in order, read before any run (as above).
    per_read = _PROBES_PER_ID_READ if sort == "ID_DESC" and tagged else _WALKS_PER_READ
    if not walk_is_shorter("any_", [matching], total, rows, per_read):
        return tx
    return Dialect(tx.dialect, probe_tags=True, walk=True)


# The sorts on a time, and the time filter whose range goes with it (a run starts near its
# expected start): the other one's range, in this sort, is a walk past all the runs after it.
_OTHER_TIME = {
    "EXPECTED_START_TIME_DESC": "start_time", "EXPECTED_START_TIME_ASC": "start_time",
    "START_TIME_DESC": "expected_start_time", "START_TIME_ASC": "expected_start_time",
}


def _other_time(body: Any, sort: str) -> bool:
    """Whether ``body`` asks for a range (after_ or before_) of the time the sort does not walk."""
    name = _OTHER_TIME.get(sort)
    runs = getattr(body, "flow_runs", None)
    if name is None or runs is None or runs.operator != "and_":
        return False
    wanted = getattr(runs, name)
    return wanted is not None and (wanted.after_ is not None or wanted.before_ is not None)


FLOW_RANGE_SORTED_AT_MOST = 20_000
"""The most runs a page of some flows in a range (``_flow_range_page``) reads and sorts: each
costs a row read (SQLite, a few us), so the page stays within tens of ms."""


async def _flow_range_page(tx: Tx, body: Any) -> Sql | None:
    """SQLite: ``Dialect(flow_covers_range, sorted_read)`` for a page of ``_flow_in_range``'s
    shape when the flows' runs in those states are at most FLOW_RANGE_COVERED_AT_MOST (their
    entries of flow_runs_flow_scheduled are checked against the range before any row is read:
    the expected start is the index's last column, migration 0038) and the runs matching,
    counted exactly from those entries, at most FLOW_RANGE_SORTED_AT_MOST: they are then read
    and sorted. SQLite's planner otherwise reads every run of the range from the table, or
    walks the sort's index past the runs of other flows (a flow, two states, 7 days at
    1,000,000 runs: 0.05-3.7 s a page). None otherwise. (Not on PostgreSQL: ``sorted_read``'s
    unary ``+`` exists there for numbers only, not for the name or id sorts.)"""
    rows = _flow_runs_of_range(tx, body)
    if rows is None:
        return None
    if int((await tx.fetch(rows[0], *rows[1]))[0][0]) > FLOW_RANGE_COVERED_AT_MOST:
        return None
    covered = Dialect(tx.dialect, flow_covers_range=True)
    sql, params = _over_runs(covered, body)
    if int((await tx.fetch(sql, *params))[0][0]) > FLOW_RANGE_SORTED_AT_MOST:
        return None
    return Dialect(tx.dialect, flow_covers_range=True, sorted_read=True)
