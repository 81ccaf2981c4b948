"""Run search at scale (migration 0023_run_search_indexes, bench/bench_search.py): the filters
and sorts the UI uses are planned on the indexes the migration adds, on both backends. What
they answer is tested in test_run_filters.py; speed is the benchmark's business, never
asserted here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from runlog.api.queries import run_counts, run_filters
from runlog.api.queries.filtering import Dialect, Sql
from runlog.api.schemas import filters as f
from runlog.projections import run_sweeps, runs_writer
from runlog.eventstore import Tx


@contextlib.asynccontextmanager
async def planning(store) -> AsyncIterator[Tx]:
    """A read handle whose plans show index use even over a near-empty table: PostgreSQL is
    told not to prefer a sequential scan or a sort where an index serves (tiny tables otherwise
    make those the cheapest); SQLite plans indexes without statistics anyway."""
    async with store.reading() as tx:
        if tx.dialect == "postgres":
            await tx.execute("SET enable_seqscan = off")
            await tx.execute("SET enable_sort = off")
        try:
            yield tx
        finally:
            if tx.dialect == "postgres":
                await tx.execute("RESET enable_seqscan")
                await tx.execute("RESET enable_sort")


async def plan(tx: Tx, body: dict[str, Any], sort: str | None, d: Sql | None = None) -> str:
    """The plan of a page of 200 in ``sort``, or with no sort of the count; its conditions
    written for ``d`` (the read handle unless given)."""
    sql, params = run_filters.FLOW_RUN_QUERY.where(d or tx, msgspec.convert(body, f.FlowRunFilterRequest))
    if sort is None:
        query = f"SELECT COUNT(*) FROM flow_runs fr WHERE {sql}"
    else:
        query = f"SELECT fr.view FROM flow_runs fr WHERE {sql} ORDER BY {run_filters.FLOW_RUN_ORDER[sort]} LIMIT 200"
    explain = "EXPLAIN QUERY PLAN " if tx.dialect == "sqlite" else "EXPLAIN "
    rows = await tx.fetch(explain + query, *params)
    return "\n".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(("body", "sort", "index"), [
    ({}, "EXPECTED_START_TIME_DESC", "flow_runs_expected_start"),
    ({}, "START_TIME_DESC", "flow_runs_started"),
    ({}, "NAME_ASC", "flow_runs_name"),
    ({"flow_runs": {"tags": {"all_": ["x"]}}}, "ID_DESC", "flow_run_tags_tag"),
    ({"flow_runs": {"tags": {"any_": ["x", "y"]}}}, "ID_DESC", "flow_run_tags_tag"),
    ({"work_pools": {"id": {"any_": ["00000000-0000-4000-8000-000000000001"]}}}, None, "flow_runs_queue_scheduled"),
    ({"work_pool_queues": {"id": {"any_": ["00000000-0000-4000-8000-000000000001"]}}}, None, "flow_runs_queue_scheduled"),
    ({"flow_runs": {"start_time": {"after_": "2026-01-01T00:00:00Z"}}}, None, "flow_runs_started"),
])
async def test_ui_filters_and_sorts_are_planned_on_their_indexes(store, body, sort, index):
    async with planning(store) as tx:
        shown = await plan(tx, body, sort)
        assert any(name in shown for name in index.split("|"))


@pytest.mark.parametrize(("sort", "index"), [
    ("EXPECTED_START_TIME_DESC", "flow_runs_expected_start"),
    ("START_TIME_DESC", "flow_runs_started"),
    ("NAME_ASC", "flow_runs_name"),
])
@pytest.mark.parametrize("tags", [{"all_": ["x", "y"]}, {"any_": ["x", "y"]}])
async def test_a_page_probing_the_runs_tags_walks_the_sorts_index_without_sorting(store, sort, index, tags):
    """Dialect.probe_tags (chosen for common tags, run_counts.page_shape): the page is the sort's
    index walked, each run's tags probed by their key, where the tag's runs would be read and sorted."""
    async with planning(store) as tx:
        shown = await plan(tx, {"flow_runs": {"tags": tags}}, sort, Dialect(tx.dialect, probe_tags=True))
        assert index in shown, shown
        if tx.dialect == "sqlite":
            assert "TEMP B-TREE" not in shown, shown
        else:
            assert "Sort" not in shown.replace("Sort Key", ""), shown


@pytest.mark.parametrize("sort", [None, "EXPECTED_START_TIME_DESC"])
async def test_name_like_reads_the_side_table_of_names_and_its_trigram_index(store, sort):
    """Migrations 0030 and 0035: a name substring is matched in flow_run_names' trigram index
    (pg_trgm on PostgreSQL, an FTS5 trigram table on SQLite), not on flow_runs, whose every state
    change would rewrite its entries; the runs are then read by id."""
    async with planning(store) as tx:
        shown = await plan(tx, {"flow_runs": {"name": {"like_": "jolly"}}}, sort)
        if tx.dialect == "postgres":
            assert "flow_run_names_trigrams" in shown, shown
        else:
            assert "VIRTUAL TABLE INDEX" in shown and "SCAN n" not in shown and "SCAN fr" not in shown, shown


async def test_a_name_like_shorter_than_a_trigram_reads_every_name_on_sqlite(store):
    """The trigram index cannot serve 1 or 2 characters: SQLite then reads flow_run_names
    (documented in the README), still not flow_runs."""
    async with planning(store) as tx:
        shown = await plan(tx, {"flow_runs": {"name": {"like_": "jo"}}}, None)
        if tx.dialect == "sqlite":
            assert "SCAN n" in shown and "SCAN fr" not in shown and "VIRTUAL TABLE" not in shown, shown


_SOME_ID = "00000000-0000-4000-8000-000000000001"


@pytest.mark.parametrize(("query", "index"), [
    (runs_writer.SQL_FLOW_RUN_IDS_OF_FLOW, "flow_runs_flow_scheduled|flow_runs_idempotency"),
    (run_sweeps.SQL_SCHEDULED_OF_DEPLOYMENTS.format("?"), "flow_runs_deployment_scheduled"),
])
async def test_lookups_by_flow_and_deployment_read_the_indexes_that_lead_with_them(store, query, index):
    """Migration 0031 dropped flow_runs_flow and flow_runs_deployment: the indexes leading with
    the same columns serve their queries."""
    args = [_SOME_ID, 0][: query.count("?")]
    async with planning(store) as tx:
        explain = "EXPLAIN QUERY PLAN " if tx.dialect == "sqlite" else "EXPLAIN "
        rows = await tx.fetch(explain + query, *args)
        shown = "\n".join(str(row[-1]) for row in rows)
        assert any(name in shown for name in index.split("|")), shown


async def test_the_deployment_filter_reads_the_deployments_scheduled_index(store):
    async with planning(store) as tx:
        shown = await plan(tx, {"flow_runs": {"deployment_id": {"any_": [_SOME_ID]}}}, None)
        assert "flow_runs_deployment_scheduled" in shown, shown


@pytest.mark.parametrize(("sort", "index"), [
    ("EXPECTED_START_TIME_DESC", "flow_runs_expected_start"),
    ("START_TIME_DESC", "flow_runs_started"),
    ("NAME_ASC", "flow_runs_name"),
    ("ID_DESC", "sqlite_autoindex_flow_runs_1"),
])
@pytest.mark.parametrize("body", [
    {"flows": {"id": {"any_": ["00000000-0000-4000-8000-000000000001"]}}},
    {"flows": {"name": {"any_": ["etl"]}}, "flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}},
    {"flow_runs": {"state": {"name": {"any_": ["Failed", "Crashed"]}}}},
    {"flow_runs": {"deployment_id": {"any_": ["00000000-0000-4000-8000-000000000002"]}}},
    {"work_pools": {"name": {"any_": ["p"]}}},
    {"work_pool_queues": {"name": {"any_": ["q"]}}, "flow_runs": {"tags": {"all_": ["x"]}}},
])
async def test_a_walking_page_reads_the_sorts_index(store, sort, index, body):
    """Dialect.walk (chosen from the exact count, run_counts.page_shape): no index of a condition
    is read, so the page is the sort's index walked and never sorted. On PostgreSQL only the
    flows' and queues' subqueries are written otherwise (its statistics know the rest)."""
    async with planning(store) as tx:
        walked = Dialect(tx.dialect, probe_tags=True, walk=True)
        decoded = msgspec.convert(body, f.FlowRunFilterRequest)
        if tx.dialect == "postgres":
            unchanged = run_filters.FLOW_RUN_QUERY.where(walked, decoded) == run_filters.FLOW_RUN_QUERY.where(
                Dialect(tx.dialect, probe_tags=True), decoded)
            assert unchanged == all(name not in body for name in ("flows", "work_pools", "work_pool_queues"))
            if not unchanged:
                shown = await plan(tx, body, sort, walked)
                assert "Sort" not in shown.replace("Sort Key", ""), shown  # walked, in the sort's order
            return
        shown = await plan(tx, body, sort, walked)
        assert f"SCAN fr USING INDEX {index}" in shown, shown
        assert "TEMP B-TREE" not in shown, shown


@pytest.mark.parametrize(("body", "index"), [
    ({"flow_runs": {"start_time": {"after_": "2026-01-01T00:00:00Z", "before_": "2026-01-02T00:00:00Z"}}},
     "flow_runs_started"),
    ({"flow_runs": {"expected_start_time": {"after_": "2026-01-01T00:00:00Z", "before_": "2026-01-02T00:00:00Z"}}},
     "flow_runs_expected_start"),
])
async def test_postgres_counts_a_time_range_from_an_index_alone(store, backend, body, index):
    """Migration 0038: each index holds every column these counts read (INCLUDE), so PostgreSQL
    can count from it without reading the runs' heap pages where the visibility map says they
    are all visible (after a VACUUM; README, "Using PostgreSQL"). Planned as an index-only
    scan; a bitmap scan, which always reads the heap, is ruled out to make it show on a near-empty
    table. A flow's runs in some states and a range are counted from flow_runs_flow_scheduled,
    whose last column is the expected start, or from the range's index, by the statistics (which a
    near-empty table has not): here only the index's columns are checked. (SQLite's count of a
    flow in a range reads its covering index: test_run_counts.)"""
    if backend != "postgres":
        pytest.skip("PostgreSQL's index-only scans")
    async with planning(store) as tx:
        await tx.execute("SET enable_bitmapscan = off")
        try:
            # The count as served while every run has its flow (run_counts._over_runs): no flow check.
            sql, params = run_counts._ANY_FLOW.where(tx, msgspec.convert(body, f.FlowRunCountRequest))
            rows = await tx.fetch(f"EXPLAIN SELECT COUNT(*) FROM flow_runs fr WHERE {sql}", *params)
        finally:
            await tx.execute("RESET enable_bitmapscan")
        shown = "\n".join(str(row[-1]) for row in rows)
        assert f"Index Only Scan using {index}" in shown, shown
        (definition,) = (await tx.fetch("SELECT indexdef FROM pg_indexes WHERE indexname = 'flow_runs_flow_scheduled'"))[0]
        assert definition.endswith("(flow_id, state_type, next_scheduled_start_time, expected_start_time)"), definition
