"""The event log's index page lists the newest runs from flow_run_names' index (migration 0033),
with the answer ordering flow_runs by ``created`` gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from runlog.api.queries import event_log
from runlog.commands.executor import append_event
from runlog.eventstore import open_store
from runlog.projections.cache import ViewCache
from runlog.projections.flows import FlowsProjection
from runlog.projections.runs_writer import RunsProjection
from runlog.schema import events as catalogue
from runlog.schema import streams

from .test_run_search import planning

_BEFORE_0033 = "SELECT id, name, state_name FROM flow_runs ORDER BY created DESC, id DESC LIMIT ?"


async def test_the_newest_runs_are_read_off_the_names_index_without_a_sort(store):
    async with planning(store) as tx:
        explain = "EXPLAIN QUERY PLAN " if tx.dialect == "sqlite" else "EXPLAIN "
        shown = "\n".join(str(row[-1]) for row in await tx.fetch(explain + event_log.SQL_RECENT_RUNS, 20))
    assert "flow_run_names_created" in shown, shown
    if tx.dialect == "sqlite":
        assert "TEMP B-TREE" not in shown and "SCAN r" not in shown, shown
    else:
        assert "Sort" not in shown.replace("Sort Key", "") and "Seq Scan" not in shown, shown


async def test_the_newest_runs_are_those_ordering_flow_runs_by_created_gave(store_url):
    """Imported runs carry their own creation times, out of log order and some equal; a rename
    and a deletion change the names table too."""
    cache = ViewCache()
    async with open_store(store_url, projections=[FlowsProjection(), RunsProjection(cache)]) as store:
        flow_id = uuid4()
        await append_event(store, streams.flow(flow_id), catalogue.FlowCreated(
            flow_id=flow_id, name="f", created=datetime(2026, 1, 1, tzinfo=UTC)))
        base = datetime(2026, 1, 1, tzinfo=UTC)
        ids: list[UUID] = []
        for i, minutes in enumerate([5, 1, 9, 5, 3, 9, 0, 7, 5, 2]):
            run_id = uuid4()
            ids.append(run_id)
            await append_event(store, streams.flow_run(run_id), catalogue.FlowRunCreated(
                flow_run_id=run_id, flow_id=flow_id, name=f"run-{i}", created=base + timedelta(minutes=minutes)))
        await append_event(store, streams.flow_run(ids[2]), catalogue.FlowRunDeleted(flow_run_id=ids[2]))
        await append_event(store, streams.flow_run(ids[3]), catalogue.FlowRunUpdated(
            flow_run_id=ids[3], changes={"name": "renamed"}))
        async with store.reading() as tx:
            for limit in (1, 4, 20):
                assert await tx.fetch(event_log.SQL_RECENT_RUNS, limit) == await tx.fetch(_BEFORE_0033, limit)
        travels = await event_log.travels(store, runs=3)
    assert [name for _, name, _ in travels.runs] == ["run-5", "run-7", sorted(
        [("run-0", ids[0]), ("renamed", ids[3]), ("run-8", ids[8])], key=lambda p: str(p[1]))[-1][0]]
