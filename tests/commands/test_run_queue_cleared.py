"""A deleted queue is cleared from its runs (Prefect's foreign key SET NULL) by commands only,
on both backends, including a run whose creation resolved the queue before it was deleted and
appended after: the run clears it itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from runlog.commands import flow_runs, flows, work_pools
from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections
from runlog.projections.runs_writer import flow_run_ids_of_queue, get_flow_run
from runlog.projections.verify import verify

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_run_appended_after_its_queue_was_deleted_clears_the_queue_itself(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
        _, queue = await work_pools.create_queue(store, "p", work_pools.NewWorkQueue(name="q"), clock=clock)
        flow, _ = await flows.register(store, "f", clock=clock)
        body = flow_runs.NewFlowRun(flow_id=flow.id, work_pool_name="p", work_queue_name="q")
        kept, _ = await flow_runs.create(store, body, clock=clock)
        assert await flow_run_ids_of_queue(store, queue.id) == [kept.id]

        assert await work_pools.delete_queue(store, work_pools.queue_by_id(queue.id), clock=clock)
        # (the deletion cleared the run it found; doing it again for that run changes nothing)
        assert await flow_runs.clear_work_queue(store, [queue.id], run_ids=[kept.id], clock=clock) == 0
        # The queue was resolved for this run before the deletion, and the run appended after it.
        late = await flow_runs._append_new(store, uuid.uuid4(), body, None, clock, (queue.id, pool.id))
        for run_id in (kept.id, late.id):
            view = await get_flow_run(store, run_id)
            assert view is not None and (view.work_queue_id, view.work_pool_id, view.work_pool_name) == (None, None, None)
        assert late.work_queue_id is None  # the view the creation answers with too
        assert await flow_run_ids_of_queue(store, queue.id) == []
        # clearing again finds nothing to do
        assert await flow_runs.clear_work_queue(store, [queue.id], clock=clock) == 0
    assert (await verify(store_url)).equal
