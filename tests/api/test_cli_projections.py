"""``runlog projections verify`` against both backends: live tables against a rebuild."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from runlog.schema import streams
from runlog.projections.registry import inline_projections
from runlog.commands.orchestration import ProposedState
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.task_runs import NewTaskRun
from runlog.commands import concurrency, flow_runs, task_runs
from runlog.commands.executor import append_event
from runlog.eventstore import migrate, migration_connection, open_store
from runlog.projections.cache import ViewCache
from runlog.schema import events as catalogue
from runlog.schema.events import StateType

from . import isolate_runlog_env
from .cli_runner import run_cli


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


async def record_some_runs(url: str) -> list[UUID]:
    """A flow, a concurrency limit, runs created, moved on, retagged and deleted, and a task run."""
    cache = ViewCache()
    async with open_store(url, projections=inline_projections(cache)) as store:
        flow_id = uuid4()
        flow = catalogue.FlowCreated(flow_id=flow_id, name="etl", tags=[], labels={}, created=datetime.now(UTC))
        await append_event(store, streams.flow(flow_id), flow)
        await concurrency.create_limit(store, "database", 2)
        ids = []
        for i in range(4):
            view, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=f"run-{i}", tags=["etl"]), cache=cache)
            ids.append(view.id)
        for state in (StateType.RUNNING, StateType.COMPLETED):
            await asyncio.gather(*(flow_runs.set_state(store, i, ProposedState(type=state), cache=cache) for i in ids[:3]))
        await flow_runs.update(store, ids[0], {"tags": ["retagged"]})
        await flow_runs.delete(store, ids[1])
        task, _ = await task_runs.create(store, NewTaskRun(task_key="t", dynamic_key="0", flow_run_id=ids[2]))
        await task_runs.set_state(store, task.id, ProposedState(type=StateType.RUNNING))
    return ids


async def tamper(url: str, *statements: str) -> None:
    async with open_store(url) as store, store.reading() as tx:
        for sql in statements:
            await tx.execute(sql)


def test_verify_finds_the_live_tables_equal_to_a_rebuild(database):
    asyncio.run(record_some_runs(database))
    result = run_cli("projections", "verify")
    assert result.exit_code == 0, result.output
    assert "Every projection table equals its rebuild from the log." in result.output
    for table, rows in (("flows", 1), ("flow_runs", 3), ("flow_run_tags", 3), ("task_runs", 1),
                        ("concurrency_limits", 1), ("task_run_state_cache", 0)):
        assert re.search(rf"{table} +│ \w+ +│ +{rows} │ +{rows} │ equal", result.output), (table, result.output)


def test_verify_names_the_rows_that_differ_and_exits_1(database):
    ids = asyncio.run(record_some_runs(database))
    asyncio.run(tamper(
        database,
        f"UPDATE flow_runs SET state_name = 'Tampered' WHERE id = '{ids[2]}'",
        f"DELETE FROM flow_run_tags WHERE run_id = '{ids[0]}'",
    ))
    result = run_cli("projections", "verify")
    assert result.exit_code == 1, result.output
    assert "flow_runs: 1 row(s) only in the live table, 1 only in the rebuild" in result.output  # the tampered row
    assert "flow_run_tags: 0 row(s) only in the live table, 1 only in the rebuild" in result.output  # the deleted tag
    assert f"  live: ('{ids[2]}'" in result.output
    assert f"  rebuilt: ('{ids[0]}', 'retagged')" in result.output
    assert result.output.count("DIFFERS") == 2 and "task_runs " in result.output
    assert "equals its rebuild" not in result.output


def test_verify_refuses_a_database_that_is_not_migrated(database):
    result = run_cli("projections", "verify")
    assert result.exit_code == 1
    assert "Error:" in result.output and "runlog database upgrade" in result.output


async def test_verify_on_a_database_one_revision_behind_says_why_it_did_not_migrate(database, backend):
    """MIGRATE_ON_START is true (the default) here: the advice must not be to turn it on."""
    head = migrate.head_revision(backend)
    async with migration_connection(database) as conn:
        await migrate.upgrade(conn, backend, head - 1)
    result = await asyncio.to_thread(run_cli, "projections", "verify")
    assert result.exit_code == 1
    assert f"is at schema revision {head - 1} and this runlog needs {head}" in result.output
    assert "1 pending migration was not applied because 'runlog projections verify' only reads" in result.output
    assert "Run 'runlog database upgrade' to apply it." in result.output
    assert "RUNLOG_DATABASE_MIGRATE_ON_START" not in result.output
    async with migration_connection(database) as conn:
        assert await migrate.current_revision(conn) == head - 1  # and it still is: nothing was applied
