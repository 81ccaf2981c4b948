"""The runs tables a live server writes equal a rebuild from the log, on both backends.

On PostgreSQL most batches are appended and projected in one statement, from cached views
(RunsProjection.prepare, persisted by CTEs in the append statement); a rebuild folds the same events through
``changes`` with no cache. The two must give identical rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from runlog.schema import streams
from runlog.commands.orchestration import ProposedState
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.task_runs import NewTaskRun
from runlog.commands import flow_runs, task_runs
from runlog.commands.executor import append_event
from runlog.eventstore import NewEvent, open_store
from runlog.projections.cache import ViewCache
from runlog.projections.concurrency import ConcurrencyProjection
from runlog.projections.flows import FlowsProjection
from runlog.projections.runs_writer import (
    FLOW_RUN_NAMES, FLOW_RUN_TAGS, FLOW_RUNS, TASK_RUN_TAGS, TASK_RUNS, RunsProjection, _flow_run_row, _task_run_row, decode_flow_run, decode_task_run,
)
from runlog.projections.task_run_state_cache import TaskRunStateCacheProjection
from runlog.schema import events as catalogue
from runlog.schema.events import StateType

TABLES = (FLOW_RUNS, FLOW_RUN_TAGS, FLOW_RUN_NAMES, TASK_RUNS, TASK_RUN_TAGS)


class CountingRuns(RunsProjection):
    prepared = 0

    def prepare(self, rows):  # type: ignore[no-untyped-def]
        writes = super().prepare(rows)
        if writes:
            self.prepared += 1
        return writes


def projections(runs: RunsProjection) -> list:
    return [FlowsProjection(), runs, ConcurrencyProjection(), TaskRunStateCacheProjection()]


async def register_flow(store) -> UUID:  # type: ignore[no-untyped-def]
    """A flow for the runs to belong to: a flow run of an unknown flow is refused."""
    flow_id = uuid4()
    flow = catalogue.FlowCreated(flow_id=flow_id, name=f"flow-{flow_id}", created=datetime.now(UTC))
    await append_event(store, streams.flow(flow_id), flow)
    return flow_id


async def table_rows(store) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    rows = {}
    async with store.reading() as tx:
        for table in TABLES:  # in their declared columns (SQLite keeps a key of its own in flow_run_names)
            found = await tx.fetch(f"SELECT {', '.join(table.columns)} FROM {table.name}")
            rows[table.name] = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in found)
    return rows


async def test_runs_tables_written_live_equal_a_rebuild_from_the_log(store_url, backend, tmp_path):
    cache = ViewCache()
    runs = CountingRuns(cache)
    async with open_store(store_url, projections=projections(runs)) as store:
        flow_id = await register_flow(store)
        created = await asyncio.gather(*(
            flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=f"run-{i}", tags=["etl", f"n{i}"]), cache=cache)
            for i in range(6)
        ))
        ids = [view.id for view, _ in created]
        later = datetime.now(UTC) + timedelta(hours=1)
        # A client timestamp in another zone: the fold must normalise it the same way live and rebuilt.
        zoned = ProposedState(type=StateType.RUNNING, timestamp=later.astimezone(timezone(timedelta(hours=2))))
        for proposed in (zoned, ProposedState(type=StateType.COMPLETED)):
            await asyncio.gather(*(flow_runs.set_state(store, run_id, proposed, cache=cache) for run_id in ids))
        await flow_runs.update(store, ids[0], {"tags": ["retagged"]})
        await flow_runs.update(store, ids[3], {"name": "renamed"})
        await flow_runs.set_state(store, ids[0], ProposedState(type=StateType.FAILED), force=True, cache=cache)
        await flow_runs.delete(store, ids[1])
        task, _ = await task_runs.create(store, NewTaskRun(task_key="t", dynamic_key="0", flow_run_id=ids[2], tags=["x"]))
        await task_runs.set_state(store, task.id, ProposedState(type=StateType.RUNNING))
        await task_runs.set_state(store, task.id, ProposedState(type=StateType.COMPLETED))
        live = await table_rows(store)
        events = [e async for e in store.read_all()]

    async with open_store(f"sqlite:///{tmp_path}/rebuilt.db", projections=projections(RunsProjection())) as rebuilt:
        for event in events:
            await rebuilt.append(event.stream_id, [NewEvent(type=event.type, data=event.data, id=event.id)])
        again = await table_rows(rebuilt)

    assert len(live["flow_runs"]) == 5 and len(live["task_runs"]) == 1
    assert ("retagged",) == tuple(tag for run_id, tag in live["flow_run_tags"] if run_id == str(ids[0]))
    # flow_run_names (migration 0030) follows creations, the rename and the deletion.
    assert sorted(name for _, name, _ in live["flow_run_names"]) == ["renamed", "run-0", "run-2", "run-4", "run-5"]
    # ... and each run's creation time (migration 0033), the one flow_runs has.
    async with open_store(store_url) as again_live, again_live.reading() as tx:
        assert sorted(await tx.fetch("SELECT n.run_id, n.created FROM flow_run_names n")) == sorted(
            await tx.fetch("SELECT id, created FROM flow_runs")
        )
    assert live == again
    if backend == "postgres":
        assert runs.prepared > 0  # the one-statement path was taken, so it is what this compared


async def test_an_event_sent_again_with_a_cached_view_changes_no_table(store_url, backend):
    # The projection prepares its writes from the cached view before the append learns the
    # event is stored; on PostgreSQL they ride in the statement that fails on UNIQUE (id), and
    # must be rolled back with it.
    cache = ViewCache()
    runs = CountingRuns(cache)
    async with open_store(store_url, projections=projections(runs)) as store:
        view, _ = await flow_runs.create(store, NewFlowRun(flow_id=await register_flow(store), name="again"), cache=cache)
        view, _ = await flow_runs.set_state(store, view.id, ProposedState(type=StateType.PENDING), cache=cache)
        view, _ = await flow_runs.set_state(store, view.id, ProposedState(type=StateType.RUNNING), cache=cache)
        stream = flow_runs.stream_of(view.id)
        *_, pending, running = [e async for e in store.read_stream(stream)]
        before = await table_rows(store)
        prepared = runs.prepared

        resent = NewEvent(type=pending.type, data=pending.data, id=pending.id)
        assert await store.append(stream, [resent], expected_version=view.version) == [pending]

        assert await table_rows(store) == before
        assert [e async for e in store.read_stream(stream)][-1] == running
        if backend == "postgres":
            assert runs.prepared == prepared + 1  # its writes were in the statement that failed



@pytest.mark.parametrize("cached", [True, False])
async def test_rows_written_with_only_their_changed_columns_are_the_rows_of_their_views(store_url, cached):
    # A run's row is written setting only the columns its new view changes (runs_writer's
    # _Sources): every column must still be what the stored view makes of it, after state
    # changes, a rename and new tags, with views from the cache and read back (no cache).
    cache = ViewCache() if cached else ViewCache(0)
    async with open_store(store_url, projections=projections(RunsProjection(cache))) as store:
        flow_id = await register_flow(store)
        created = await asyncio.gather(*(
            flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=f"run-{i}"), cache=cache) for i in range(4)
        ))
        ids = [view.id for view, _ in created]
        for proposed in (ProposedState(type=StateType.RUNNING), ProposedState(type=StateType.COMPLETED)):
            await asyncio.gather(*(flow_runs.set_state(store, run_id, proposed, cache=cache) for run_id in ids))
        await flow_runs.update(store, ids[0], {"name": "renamed", "tags": ["new"]}, cache=cache)
        await flow_runs.set_state(store, ids[1], ProposedState(type=StateType.SCHEDULED), force=True, cache=cache)
        task, _ = await task_runs.create(store, NewTaskRun(task_key="t", dynamic_key="0", flow_run_id=ids[2]))
        for state in (StateType.RUNNING, StateType.COMPLETED):
            await task_runs.set_state(store, task.id, ProposedState(type=state))
        async with store.reading() as tx:
            runs = [plain(row) for row in await tx.fetch(f"SELECT {', '.join(FLOW_RUNS.columns)} FROM flow_runs")]
            tasks = [plain(row) for row in await tx.fetch(f"SELECT {', '.join(TASK_RUNS.columns)} FROM task_runs")]
    view_at = FLOW_RUNS.columns.index("view")
    assert sorted(runs) == sorted(_flow_run_row(decode_flow_run(row[view_at])) for row in runs)
    assert tasks == [_task_run_row(decode_task_run(tasks[0][TASK_RUNS.columns.index("view")]))]
    assert "renamed" in {row[FLOW_RUNS.columns.index("name")] for row in runs} and len(runs) == 4


def plain(row) -> tuple:  # type: ignore[no-untyped-def]
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
