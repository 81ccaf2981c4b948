"""EntityStream: the commands on one entity's stream (commands/entities.py), on both backends.

An update or delete of an entity that does not exist writes nothing and answers False; one
decided against a stale cached view is decided again against the stored one; a delete drops the
entity's cached view.
"""

from __future__ import annotations

from datetime import UTC, datetime

from runlog.commands import flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import FLOW_RUNS, NewFlowRun
from runlog.eventstore import open_store
from runlog.projections.cache import ViewCache
from runlog.projections.registry import inline_projections
from runlog.projections.runs_writer import cache_key
from runlog.schema import events as catalogue

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_missing_entity_is_not_written_and_answers_false(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        flow, _ = await flows.register(store, "f", clock=clock)
        run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id), clock=clock)
        head = await store.head()
        assert not await flows.update(store, flows.flow_id_for("nobody"), {"tags": ["x"]}, clock=clock)
        assert not await FLOW_RUNS.if_exists(store, flow.id, lambda _view, _now: [], clock=clock)  # no run has this id
        assert await store.head() == head
        assert await flow_runs.update(store, run.id, {"tags": ["t"]}, clock=clock)
        assert await store.head() == head + 1


async def test_a_stale_cached_view_is_decided_again_and_a_delete_drops_it(store_url: str) -> None:
    clock = ManualClock(NOW)
    cache = ViewCache()
    async with open_store(store_url, projections=inline_projections(cache)) as store:
        flow, _ = await flows.register(store, "f", clock=clock)
        run, _ = await flow_runs.create(store, NewFlowRun(flow_id=flow.id, tags=["a"]), cache=cache, clock=clock)
        key = cache_key("flow_runs", run.id)
        stale = cache.get(key)
        assert stale is not None
        # Another process moves the run on; this one still caches the older view.
        await flow_runs.update(store, run.id, {"tags": ["b"]}, clock=clock)
        cache.put(key, stale)
        seen: list[list[str]] = []

        def retag(view, _now):  # type: ignore[no-untyped-def]
            seen.append(view.tags)
            return [catalogue.FlowRunUpdated(flow_run_id=run.id, changes={"tags": [*view.tags, "c"]})]

        assert await FLOW_RUNS.if_exists(store, run.id, retag, cache=cache, clock=clock)
        assert seen == [["a"], ["b"]]  # decided on the cached view, conflicted, decided again on the stored one
        assert cache.get(key).tags == ["b", "c"]  # type: ignore[union-attr]
        assert await flow_runs.delete(store, run.id, cache=cache, clock=clock)
        assert cache.get(key) is None
        assert not await flow_runs.delete(store, run.id, cache=cache, clock=clock)
