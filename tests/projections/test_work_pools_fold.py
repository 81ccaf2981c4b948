"""The work pools folds, pure: events in, views out, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from runlog.projections.work_pools import evolve_pool, evolve_queue, evolve_worker
from runlog.projections.work_pool_events import pool_status_event
from runlog.schema import events as catalogue

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
POOL, QUEUE = uuid.uuid4(), uuid.uuid4()


def created(**fields) -> catalogue.WorkPoolCreated:
    return catalogue.WorkPoolCreated(work_pool_id=POOL, name="p", type="process", default_queue_id=QUEUE, created=T0, **fields)


def test_a_pool_starts_not_ready_or_paused_and_takes_updates_and_statuses() -> None:
    assert evolve_pool(None, created()).status == "NOT_READY"
    assert evolve_pool(None, created(is_paused=True)).status == "PAUSED"
    pool = evolve_pool(None, created())
    later = T0 + timedelta(seconds=5)
    pool = evolve_pool(pool, catalogue.WorkPoolUpdated(
        work_pool_id=POOL, changes={"description": "d", "is_paused": None, "unknown": 1}, updated=later))
    assert pool.description == "d" and pool.is_paused is False and pool.updated == later
    status_id = uuid.uuid4()
    pool = evolve_pool(pool, catalogue.WorkPoolStatusChanged(work_pool_id=POOL, status="READY", changed=later), status_id)
    assert (pool.status, pool.status_changed, pool.status_event_id) == ("READY", later, status_id)
    assert evolve_pool(pool, catalogue.WorkPoolDeleted(work_pool_id=POOL)) is None
    assert evolve_pool(None, catalogue.WorkPoolUpdated(work_pool_id=POOL, changes={}, updated=later)) is None


def test_a_queue_takes_polls_renames_and_statuses() -> None:
    queue = evolve_queue(None, catalogue.WorkQueueCreated(work_queue_id=QUEUE, work_pool_id=POOL, name="q", created=T0))
    assert (queue.priority, queue.status, queue.last_polled) == (1, "NOT_READY", None)
    polled = T0 + timedelta(seconds=3)
    queue = evolve_queue(queue, catalogue.WorkQueuesPolled(work_pool_id=POOL, work_queue_ids=[QUEUE], polled=polled))
    assert queue.last_polled == polled
    queue = evolve_queue(queue, catalogue.WorkQueueUpdated(
        work_queue_id=QUEUE, changes={"name": "r", "priority": None, "last_polled": "2026-03-01T13:00:00+00:00"}, updated=polled))
    assert queue.name == "r" and queue.priority == 1 and queue.last_polled == datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert evolve_queue(queue, catalogue.WorkQueueStatusChanged(work_queue_id=QUEUE, status="READY", changed=polled)).status == "READY"


def test_a_worker_is_made_by_its_first_heartbeat_and_moved_by_later_ones() -> None:
    wid = uuid.uuid4()
    beat = catalogue.WorkerHeartbeat(worker_id=wid, work_pool_id=POOL, name="w", heartbeat_interval_seconds=5, occurred=T0)
    worker = evolve_worker(None, beat)
    assert (worker.created, worker.last_heartbeat_time, worker.status) == (T0, T0, "OFFLINE")
    worker = evolve_worker(worker, catalogue.WorkerStatusChanged(worker_id=wid, work_pool_id=POOL, name="w", status="ONLINE", changed=T0))
    later = T0 + timedelta(seconds=5)
    worker = evolve_worker(worker, catalogue.WorkerHeartbeat(worker_id=wid, work_pool_id=POOL, name="w", occurred=later))
    assert (worker.created, worker.last_heartbeat_time, worker.status, worker.heartbeat_interval_seconds) == (T0, later, "ONLINE", None)
    assert evolve_worker(worker, catalogue.WorkerDeleted(worker_id=wid, work_pool_id=POOL, name="w")) is None


def test_a_pool_status_event_follows_the_previous_one_within_ten_minutes() -> None:
    first_id, second_id = uuid.uuid4(), uuid.uuid4()
    ready = evolve_pool(evolve_pool(None, created()), catalogue.WorkPoolStatusChanged(work_pool_id=POOL, status="READY", changed=T0), first_id)
    for gap, follows in ((timedelta(minutes=9), first_id), (timedelta(minutes=10), None)):
        down = evolve_pool(ready, catalogue.WorkPoolStatusChanged(work_pool_id=POOL, status="NOT_READY", changed=T0 + gap), second_id)
        event = pool_status_event(ready, down, second_id, T0 + gap)
        assert event.event == "prefect.work-pool.not-ready" and event.id == second_id and event.follows == follows


def _row(position: int, stream_id: str, event):  # type: ignore[no-untyped-def]
    from uuid import uuid4

    from runlog.eventstore import NewEvent
    from runlog.eventstore.planning import Row

    return Row(position, stream_id, 1, NewEvent(type=event.__struct_config__.tag, data=catalogue.encode(event), id=uuid4()))


def test_a_batch_of_run_events_is_prepared_without_reading_so_postgres_keeps_its_one_statement_path() -> None:
    """A run's queue is a column of flow_runs (the runs projection's): the work pools
    projection has nothing to write for runs' events, and asks to read only for a batch with
    pool, queue, worker or poll events."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from runlog.projections.work_pools import WorkPoolsProjection
    from runlog.schema import streams

    run, loose, queue, pool = uuid4(), uuid4(), uuid4(), uuid4()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    created = catalogue.FlowRunCreated(flow_run_id=run, flow_id=uuid4(), name="r", created=now,
                                       work_queue_id=queue, work_pool_id=pool)
    unplaced = catalogue.FlowRunCreated(flow_run_id=loose, flow_id=uuid4(), name="l", created=now)
    deleted = catalogue.FlowRunDeleted(flow_run_id=uuid4())
    projection = WorkPoolsProjection()
    prepared = projection.prepare([
        _row(1, streams.flow_run(run), created), _row(2, streams.flow_run(loose), unplaced),
        _row(3, streams.flow_run(deleted.flow_run_id), deleted),
    ])
    assert prepared is not None and list(prepared.tables()) == []

    pool_created = catalogue.WorkPoolCreated(work_pool_id=pool, name="p", type="process", default_queue_id=queue,
                                             created=now)
    assert projection.prepare([_row(1, streams.flow_run(run), created), _row(2, streams.WORK_POOLS, pool_created)]) is None


def test_a_pool_update_reports_only_the_fields_prefect_reports_that_changed() -> None:
    from runlog.projections.work_pool_events import lifecycle_events

    pool = evolve_pool(None, created(description="a"))
    changes = {"description": "a", "is_paused": True, "storage_configuration": {"default_result_storage_block_id": "b"}}
    update = catalogue.WorkPoolUpdated(work_pool_id=POOL, changes=changes, updated=T0)
    after = evolve_pool(pool, update)
    [event] = lifecycle_events(update, pool, after, uuid.uuid4(), T0, T0, {POOL: after}, [])
    # description unchanged, is_paused shows as a status event: only the storage configuration,
    # shown with every key of Prefect's WorkPoolStorageConfiguration.
    assert event.event == "prefect.work-pool.updated"
    assert event.payload == {"updated_fields": ["storage_configuration"], "updates": {"storage_configuration": {
        "from": {"bundle_upload_step": None, "bundle_execution_step": None, "default_result_storage_block_id": None},
        "to": {"bundle_upload_step": None, "bundle_execution_step": None, "default_result_storage_block_id": "b"},
    }}}
    same = catalogue.WorkPoolUpdated(work_pool_id=POOL, changes={"description": "a"}, updated=T0)
    assert lifecycle_events(same, pool, evolve_pool(pool, same), uuid.uuid4(), T0, T0, {POOL: pool}, []) == []


def test_a_queue_moved_to_make_room_shows_no_update_and_old_deletions_still_decode() -> None:
    from runlog.projections.work_pool_events import lifecycle_events

    queue = evolve_queue(None, catalogue.WorkQueueCreated(work_queue_id=QUEUE, work_pool_id=POOL, name="q", created=T0))
    moved = catalogue.WorkQueueUpdated(work_queue_id=QUEUE, changes={"priority": 2}, updated=T0, moved=True)
    assert lifecycle_events(moved, queue, evolve_queue(queue, moved), uuid.uuid4(), T0, T0, {}, []) == []
    # Records written before deletions carried their time decode, with no time.
    old = catalogue.decode(f'{{"kind": "work_queue.deleted", "work_queue_id": "{QUEUE}"}}'.encode())
    assert old.deleted is None
