"""Work pool commands on both backends, without HTTP: names stay unique and a status changes
once under concurrent writers, heartbeats create and revive workers, and a deleted pool takes
its queues and workers with it; the projection equals a rebuild from the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from runlog.commands import work_pools, workers
from runlog.commands.clock import ManualClock
from runlog.commands.errors import Conflict
from runlog.eventstore import open_store
from runlog.projections import work_pools as reads
from runlog.projections.registry import inline_projections
from runlog.projections.verify import verify
from runlog.schema import events as catalogue

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_concurrent_creations_of_one_pool_name_let_one_win(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        outcomes = await asyncio.gather(*(
            work_pools.create_pool(store, work_pools.NewWorkPool(name="contested", type="process"), clock=clock)
            for _ in range(8)
        ), return_exceptions=True)
        assert sum(isinstance(o, reads.WorkPoolView) for o in outcomes) == 1
        assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, reads.WorkPoolView))
        pool = await reads.get_pool_by_name(store, "contested")
        assert pool is not None and [q.name for q in await reads.get_queues_of_pool(store, pool.id)] == ["default"]


async def test_concurrent_status_rounds_record_each_change_once(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
        for name in ("a", "b", "c"):
            await workers.heartbeat(store, "p", name, 10, clock=clock)
        clock.advance(31)
        counts = await asyncio.gather(*(workers.check_statuses(store, clock()) for _ in range(4)))
        assert sum(counts) == 4  # three workers OFFLINE and the pool NOT_READY, each once
        recorded = [catalogue.decode(r.data) async for r in store.read_all()]
        offline = [e for e in recorded if isinstance(e, catalogue.WorkerStatusChanged) and e.status == "OFFLINE"]
        assert sorted(e.name for e in offline) == ["a", "b", "c"]
        pool_changes = [e.status for e in recorded if isinstance(e, catalogue.WorkPoolStatusChanged)]
        assert pool_changes == ["READY", "NOT_READY"]


async def test_a_deleted_pool_takes_its_queues_and_workers_and_the_rebuild_agrees(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="gone", type="process"), clock=clock)
        await work_pools.create_queue(store, "gone", work_pools.NewWorkQueue(name="q"), clock=clock)
        await workers.heartbeat(store, "gone", "w", None, clock=clock)
        assert await reads.get_worker(store, pool.id, "w") is not None
        assert await work_pools.delete_pool(store, "gone", clock=clock) is True
        assert await reads.get_pool_by_name(store, "gone") is None
        assert await reads.get_queues_of_pool(store, pool.id) == []
        assert await reads.get_worker(store, pool.id, "w") is None
        with pytest.raises(work_pools.PoolNotFound):
            await workers.heartbeat(store, "gone", "w", None, clock=clock)
        # a pool of the same name again: a new pool, and the worker's stream carries on
        again = await work_pools.create_pool(store, work_pools.NewWorkPool(name="gone", type="process"), clock=clock)
        assert again.id != pool.id
        await workers.heartbeat(store, "gone", "w", None, clock=clock)
        assert (await reads.get_worker(store, again.id, "w")).status == "ONLINE"
    assert (await verify(store_url)).equal


async def test_a_queue_polled_again_within_the_record_interval_records_no_second_poll(store_url: str) -> None:
    """Polls are recorded at most once per POLL_RECORD_SECONDS per queue: last_polled moves
    on the first poll and again only once that long has passed; a NOT_READY queue is
    recorded READY at its first poll whatever the interval."""
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="polled", type="process"), clock=clock)

        async def poll() -> reads.WorkQueueView:
            queues = await reads.get_queues_of_pool(store, pool.id)
            await workers.record_poll(store, pool, queues, clock=clock)
            [queue] = await reads.get_queues_of_pool(store, pool.id)
            return queue

        first = await poll()
        assert first.last_polled == NOW and first.status == "READY"
        clock.advance(workers.POLL_RECORD_SECONDS - 1)
        assert (await poll()).last_polled == NOW  # not recorded again
        clock.advance(1)
        assert (await poll()).last_polled == clock()  # the interval has passed
        recorded = [catalogue.decode(r.data) async for r in store.read_all()]
        assert sum(isinstance(e, catalogue.WorkQueuesPolled) for e in recorded) == 2
    assert (await verify(store_url)).equal


async def test_a_deployments_status_changes_once_under_concurrent_polls_and_status_rounds(store_url: str) -> None:
    """Eight pollers of a queue make its deployment READY once; eight status rounds a minute
    later make it NOT_READY once; each change is one event on the deployment's stream."""
    from runlog.commands import deployment_status, deployments, flows
    from runlog.projections import deployments as deployment_reads
    from runlog.schema import streams

    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
        flow, _ = await flows.register(store, "f", clock=clock)
        deployment, _ = await deployments.upsert(store, flow.id, "d", {"work_pool_name": "p"}, [], clock=clock)
        assert deployment.status == "NOT_READY" and deployment.work_queue_name == "default"

        await asyncio.gather(*(deployment_status.queues_polled(store, "p", ["default"], clock=clock) for _ in range(8)))
        assert (await deployment_reads.get(store, deployment.id)).status == "READY"
        queues = await reads.get_queues_of_pool(store, pool.id)
        await workers.record_poll(store, pool, queues, clock=clock)  # the queue's last_polled

        clock.advance(61)
        await asyncio.gather(*(deployment_status.check_deployment_statuses(store, clock()) for _ in range(8)))
        assert (await deployment_reads.get(store, deployment.id)).status == "NOT_READY"
        changes = [
            catalogue.decode(r.data) async for r in store.read_stream(streams.deployment(deployment.id))
            if r.type == "deployment.status_changed"
        ]
        assert [c.status for c in changes] == ["READY", "NOT_READY"]
    assert (await verify(store_url)).equal
