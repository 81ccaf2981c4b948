"""`runlog import prefect`: a database written by Prefect 3.8.8's own server (through the stock
client, tests/compat/prefect_source.py) is imported, and runlog's API then answers about the
imported records as Prefect's server answers from the source: runs with state, run count, times
and tags; state histories; logs; task runs; deployments; variables; artifacts; limits.

Both of Prefect's backends are sources and both of runlog's are targets. Prefect's server keeps
running while it is imported from (its SQLite database in WAL mode, read in place) so that the
same questions can be put to it. Generating a source is slow, so each is made once per session.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from runlog.commands.import_prefect import Importer, Progress, import_database, open_source
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections

from ..conftest import database_for, new_pg_database
from ..servers import PREFECT_PYTHON, ROOT, RUNLOG, runlog_server, server_env
from .test_history_vs_prefect import _client_env, _start_prefect, _stop

pytestmark = pytest.mark.slow


@dataclass
class PrefectSource:
    api: str
    database_url: str
    made: dict[str, Any]
    workdir: Path

    def run_more(self) -> dict[str, Any]:
        """One more flow run in the source (the source grows)."""
        return _load(self.api, self.workdir, "more")


def _load(api: str, workdir: Path, scenario: str = "all") -> dict[str, Any]:
    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.prefect_source", scenario], cwd=ROOT,
        env=_client_env() | {"PREFECT_HOME": str(workdir / "client"), "PREFECT_API_URL": api},
        capture_output=True, text=True, timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"loading Prefect failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def prefect_source(request, tmp_path_factory) -> Iterator[PrefectSource]:
    """Prefect's server on SQLite or PostgreSQL, filled through the stock client, still running."""
    workdir = tmp_path_factory.mktemp(f"prefect-source-{request.param}")
    with _prefect_database(request, workdir) as (prefect_url, import_url):
        proc, api = _start_prefect(workdir, {"PREFECT_API_DATABASE_CONNECTION_URL": prefect_url})
        try:
            yield PrefectSource(api, import_url, _load(api, workdir), workdir)
        finally:
            _stop(proc)


class _prefect_database:
    def __init__(self, request, workdir: Path) -> None:
        self.request, self.workdir, self.pg = request, workdir, None

    def __enter__(self) -> tuple[str, str]:
        if self.request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{self.workdir}/prefect.db"
            return url, url
        self.pg = new_pg_database(self.request.getfixturevalue("postgres_admin_url"))
        url = self.pg.__enter__()
        return url.replace("postgresql://", "postgresql+asyncpg://", 1), url

    def __exit__(self, *exc: object) -> None:
        if self.pg is not None:
            self.pg.__exit__(*exc)


def import_prefect(env: dict[str, str], source_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNLOG, "import", "prefect", source_url, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )


@dataclass
class Imported:
    source: PrefectSource
    env: dict[str, str]
    first: subprocess.CompletedProcess[str]
    runlog: httpx.Client
    prefect: httpx.Client


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def imported(request, prefect_source, tmp_path_factory) -> Iterator[Imported]:
    workdir = tmp_path_factory.mktemp(f"runlog-import-{request.param}")
    with database_for(request, workdir) as url:
        env = server_env(workdir, url, RUNLOG_SERVICES_LATE_RUNS_ENABLED="false",
                         RUNLOG_SERVICES_SCHEDULER_ENABLED="false")
        first = import_prefect(env, prefect_source.database_url)
        assert first.returncode == 0, first.stderr
        with runlog_server(env, workdir / "server.log") as running, \
                httpx.Client(base_url=running.url, timeout=60) as runlog, \
                httpx.Client(base_url=prefect_source.api, timeout=60) as prefect:
            yield Imported(prefect_source, env, first, runlog, prefect)


# -- comparing answers ---------------------------------------------------------------------------


def _times(value: Any) -> Any:
    """Times as instants (Prefect writes "+00:00" or "Z"), so equal moments compare equal."""
    if isinstance(value, dict):
        return {k: _times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_times(v) for v in value]
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def _pick(answer: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    picked = {name: _times(answer.get(name)) for name in fields}
    if isinstance(picked.get("total_run_time"), float):
        # Prefect keeps an interval in microseconds; runlog adds up seconds as floats, so the
        # same sum may differ in its last binary digits (1.47209 and 1.4720900000000001).
        picked["total_run_time"] = round(picked["total_run_time"], 6)
    return picked


def get(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    assert response.status_code == 200, (str(client.base_url), path, response.text)
    return response.json()


def post(client: httpx.Client, path: str, body: Any) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, (str(client.base_url), path, response.text)
    return response.json()


RUN_FIELDS = (
    "id", "name", "state_type", "state_name", "run_count", "start_time", "end_time", "total_run_time",
    "expected_start_time", "next_scheduled_start_time", "tags", "parameters", "created", "work_queue_name",
    "work_pool_name", "empirical_policy", "parent_task_run_id", "auto_scheduled",
)
STATE_FIELDS = ("id", "type", "name", "timestamp", "message")
TASK_FIELDS = (
    "id", "name", "flow_run_id", "task_key", "dynamic_key", "state_type", "state_name", "run_count",
    "flow_run_run_count", "start_time", "end_time", "total_run_time", "expected_start_time", "tags", "created",
    "task_inputs",
)
LOG_FIELDS = ("id", "name", "level", "message", "timestamp", "flow_run_id", "task_run_id")


def run_ids(imported: Imported) -> list[str]:
    return [*imported.source.made["runs"].values(), imported.source.made["deployment_run_id"]]


def test_flow_runs_answer_as_prefect_does(imported):
    for run_id in run_ids(imported):
        ours, theirs = (get(c, f"/flow_runs/{run_id}") for c in (imported.runlog, imported.prefect))
        assert _pick(ours, RUN_FIELDS) == _pick(theirs, RUN_FIELDS)
        assert _pick(ours["state"], STATE_FIELDS) == _pick(theirs["state"], STATE_FIELDS)
        # Flows are keyed by name in runlog: the run's flow is the flow of the same name.
        flows = [get(c, f"/flows/{answer['flow_id']}")["name"] for c, answer in
                 ((imported.runlog, ours), (imported.prefect, theirs))]
        assert flows[0] == flows[1]


def test_state_histories_answer_as_prefect_does(imported):
    for run_id in run_ids(imported):
        histories = [
            [_pick(state, STATE_FIELDS) for state in get(c, f"/flow_run_states/?flow_run_id={run_id}")]
            for c in (imported.runlog, imported.prefect)
        ]
        assert histories[0] == histories[1] and histories[0]


def test_task_runs_and_their_states_answer_as_prefect_does(imported):
    body = {"flow_runs": {"id": {"any_": run_ids(imported)}}, "sort": "EXPECTED_START_TIME_DESC"}
    ours, theirs = (post(c, "/task_runs/filter", body) for c in (imported.runlog, imported.prefect))
    assert len(theirs) >= 5
    assert sorted(map(lambda t: str(_pick(t, TASK_FIELDS)), ours)) == sorted(map(lambda t: str(_pick(t, TASK_FIELDS)), theirs))
    for task in theirs:
        histories = [
            [_pick(state, STATE_FIELDS) for state in get(c, f"/task_run_states/?task_run_id={task['id']}")]
            for c in (imported.runlog, imported.prefect)
        ]
        assert histories[0] == histories[1]


def test_logs_answer_as_prefect_does(imported):
    for run_id in run_ids(imported):
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
        ours, theirs = (post(c, "/logs/filter", body) for c in (imported.runlog, imported.prefect))
        key = lambda line: (line["timestamp"], line["id"])  # noqa: E731 - equal timestamps: any order
        assert [_pick(line, LOG_FIELDS) for line in sorted(ours, key=key)] == \
            [_pick(line, LOG_FIELDS) for line in sorted(theirs, key=key)]
    assert post(imported.runlog, "/logs/filter", {"limit": 200}) and \
        len(post(imported.runlog, "/logs/filter", {"limit": 200})) == len(post(imported.prefect, "/logs/filter", {"limit": 200}))


def test_counts_answer_as_prefect_does(imported):
    for path in ("/flow_runs/count", "/task_runs/count", "/flows/count", "/deployments/count"):
        assert post(imported.runlog, path, {}) == post(imported.prefect, path, {}), path
    by_state = {"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}}
    assert post(imported.runlog, "/flow_runs/count", by_state) == post(imported.prefect, "/flow_runs/count", by_state) == 1


DEPLOYMENT_FIELDS = (
    "name", "description", "parameters", "tags", "work_pool_name", "work_queue_name", "paused",
    "enforce_parameter_schema", "created", "concurrency_limit",
)


def test_deployments_answer_as_prefect_does(imported):
    ours, theirs = (get(c, "/deployments/name/adder/nightly") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, DEPLOYMENT_FIELDS) == _pick(theirs, DEPLOYMENT_FIELDS)
    schedule_fields = ("id", "schedule", "active", "max_scheduled_runs", "parameters", "slug")
    assert [_pick(s, schedule_fields) for s in ours["schedules"]] == [_pick(s, schedule_fields) for s in theirs["schedules"]]
    # The deployment's run names the deployment as runlog knows it.
    run = get(imported.runlog, f"/flow_runs/{imported.source.made['deployment_run_id']}")
    assert run["deployment_id"] == ours["id"]


def test_pools_variables_artifacts_and_limits_answer_as_prefect_does(imported):
    pool_fields = ("id", "name", "type", "description", "is_paused", "concurrency_limit", "default_queue_id")
    ours, theirs = (get(c, "/work_pools/import-pool") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, pool_fields) == _pick(theirs, pool_fields)
    queue_fields = ("id", "name", "priority", "description", "is_paused", "concurrency_limit")
    ours, theirs = (post(c, "/work_pools/import-pool/queues/filter", {}) for c in (imported.runlog, imported.prefect))
    assert sorted(str(_pick(q, queue_fields)) for q in ours) == sorted(str(_pick(q, queue_fields)) for q in theirs)

    variable_fields = ("id", "name", "value", "tags", "created")
    ours, theirs = (get(c, "/variables/name/import_var") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, variable_fields) == _pick(theirs, variable_fields)

    artifact_fields = ("id", "key", "type", "description", "data", "flow_run_id", "task_run_id", "created")
    ours, theirs = (post(c, "/artifacts/filter", {"sort": "CREATED_DESC"}) for c in (imported.runlog, imported.prefect))
    assert [_pick(a, artifact_fields) for a in ours] == [_pick(a, artifact_fields) for a in theirs]
    # The latest of a key: the same artifact (the key's own row has an id runlog derives).
    latest_fields = ("latest_id", "key", "type", "description", "data", "flow_run_id", "created")
    ours, theirs = (get(c, "/artifacts/adder-total/latest") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, latest_fields) == _pick(theirs, latest_fields)

    limit_fields = ("name", "limit", "active", "slot_decay_per_second")
    ours, theirs = (post(c, "/v2/concurrency_limits/filter", {}) for c in (imported.runlog, imported.prefect))
    # The deployment's own limit is named after the deployment's id, which runlog derives.
    renamed = get(imported.runlog, "/deployments/name/adder/nightly")["id"]
    for limit in theirs:
        limit["name"] = limit["name"].replace(imported.source.made["deployment_id"], renamed)
    assert sorted(str(_pick(x, limit_fields)) for x in ours) == sorted(str(_pick(x, limit_fields)) for x in theirs)
    assert f"deployment:{renamed}" in {x["name"] for x in ours}
    ours, theirs = (get(c, "/concurrency_limits/tag/math") for c in (imported.runlog, imported.prefect))
    assert (ours["tag"], ours["concurrency_limit"]) == (theirs["tag"], theirs["concurrency_limit"]) == ("math", 5)


def test_blocks_answer_as_prefect_does_with_secrets_sealed_by_runlog(imported):
    document_id = imported.source.made["block_document_id"]
    fields = ("id", "name", "data", "block_type_name", "is_anonymous", "created")
    ours, theirs = (get(c, f"/block_documents/{document_id}") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, fields) == _pick(theirs, fields)
    assert ours["data"] == {"value": "********"}
    assert ours["block_type"]["slug"] == theirs["block_type"]["slug"] == "secret"
    # Decrypted with the source's key and sealed with runlog's: runlog can open it.
    revealed = get(imported.runlog, f"/block_documents/{document_id}?include_secrets=true")
    assert revealed["data"] == {"value": "s3cr3t-value"}


def test_automations_answer_as_prefect_does(imported):
    automation_id = imported.source.made["automation_id"]
    ours, theirs = (get(c, f"/automations/{automation_id}") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, ("id", "name", "description", "enabled", "tags")) == \
        _pick(theirs, ("id", "name", "description", "enabled", "tags"))
    trigger = ("type", "match", "expect", "posture", "threshold", "within")
    assert _pick(ours["trigger"], trigger) == _pick(theirs["trigger"], trigger)
    # The action runs the deployment as runlog knows it.
    deployment = get(imported.runlog, "/deployments/name/adder/nightly")
    assert [a["deployment_id"] for a in ours["actions"]] == [deployment["id"]]
    assert [a["parameters"] for a in ours["actions"]] == [a["parameters"] for a in theirs["actions"]]


def test_projections_verify_clean_after_the_import(imported):
    done = subprocess.run([*RUNLOG, "projections", "verify"], cwd=ROOT, env=imported.env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Every projection table equals its rebuild from the log." in done.stdout


def test_importing_again_adds_nothing_then_only_what_is_new(imported):
    """Run last in the module: it grows the source."""
    before = post(imported.runlog, "/flow_runs/count", {})
    again = import_prefect(imported.env, imported.source.database_url)
    assert again.returncode == 0, again.stderr
    assert _imported_counts(again.stdout) == {}, again.stdout
    assert post(imported.runlog, "/flow_runs/count", {}) == before

    more = imported.source.run_more()
    third = import_prefect(imported.env, imported.source.database_url)
    assert third.returncode == 0, third.stderr
    counts = _imported_counts(third.stdout)
    assert counts.get("flow_run") == 1 and counts.get("task_run") == more["task_runs"], third.stdout
    assert set(counts) <= {"flow_run", "task_run", "log", "artifact"}, third.stdout
    ours, theirs = (get(c, f"/flow_runs/{more['run_id']}") for c in (imported.runlog, imported.prefect))
    assert _pick(ours, RUN_FIELDS) == _pick(theirs, RUN_FIELDS)


def _imported_counts(report: str) -> dict[str, int]:
    """The tables the report says imported anything, with how many."""
    counts = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and cells[2].isdigit() and int(cells[2]) > 0:
            counts[cells[0]] = int(cells[2])
    return counts


def test_a_database_at_an_unknown_revision_is_refused_clearly(tmp_path):
    import sqlite3

    path = tmp_path / "prefect.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES ('0123456789ab')")
    env = server_env(tmp_path, f"sqlite:///{tmp_path}/runlog.db")
    done = import_prefect(env, f"sqlite+aiosqlite:///{path}")
    assert done.returncode == 1
    assert "schema revision 0123456789ab" in done.stderr and "a3b9c7d2e5f1 (Prefect 3.8.8)" in done.stderr
    (tmp_path / "other.db").write_bytes(b"")
    done = import_prefect(env, f"sqlite:///{tmp_path}/other.db")
    assert done.returncode == 1 and "not a Prefect server's database" in done.stderr


class Interrupted(Exception):
    pass


class _Interrupt(Progress):
    """Stops the import (as a crash would) after ``pages`` pages of ``table``."""

    def __init__(self, table: str, pages: int) -> None:
        self.table, self.left = table, pages

    def advance(self, table: str, rows: int) -> None:
        if table == self.table:
            self.left -= 1
            if self.left <= 0:
                raise Interrupted


async def _event_ids(url: str) -> set[Any]:
    """The ids of every event and every run log line."""
    async with open_store(url) as store:
        ids = {event.id async for event in store.read_all()}
        async with store.reading() as tx:
            ids |= {("log", row[0]) for row in await tx.fetch("SELECT id FROM logs")}
    return ids


async def _indexes(store) -> set[Any]:
    async with store.reading() as tx:
        return {tuple(row) for row in await tx.fetch("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}


@pytest.mark.parametrize("table", ["flow_run", "task_run", "log"])
async def test_an_interrupted_import_run_again_ends_as_one_clean_import(prefect_source, tmp_path, table):
    clean, resumed = f"sqlite:///{tmp_path}/clean.db", f"sqlite:///{tmp_path}/resumed.db"
    async with await open_source(prefect_source.database_url) as source, \
            open_store(clean, projections=inline_projections()) as store:
        await Importer(source, store).run()
    async with await open_source(prefect_source.database_url) as source, \
            open_store(resumed, projections=inline_projections()) as store:
        indexes = await _indexes(store)
        with pytest.raises(Interrupted):
            await Importer(source, store, progress=_Interrupt(table, 1), page=1, defer_indexes=True).run()
        interrupted = await store.head()
        assert await _indexes(store) == indexes  # made again when the import stopped
    async with await open_source(prefect_source.database_url) as source, \
            open_store(resumed, projections=inline_projections()) as store:
        report = await Importer(source, store, page=1, defer_indexes=True).run()
        assert report.tables[table].already >= 1  # what the first attempt stored is not stored again
        assert await _indexes(store) == indexes
    assert 0 < interrupted < len(await _event_ids(clean))
    assert await _event_ids(resumed) == await _event_ids(clean)
    done = subprocess.run([*RUNLOG, "projections", "verify"], cwd=ROOT, env=server_env(tmp_path, resumed),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


async def test_names_runlog_already_has_are_kept_and_the_import_joins_them(prefect_source, tmp_path):
    """Into a runlog whose own clients made a flow, a variable and a work pool of the names the
    source uses: those stay runlog's, the import skips them saying why, and its runs join them."""
    from runlog.commands import flows, variables, work_pools

    url = f"sqlite:///{tmp_path}/runlog.db"
    async with open_store(url, projections=inline_projections()) as store:
        flow, _ = await flows.register(store, "adder", tags=["runlog-own"])
        await variables.create(store, "import_var", "runlog's own value")
        await work_pools.create_pool(store, work_pools.NewWorkPool(name="import-pool", type="process"))
    async with await open_source(prefect_source.database_url) as source:
        report = await import_database(source, url)
    for table in ("flow", "variable", "work_pool"):
        assert sum(report.tables[table].skipped.values()) == 1, (table, report.tables[table])
    async with open_store(url) as store:
        async with store.reading() as tx:
            rows = await tx.fetch("SELECT view FROM variables WHERE name = ?", "import_var")
            assert b"runlog's own value" in bytes(rows[0][0])
            runs_of_adder = await tx.fetch("SELECT count(*) FROM flow_runs WHERE flow_id = ?", str(flow.id))
            assert runs_of_adder[0][0] >= 2  # the direct run and the deployment's
    done = subprocess.run([*RUNLOG, "projections", "verify"], cwd=ROOT, env=server_env(tmp_path, url),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
