"""Retention on both backends, with a manual clock: old run log lines and the old heartbeats and
polls that no view needs are pruned, and the truth is unaffected: the read models rebuilt from
the pruned log equal the live ones (projections/verify.py), positions are never reused, and the
pruned streams take new events at their next version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from runlog.commands import work_pools, workers
from runlog.commands.clock import ManualClock
from runlog.commands.retention import apply_retention, retention_service
from runlog.commands.run_logs import LogLine, create_logs
from runlog.eventstore import open_store
from runlog.eventstore.pruning import UnsafePrune, prune_events
from runlog.projections import work_pools as reads
from runlog.projections.catchup import catch_up
from runlog.projections.event_feed import EventFeedProjection
from runlog.projections.registry import inline_projections
from runlog.projections.retention import Stored, prunable_heartbeats, prunable_polls
from runlog.projections.verify import verify
from runlog.schema import events as catalogue
from runlog.schema import streams

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = 86400.0


def _beat(position: int, at: datetime) -> Stored:
    return Stored(position, "worker-x", catalogue.WorkerHeartbeat(
        worker_id=uuid4(), work_pool_id=uuid4(), name="w", occurred=at))


def test_a_workers_first_and_last_heartbeats_are_kept_and_so_is_each_life_after_a_deletion() -> None:
    old = NOW - timedelta(days=30)
    deleted = Stored(5, "worker-x", catalogue.WorkerDeleted(worker_id=uuid4(), work_pool_id=uuid4(), name="w"))
    stream = [_beat(1, old), _beat(2, old), _beat(3, old), _beat(4, old), deleted, _beat(6, old), _beat(7, old),
              _beat(8, NOW), _beat(9, NOW)]
    assert prunable_heartbeats(stream, NOW - timedelta(days=7)) == [2, 3, 7]
    assert prunable_heartbeats(stream, old) == []  # nothing is older than the cutoff


def test_a_poll_goes_only_when_each_of_its_queues_is_polled_again_later() -> None:
    pool, a, b = uuid4(), uuid4(), uuid4()
    old = NOW - timedelta(days=30)

    def poll(position: int, queues: list, at: datetime = old) -> Stored:
        return Stored(position, "work-pool-polls-x", catalogue.WorkQueuesPolled(
            work_pool_id=pool, work_queue_ids=queues, polled=at))

    stream = [poll(1, [a, b]), poll(2, [a]), poll(3, [a]), poll(4, [b], NOW)]
    # 1 is needed by nobody (a and b come again), 2 neither; 3 is a's last poll, 4 b's.
    assert prunable_polls(stream, NOW - timedelta(days=7)) == [1, 2]


async def _busy_pool(store, clock: ManualClock) -> reads.WorkPoolView:
    """A pool with two workers heartbeating and polling every 30 s for a while, then a day later."""
    pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
    queues = await reads.get_queues_of_pool(store, pool.id)
    for _ in range(6):
        for name in ("w1", "w2"):
            await workers.heartbeat(store, "p", name, 30, clock=clock)
        await workers.record_poll(store, (await reads.get_pool_by_name(store, "p")), queues, clock=clock)
        clock.advance(30)
    clock.advance(DAY)
    await workers.heartbeat(store, "p", "w1", 30, clock=clock)
    return pool


async def _rows(store, sql: str) -> list:
    async with store.reading() as tx:
        return sorted(tuple(r) for r in await tx.fetch(sql))


async def test_retention_prunes_old_logs_heartbeats_and_polls_and_the_rebuild_equals_the_live_views(store_url) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        run_id = uuid4()
        await create_logs(store, [LogLine(name="x", level=20, message="old", timestamp=NOW, flow_run_id=run_id)],
                          clock=clock)
        pool = await _busy_pool(store, clock)
        await create_logs(store, [LogLine(name="x", level=20, message="new", timestamp=clock(), flow_run_id=run_id)],
                          clock=clock)
        workers_before = await _rows(store, "SELECT * FROM workers")
        queues_before = await _rows(store, "SELECT * FROM work_queues")
        head = await store.head()
        types_before = [r.type async for r in store.read_all()]

        pruned = await apply_retention(store, clock(), logs_max_age=DAY / 2, heartbeats_max_age=DAY / 2)

        assert pruned.logs == 1
        assert [r[0] for r in await _rows(store, "SELECT message FROM logs")] == ["new"]
        kept = [r async for r in store.read_all()]
        assert pruned.events == len(types_before) - len(kept) > 0
        assert {r.type for r in kept} >= {"work_pool.created", "worker.heartbeat", "work_queue.polled"}
        # Only heartbeats and polls went; every other event is still there.
        assert sorted(t for t in types_before if t not in ("worker.heartbeat", "work_queue.polled")) == sorted(
            r.type for r in kept if r.type not in ("worker.heartbeat", "work_queue.polled"))
        assert await store.head() == head  # the head is never pruned
        # The live views did not change, and a rebuild from the pruned log equals them.
        assert await _rows(store, "SELECT * FROM workers") == workers_before
        assert await _rows(store, "SELECT * FROM work_queues") == queues_before
    verification = await verify(store_url)
    assert verification.equal, [t for t in verification.tables if not t.equal]

    async with open_store(store_url, projections=inline_projections()) as store:
        # The pruned streams go on at their next version, and the log at the next position.
        version = await store.stream_version(streams.worker(pool.id, "w2"))
        await workers.heartbeat(store, "p", "w2", 30, clock=clock)
        assert await store.stream_version(streams.worker(pool.id, "w2")) == version + 1
        assert await store.head() == head + 1
        again = await apply_retention(store, clock(), logs_max_age=DAY / 2, heartbeats_max_age=DAY / 2)
        # w2's old last heartbeat is no longer its last: it goes now, and nothing else.
        assert (again.events, again.logs) == (1, 0)


async def test_the_head_and_a_streams_last_event_are_never_deleted(store_url) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        await _busy_pool(store, clock)
        head = await store.head()
        with pytest.raises(UnsafePrune, match="head of the log"):
            await prune_events(store, [head])
        first = [r async for r in store.read_all(limit=1)][0]  # on the "work-pools" stream
        last_of_stream = max([r async for r in store.read_all() if r.stream_id == first.stream_id and r.position < head],
                             key=lambda r: r.version)
        with pytest.raises(UnsafePrune, match="last event of stream"):
            await prune_events(store, [last_of_stream.position])
        assert await store.head() == head


async def test_the_retention_service_keeps_everything_a_kind_has_no_maximum_age_for(store_url) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        await create_logs(store, [LogLine(name="x", level=20, message="old", timestamp=NOW)], clock=clock)
        await _busy_pool(store, clock)
        count = len([r async for r in store.read_all()])
        service = retention_service(store, logs_max_age=None, heartbeats_max_age=None)
        assert service.name == "retention" and service.singleton
        pruned = await service.step(clock() + timedelta(days=365))
        assert (pruned.events, pruned.logs) == (0, 0)
        assert len([r async for r in store.read_all()]) == count


async def test_readers_bound_by_position_across_the_gaps_pruning_leaves(store_url) -> None:
    """A catch-up to position P stops at P even when pruning left fewer than P events before it
    (a read bounded by a count would run past P), and a subscription passes the gaps."""
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        await _busy_pool(store, clock)
        await apply_retention(store, clock(), logs_max_age=None, heartbeats_max_age=DAY / 2)
        positions = [r.position async for r in store.read_all()]
        gap = next(p for p, q in zip(positions, positions[1:]) if q > p + 1)
        upto = positions[-2]
        assert len(positions) - 2 < upto  # gaps: fewer events than positions below upto
        assert await catch_up(store, EventFeedProjection(store), upto=upto) == upto
        followed = []
        async for record in store.subscribe(after=gap - 1):
            followed.append(record.position)
            if record.position == positions[-1]:
                break
        assert followed == [p for p in positions if p >= gap]
