"""The declared filters (api/queries/filtering.py): a decoded filter in, SQL and parameters out.

The first part needs no database: each case is a filter body and the SQL text and parameters
it must give on each dialect; hostile values only ever reach the parameters; every field of
every filter Prefect's client may send is declared. The second part reads a real database on
both backends through a store wrapper that records what is read: flow filters are evaluated
in SQL (no flow row is read into Python), and /paginate's page and count come from one read.
"""

from __future__ import annotations

import contextlib
import json
import typing
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from runlog.api import keys
from runlog.api.queries import artifacts, logs, run_filters, variables
from runlog.api.queries.filtering import (
    Constant, Dialect, Ignored, Related, Resource, Unknown, fetch_page_and_count,
)
from runlog.api.schemas import artifacts as artifact_schemas
from runlog.api.schemas import filters as f
from runlog.api.schemas import flows as flow_schemas
from runlog.api.schemas import logs as log_schemas
from runlog.api.schemas import variables as variable_schemas
from runlog.commands.clock import ManualClock

from ..servers import Server, serve

SQLITE, POSTGRES = Dialect("sqlite"), Dialect("postgres")

HAS_FLOW = "EXISTS (SELECT 1 FROM flows f WHERE f.id = fr.flow_id)"
ID_1 = "11111111-1111-4111-8111-111111111111"


def flow_run_where(body: dict[str, Any], d: Dialect = SQLITE) -> tuple[str, tuple[Any, ...]]:
    return run_filters.FLOW_RUN_QUERY.where(d, msgspec.convert(body, f.FlowRunCountRequest))


# -- the condition builder, table-driven --------------------------------------------------------

CASES: list[tuple[str, Any, Any, dict[str, Any], str, tuple[Any, ...]]] = [
    # (case, resource, body type, body, SQL on SQLite, parameters on SQLite)
    ("no filter is TRUE", variables.VARIABLE, variable_schemas.VariableFilter, {}, "1 = 1", ()),
    (
        "any_ is one list parameter", variables.VARIABLE, variable_schemas.VariableFilter,
        {"name": {"any_": ["a", "b"]}}, "v.name IN (SELECT value FROM json_each(?))", ('["a", "b"]',),
    ),
    (
        "an empty any_ matches nothing; an empty not_any_ is no criterion", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"id": {"any_": [], "not_any_": []}}, "fr.id IN (SELECT value FROM json_each(?))", ("[]",),
    ),
    (
        "criteria of one field combine with its operator", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"deployment_id": {"operator": "or_", "any_": [ID_1], "is_null_": True}},
        "(fr.deployment_id IN (SELECT value FROM json_each(?)) OR fr.deployment_id IS NULL)", (f'["{ID_1}"]',),
    ),
    (
        "fields combine with the filter's operator", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"operator": "or_", "flow_version": {"any_": ["1"]}, "end_time": {"is_null_": False}},
        "(fr.flow_version IN (SELECT value FROM json_each(?)) OR fr.end_time IS NOT NULL)", ('["1"]',),
    ),
    (
        "run names of 1-2 characters match as an escaped literal substring", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"name": {"like_": "%_"}},
        "fr.id IN (SELECT n.run_id FROM flow_run_names n WHERE lower(n.name) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\')",
        ("%\\%\\_%",),
    ),
    (
        "longer run names match as a quoted phrase of the SQLite trigram index (literal)", run_filters.FLOW_RUN,
        f.FlowRunFilter, {"name": {"like_": '50%_"off'}},
        "fr.id IN (SELECT n.run_id FROM flow_run_name_trigrams t JOIN flow_run_names n ON n.id = t.rowid "
        "WHERE t.flow_run_name_trigrams MATCH ?)",
        ('"50%_""off"',),
    ),
    (
        "variable names match with Prefect's wildcards", variables.VARIABLE, variable_schemas.VariableFilter,
        {"name": {"like_": "a_b"}}, "lower(v.name) LIKE lower(CAST(? AS TEXT))", ("%a_b%",),
    ),
    (
        "times are inclusive microsecond bounds; a run not started is at its expected start",
        run_filters.FLOW_RUN, f.FlowRunFilter, {"start_time": {"after_": "1970-01-01T00:00:01Z"}},
        "COALESCE(fr.start_time, fr.expected_start_time) >= ?", (1_000_000,),
    ),
    (
        "tags all_ is one tag-table range per distinct tag", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"tags": {"all_": ["b", "a", "b"]}},
        "(fr.id IN (SELECT t.run_id FROM flow_run_tags t WHERE t.tag = ?) "
        "AND fr.id IN (SELECT t.run_id FROM flow_run_tags t WHERE t.tag = ?))",
        ("a", "b"),
    ),
    (
        "a state type filter setting any_ and not_any_ is dropped, as Prefect does", run_filters.FLOW_RUN,
        f.FlowRunFilter, {"state": {"type": {"any_": ["RUNNING"], "not_any_": ["FAILED"]}}}, "1 = 1", (),
    ),
    (
        "state types travel as their names", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"state": {"type": {"not_any_": ["FAILED"]}}},
        "NOT (fr.state_type IN (SELECT value FROM json_each(?)))", ('["FAILED"]',),
    ),
    (
        "created_by matches its type and id columns", run_filters.FLOW_RUN, f.FlowRunFilter,
        {"created_by": {"operator": "or_", "type_": ["x"], "is_null_": True}},
        "(fr.created_by_type IN (SELECT value FROM json_each(?)) OR fr.created_by_type IS NULL)", ('["x"]',),
    ),
    (
        "task runs: an empty flow_run_id filter means 'has a flow run'", run_filters.TASK_RUN, f.TaskRunFilter,
        {"flow_run_id": {}}, "tr.flow_run_id IS NOT NULL", (),
    ),
    (
        "artifact keys: exists_", artifacts.ARTIFACT, artifact_schemas.ArtifactFilter,
        {"key": {"exists_": False}}, "a.key IS NULL", (),
    ),
    (
        "log levels are bound numbers", logs.LOG, log_schemas.LogFilter,
        {"level": {"ge_": 20, "le_": 40}}, "(level >= ? AND level <= ?)", (20, 40),
    ),
    (
        "work pools: the run's queue is in a pool", run_filters.FLOW_RUN_QUERY, f.FlowRunCountRequest,
        {"work_pools": {}}, f"({HAS_FLOW} AND (fr.work_queue_id IS NOT NULL AND fr.work_queue_id IN (SELECT wq.id "
        "FROM work_queues wq JOIN work_pools wp ON wp.id = wq.work_pool_id WHERE 1 = 1)))", (),
    ),
    (
        "deployments: the run's deployment must match", run_filters.FLOW_RUN_QUERY, f.FlowRunCountRequest,
        {"deployments": {"id": {"any_": [ID_1]}, "paused": {"eq_": False}}},
        f"({HAS_FLOW} AND EXISTS (SELECT 1 FROM deployments d WHERE d.id = fr.deployment_id AND "
        "(d.id IN (SELECT value FROM json_each(?)) AND d.paused = ?)))",
        (f'["{ID_1}"]', 0),
    ),
    (
        "flow filters select the flows once, in SQL", run_filters.FLOW_RUN_QUERY, f.FlowRunCountRequest,
        {"flows": {"name": {"any_": ["etl"]}}},
        f"({HAS_FLOW} AND fr.flow_id IN (SELECT f.id FROM flows f WHERE "
        "f.name IN (SELECT value FROM json_each(?))))",
        ('["etl"]',),
    ),
    (
        "flow tags are read from the flow's JSON view", run_filters.FLOW, f.FlowFilter,
        {"tags": {"is_null_": True}},
        "NOT EXISTS (SELECT 1 FROM json_each(CAST(f.view AS TEXT), '$.tags') t WHERE 1 = 1)", (),
    ),
    (
        "a task run's flow-run-side filters share one EXISTS on its flow run", run_filters.TASK_RUN_QUERY,
        f.TaskRunCountRequest, {"flow_runs": {"name": {"any_": ["x"]}}, "flows": {"id": {"any_": [ID_1]}}},
        "EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = tr.flow_run_id AND "
        "(fr.name IN (SELECT value FROM json_each(?)) AND fr.flow_id IN (SELECT f.id FROM flows f "
        "WHERE f.id IN (SELECT value FROM json_each(?)))))",
        ('["x"]', f'["{ID_1}"]'),
    ),
]


@pytest.mark.parametrize(("resource", "body_type", "body", "sql", "params"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_filter_body_gives_its_sql_and_parameters(resource, body_type, body, sql, params):
    assert resource.where(SQLITE, msgspec.convert(body, body_type)) == (sql, params)


def test_postgres_takes_lists_as_one_array_parameter():
    sql, params = flow_run_where({"flow_runs": {"tags": {"any_": ["a", "b"]}}}, POSTGRES)
    assert "fr.id IN (SELECT t.run_id FROM flow_run_tags t WHERE t.tag = ANY(?::text[]))" in sql
    assert params == (["a", "b"],)


def test_postgres_selects_the_matching_flows_once_in_an_array():
    sql, _ = flow_run_where({"flows": {"name": {"any_": ["etl"]}}}, POSTGRES)
    assert "fr.flow_id = ANY(ARRAY(SELECT f.id FROM flows f WHERE f.name = ANY(?::text[])))" in sql


def test_postgres_reads_flow_tags_from_the_view_as_jsonb():
    sql, params = run_filters.FLOW.where(POSTGRES, msgspec.convert({"tags": {"all_": ["x"]}}, f.FlowFilter))
    assert sql == (
        "(SELECT COUNT(DISTINCT t.tag) FROM jsonb_array_elements_text(convert_from(f.view, 'UTF8')::jsonb -> 'tags') "
        "AS t(tag) WHERE 1 = 1 AND t.tag = ANY(?::text[])) = ?"
    )
    assert params == (["x"], 1)


HOSTILE = "x') OR 1=1; DROP TABLE flow_runs; -- ?"


def _every_string_criterion(value: str) -> dict[str, Any]:
    """A flow run count body setting every string-valued criterion Prefect's filters have."""
    names = {"any_": [value], "like_": value}
    return {
        "flows": {"name": names, "tags": {"all_": [value]}},
        "flow_runs": {
            "name": names, "tags": {"all_": [value], "any_": [value]}, "work_queue_name": {"any_": [value]},
            "state": {"name": {"any_": [value]}}, "flow_version": {"any_": [value]},
            "idempotency_key": {"any_": [value], "not_any_": [value]}, "created_by": {"type_": [value]},
        },
        "task_runs": {"name": names, "tags": {"all_": [value]}, "state": {"name": {"any_": [value]}}},
        "deployments": {"name": names, "tags": {"any_": [value]}, "work_queue_name": {"any_": [value]}},
    }


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_a_hostile_string_only_ever_appears_in_the_parameters(dialect):
    sql, params = flow_run_where(_every_string_criterion(HOSTILE), dialect)
    assert "DROP" not in sql and "1=1" not in sql
    assert sql.count("?") == len(params)
    flattened = json.dumps([p if isinstance(p, (str, int, list)) else str(p) for p in params])
    assert flattened.count("DROP TABLE") >= 10

    task_sql, task_params = run_filters.TASK_RUN_QUERY.where(
        dialect, msgspec.convert(_every_string_criterion(HOSTILE), f.TaskRunCountRequest)
    )
    assert "DROP" not in task_sql and task_sql.count("?") == len(task_params)


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    return None


def _field_entry(resource: Resource, name: str) -> Any:
    """The entry declaring field ``name``; for a group of fields (a tuple key), the field's own
    entry inside the group's resource."""
    for key, entry in resource.entries.items():
        if key == name:
            return entry
        if isinstance(key, tuple) and name in key:
            return _field_entry(entry.resource, name)
    return None


def _undeclared(entry: Any, struct: type[msgspec.Struct], path: str) -> list[str]:
    """Fields of ``struct`` (and of its sub-filters) that ``entry`` does not declare."""
    if isinstance(entry, Related):
        entry = entry.resource
    if isinstance(entry, (Constant, Unknown, Ignored)):
        return []
    missing = []
    for field in msgspec.structs.fields(struct):
        if field.name == "operator":
            continue
        if isinstance(entry, Resource):
            sub_entry = _field_entry(entry, field.name)
            sub_struct = _struct_of(field.type)
            if sub_entry is None or sub_struct is None:
                missing.append(f"{path}.{field.name}")
            else:
                missing += _undeclared(sub_entry, sub_struct, f"{path}.{field.name}")
        elif field.name not in entry.criteria():
            missing.append(f"{path}.{field.name}")
    return missing


@pytest.mark.parametrize(("resource", "body_type"), [
    (run_filters.FLOW_RUN_QUERY, f.FlowRunCountRequest),
    (run_filters.TASK_RUN_QUERY, f.TaskRunCountRequest),
    (run_filters.FLOW, flow_schemas.FlowFilter),
    (artifacts.ARTIFACT_QUERY, artifact_schemas.ArtifactCountRequest),
    (artifacts.COLLECTION_QUERY, artifact_schemas.ArtifactCollectionCountRequest),
    (variables.VARIABLE, variable_schemas.VariableFilter),
    (logs.LOG, log_schemas.LogFilter),
], ids=lambda x: getattr(x, "__name__", ""))
def test_every_field_of_every_filter_is_declared(resource, body_type):
    assert _undeclared(resource, body_type, body_type.__name__) == []


# -- against a database, through a store that records what is read -------------------------------


class RecordingStore:
    """A store whose read handles record each statement and how many rows it returned;
    ``after_fetch`` runs after every statement (to write between two reads)."""

    def __init__(self, store: Any, after_fetch: Callable[[], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._after_fetch = after_fetch
        self.readings = 0
        self.reads: list[tuple[str, int]] = []

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Any]:
        self.readings += 1
        async with self._store.reading() as tx:
            yield RecordingTx(self, tx)


class RecordingTx:
    def __init__(self, store: RecordingStore, tx: Any) -> None:
        self._store = store
        self._tx = tx
        self.dialect = tx.dialect

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows = await self._tx.fetch(sql, *args)
        self._store.reads.append((sql, len(rows)))
        if self._store._after_fetch is not None:
            await self._store._after_fetch()
        return rows


async def _post(server: Server, path: str, body: Any) -> Any:
    status, answer = await server.request("POST", path, json=body)
    assert status in (200, 201), (path, status, answer)
    return answer


@pytest.fixture
async def server(tmp_path, store_url) -> AsyncIterator[Server]:
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}) as running:
        yield running


async def _seed(server: Server, flows: int, runs_per_flow: int) -> list[str]:
    flow_ids = []
    for i in range(flows):
        flow = await _post(server, "/flows/", {"name": f"flow-{i}", "tags": ["even" if i % 2 == 0 else "odd"]})
        flow_ids.append(flow["id"])
        for j in range(runs_per_flow):
            await _post(server, "/flow_runs/", {"flow_id": flow["id"], "name": f"run-{i}-{j}"})
    return flow_ids


async def test_flow_filters_are_evaluated_in_sql_reading_no_flow_rows(server):
    await _seed(server, flows=6, runs_per_flow=2)
    store = RecordingStore(server.app[keys.STORE])
    body = msgspec.convert({"flows": {"name": {"like_": "flow-3"}, "tags": {"all_": ["odd"]}}}, f.FlowRunCountRequest)

    views = await run_filters.filter_flow_runs(store, body, sort="NAME_ASC", limit=200, offset=0)

    assert [v.name for v in views] == ["run-3-0", "run-3-1"]
    # The page is one statement, returning the two runs: the six flows were matched inside the
    # database. Before it, the sums of flow_run_counts that choose how it is read (one row each,
    # run_counts.page_shape).
    *counts, (page, rows) = store.reads
    assert rows == 2 and "flows f WHERE" in page
    assert all("flow_run_counts" in sql and n == 1 for sql, n in counts), counts


async def test_flows_filter_and_count_match_names_tags_and_sort_in_sql(tmp_path, store_url):
    clock = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}, clock=clock) as server:
        ids = {}
        for name, tags in (("flow-b", ["even"]), ("flow-a", ["odd"]), ("flow-d", ["odd", "odd"]), ("flow-c", ["even"])):
            ids[name] = (await _post(server, "/flows/", {"name": name, "tags": tags}))["id"]
            clock.advance(60)
        status, _ = await server.request("PATCH", f"/flows/{ids['flow-c']}", json={"tags": []})
        assert status == 204

        async def names(body: dict[str, Any]) -> list[str]:
            listed = [flow["name"] for flow in await _post(server, "/flows/filter", body)]
            assert await _post(server, "/flows/count", {"flows": body.get("flows")}) == len(
                await _post(server, "/flows/filter", {"flows": body.get("flows")})
            )
            return listed

        assert await names({}) == ["flow-a", "flow-b", "flow-c", "flow-d"]
        assert await names({"sort": "NAME_DESC", "limit": 2, "offset": 1}) == ["flow-c", "flow-b"]
        assert await names({"sort": "CREATED_DESC"}) == ["flow-c", "flow-d", "flow-a", "flow-b"]
        # flow-c was updated last; the others were never updated, so their update times are their
        # creation times.
        assert await names({"sort": "UPDATED_DESC"}) == ["flow-c", "flow-d", "flow-a", "flow-b"]
        assert await names({"flows": {"tags": {"all_": ["even"]}}}) == ["flow-b"]  # flow-c lost its tags
        assert await names({"flows": {"tags": {"is_null_": True}}}) == ["flow-c"]
        assert await names({"flows": {"tags": {"all_": ["odd", "even"]}}}) == []  # flow-d has "odd" twice
        assert await names({"flows": {"tags": {"any_": ["odd", "none"]}}}) == ["flow-a", "flow-d"]
        assert await names({"flows": {"tags": {"any_": []}}}) == ["flow-a", "flow-b", "flow-c", "flow-d"]
        assert await names({"flows": {"name": {"like_": "W-B"}}}) == ["flow-b"]
        assert await names({"flows": {"name": {"any_": ["flow-a", "flow-z"]}}}) == ["flow-a"]
        assert await names({"flows": {"id": {"any_": [ids["flow-d"]]}}}) == ["flow-d"]
        assert await _post(server, "/flows/count", {"flows": {"tags": {"all_": ["odd"]}}}) == 2

        # /flows/paginate (the web UI's): the page asked for and the count of all that match.
        page = await _post(server, "/flows/paginate", {"page": 2, "limit": 3, "sort": "NAME_DESC"})
        assert [flow["name"] for flow in page.pop("results")] == ["flow-a"]
        assert page == {"count": 4, "limit": 3, "pages": 2, "page": 2}
        page = await _post(server, "/flows/paginate", {"flows": {"tags": {"all_": ["odd"]}}})
        assert [flow["name"] for flow in page["results"]] == ["flow-a", "flow-d"] and page["count"] == 2
        status, answer = await server.request("POST", "/flows/paginate", json={"page": 0})
        assert status == 422 and "detail" in answer


async def test_paginate_reads_page_and_count_in_one_statement_of_one_read(server):
    await _seed(server, flows=1, runs_per_flow=5)
    store = RecordingStore(server.app[keys.STORE])
    body = msgspec.convert({"flow_runs": {"name": {"like_": "run-0"}}}, f.FlowRunCountRequest)

    views, count = await run_filters.paginate_flow_runs(store, body, sort="NAME_ASC", limit=2, offset=2)

    assert [v.name for v in views] == ["run-0-2", "run-0-3"] and count == 5
    assert store.readings == 1 and len(store.reads) == 1


async def test_paginate_past_the_last_page_still_counts(server):
    await _seed(server, flows=1, runs_per_flow=3)
    views, count = await run_filters.paginate_task_runs(
        server.app[keys.STORE], f.TaskRunCountRequest(), sort="ID_DESC", limit=2, offset=10,
    )
    assert (views, count) == ([], 0)
    views, count = await run_filters.paginate_flow_runs(
        server.app[keys.STORE], f.FlowRunCountRequest(), sort="ID_DESC", limit=2, offset=10,
    )
    assert (views, count) == ([], 3)


async def test_a_run_created_while_paginating_never_makes_page_and_count_disagree(server):
    """After every statement the paginate query runs, a new matching run is created. Read in two
    statements, the count would take in a run the page had not seen; read in one, they agree."""
    (flow_id,) = await _seed(server, flows=1, runs_per_flow=3)
    created = []

    async def create_a_run() -> None:
        created.append(await _post(server, "/flow_runs/", {"flow_id": flow_id, "name": f"late-{len(created)}"}))

    store = RecordingStore(server.app[keys.STORE], after_fetch=create_a_run)
    views, count = await run_filters.paginate_flow_runs(
        store, f.FlowRunCountRequest(), sort="ID_DESC", limit=200, offset=0,
    )
    assert created, "a run was created during the paginate"
    assert count == len(views) == 3


async def test_fetch_page_and_count_keeps_the_sort_order_of_the_page(server):
    await _seed(server, flows=1, runs_per_flow=6)
    async with server.app[keys.STORE].reading() as tx:
        cond = run_filters.FLOW_RUN_QUERY.where(tx, f.FlowRunCountRequest())
        for sort, expected in (("NAME_DESC", ["run-0-4", "run-0-3", "run-0-2"]),
                               ("NAME_ASC", ["run-0-1", "run-0-2", "run-0-3"])):
            views, count = await fetch_page_and_count(
                tx, "flow_runs", "fr", "view", cond, run_filters.FLOW_RUN_ORDER[sort], 3, 1,
            )
            names = [json.loads(bytes(v))["name"] for v in views]
            assert (names, count) == (expected, 6)
