"""Listing work pools, queues and workers, and the runs a worker may take
(get_scheduled_flow_runs), from the work pools projection and the runs table. Single rows are
read by the projection (projections/work_pools.py), which commands share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore, Tx
from runlog.projections.runs import FlowRunView
from runlog.projections.runs_writer import decode_flow_run
from runlog.projections.tables import in_list, list_param, us
from runlog.projections.work_pools import (
    WorkerView, WorkPoolView, WorkQueueView, decode_pool, decode_queue, decode_worker, get_pool, get_pool_by_name,
    get_queue, get_queue_by_name, get_queues_of_pool, get_worker, resolve_queue,
)

from .filtering import (
    Cond, Criteria, Listing, Resource, Sql, any_in, at_or_after, at_or_before, combine, fetch_page, not_any_in,
    views_of,
)


def startswith(d: Sql, expr: str, values: Sequence[str] | None) -> Cond | None:
    if values is None:
        return None
    if not values:
        return ("1 = 0", ())
    escaped = [v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for v in values]
    return combine([(f"{expr} LIKE ? ESCAPE '\\'", (v,)) for v in escaped], "or_")


WORK_POOL = Resource({
    "id": Criteria("wp.id", {"any_": any_in}),
    "name": Criteria("wp.name", {"any_": any_in}),
    "type": Criteria("wp.type", {"any_": any_in}),
})
WORK_QUEUE = Resource({
    "id": Criteria("wq.id", {"any_": any_in}),
    "name": Criteria("wq.name", {"any_": any_in, "startswith_": startswith}),
})
WORKER = Resource({
    "last_heartbeat_time": Criteria("w.last_heartbeat", {"before_": at_or_before, "after_": at_or_after}),
    "status": Criteria("w.status", {"any_": any_in, "not_any_": not_any_in}),
})

WORK_POOLS = Listing(
    "work_pools wp", "wp.view", Resource({"work_pools": WORK_POOL}), {"NAME_ASC": "wp.name ASC, wp.id"},
    views_of(decode_pool),
)
WORK_QUEUES = Listing(
    "work_queues wq", "wq.view", Resource({"work_queues": WORK_QUEUE}),
    {"PRIORITY_ASC": "wq.priority ASC, wq.name, wq.id"}, views_of(decode_queue),
)


async def queues_page(
    store: EventStore, pool_id: UUID | None, queue_filter: Any, *, limit: int | None, offset: int
) -> list[WorkQueueView]:
    """The queues of a pool (of every pool when None) that ``queue_filter`` admits, by priority."""
    async with store.reading() as tx:
        cond = WORK_QUEUE.where(tx, queue_filter)
        if pool_id is not None:
            cond = combine([("wq.work_pool_id = ?", (str(pool_id),)), cond])
        rows = await fetch_page(tx, "work_queues wq", "wq.view", cond, "wq.priority ASC, wq.name, wq.id", limit, offset)
    return [decode_queue(bytes(r[0])) for r in rows]


async def workers_page(
    store: EventStore, pool_id: UUID, worker_filter: Any, *, limit: int | None, offset: int
) -> list[WorkerView]:
    """The workers of a pool that ``worker_filter`` admits, the latest heartbeat first."""
    async with store.reading() as tx:
        cond = combine([("w.work_pool_id = ?", (str(pool_id),)), WORKER.where(tx, worker_filter)])
        rows = await fetch_page(tx, "workers w", "w.view", cond, "w.last_heartbeat DESC, w.name", limit, offset)
    return [decode_worker(bytes(r[0])) for r in rows]


async def pool_names(store: EventStore, pool_ids: Sequence[UUID]) -> dict[UUID, str]:
    async with store.reading() as tx:
        rows = await tx.fetch(f"SELECT id, name FROM work_pools WHERE {in_list(tx, 'id')}", list_param(tx, [str(i) for i in pool_ids]))
    return {UUID(r[0]): r[1] for r in rows}


# -- runs ---------------------------------------------------------------------------------------

ACTIVE = "fr.state_type IN ('PENDING', 'RUNNING')"


async def _active_by_queue(tx: Tx, pool_id: UUID) -> dict[str, int]:
    """Pending and Running runs of each queue of the pool, counted on the (work_queue_id,
    state_type, ...) index of flow_runs: two short ranges per queue, whatever else it holds."""
    rows = await tx.fetch(
        "SELECT fr.work_queue_id, COUNT(*) FROM flow_runs fr "
        f"WHERE fr.work_queue_id IN (SELECT wq.id FROM work_queues wq WHERE wq.work_pool_id = ?) AND {ACTIVE} "
        "GROUP BY fr.work_queue_id", str(pool_id),
    )
    return {r[0]: int(r[1]) for r in rows}


async def active_slots(store: EventStore, pool_id: UUID) -> dict[str, int]:
    """Pending and Running runs of each queue of the pool (queue id as text -> count)."""
    async with store.reading() as tx:
        return await _active_by_queue(tx, pool_id)


async def late_runs(store: EventStore, queue_id: UUID) -> int:
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT COUNT(*) FROM flow_runs fr "
            "WHERE fr.work_queue_id = ? AND fr.state_type = 'SCHEDULED' AND fr.state_name = 'Late'", str(queue_id),
        )
    return int(rows[0][0])


def _available(limit: int | None, active: int) -> int | None:
    return None if limit is None else max(limit - active, 0)


async def scheduled_runs(
    store: EventStore, pool: WorkPoolView, queues: Sequence[WorkQueueView], *,
    before: datetime | None, after: datetime | None, limit: int,
) -> list[tuple[WorkQueueView, FlowRunView]]:
    """Prefect's get-runs-from-worker-queues: the SCHEDULED runs of the unpaused ``queues`` of an
    unpaused pool (not those retrying in process), by queue priority then scheduled time, within
    each queue's and the pool's free concurrency slots (limit minus its Pending and Running runs)
    and ``limit``."""
    if pool.is_paused:
        return []
    live = [q for q in queues if not q.is_paused]
    async with store.reading() as tx:
        active = await _active_by_queue(tx, pool.id)
        pool_free = _available(pool.concurrency_limit, sum(active.values()))
        taken: list[tuple[WorkQueueView, FlowRunView]] = []
        for queue in sorted(live, key=lambda q: (q.priority, q.name)):
            free = _available(queue.concurrency_limit, active.get(str(queue.id), 0))
            cap = min(c for c in (free, pool_free, limit) if c is not None)
            if cap <= 0:
                continue
            # one range of the flow_runs_queue_scheduled index, already in order (migration 0018)
            sql = "SELECT fr.view FROM flow_runs fr WHERE fr.work_queue_id = ? AND fr.state_type = 'SCHEDULED'"
            params: list[Any] = [str(queue.id)]
            if before is not None:
                sql += " AND fr.next_scheduled_start_time <= ?"
                params.append(us(before))
            if after is not None:
                sql += " AND fr.next_scheduled_start_time >= ?"
                params.append(us(after))
            sql += " ORDER BY fr.next_scheduled_start_time, fr.id LIMIT ?"
            # in-process retries are the engine's, not a worker's: over-read by as many as they hide
            rows = await tx.fetch(sql, *params, cap + 50)
            runs = [decode_flow_run(bytes(r[0])) for r in rows]
            runs = [r for r in runs if r.empirical_policy.get("retry_type") != "in_process"][:cap]
            taken += [(queue, run) for run in runs]
    taken.sort(key=lambda item: (item[0].priority, item[1].next_scheduled_start_time or item[1].created))
    cut = limit if pool_free is None else min(limit, pool_free)
    return taken[:cut]


__all__ = [
    "WORK_POOLS", "WORK_QUEUES", "active_slots", "get_pool", "get_pool_by_name", "get_queue", "get_queue_by_name", "get_queues_of_pool",
    "get_worker", "late_runs", "pool_names", "queues_page", "resolve_queue", "scheduled_runs", "workers_page",
]
