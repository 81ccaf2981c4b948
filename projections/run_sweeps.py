"""The reads of the runs tables that the server's time-based services sweep: which runs are late,
which pauses have expired, which runs are Cancelling, which subflows and task runs belong to a
cancelled run. Each returns a bounded batch (Prefect's batch sizes); the services decide every
change through the orchestration rules, so a row that changed since the read is decided anew.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from runlog.eventstore import EventStore

from .runs import FlowRunView
from .runs_writer import decode_flow_run
from .tables import from_us, us

LATE_BATCH = 400
"""Prefect's MarkLateRuns batch size."""
SWEEP_BATCH = 200
"""Prefect's batch size for paused, cancelling, cancelled and subflow runs."""
CHILD_TASK_RUN_BATCH = 100
"""Prefect cancels at most this many task runs of one cancelled flow run per round."""

_NON_TERMINAL = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")
_NON_TERMINAL_IN = "(" + ", ".join(f"'{t}'" for t in _NON_TERMINAL) + ")"

# Only the run still named "Scheduled": AwaitingRetry, AwaitingConcurrencySlot, Resuming and an
# already Late run are never marked (Prefect's MarkLateRuns query).
SQL_LATE = (
    "SELECT id, next_scheduled_start_time FROM flow_runs WHERE state_type = 'SCHEDULED' "
    "AND state_name = 'Scheduled' AND next_scheduled_start_time <= ? ORDER BY next_scheduled_start_time, id LIMIT ?"
)
SQL_IN_STATE_AFTER = "SELECT view FROM flow_runs WHERE state_type = ? AND id > ? ORDER BY id LIMIT ?"
SQL_CANCELLED_SINCE = (
    "SELECT id FROM flow_runs WHERE state_type = 'CANCELLED' AND end_time >= ? AND id > ? ORDER BY id LIMIT ?"
)
SQL_OPEN_TASK_RUNS = (
    f"SELECT id FROM task_runs WHERE flow_run_id = ? AND state_type IN {_NON_TERMINAL_IN} ORDER BY id LIMIT ?"
)
# A subflow is linked to the run that contains it through its parent task run. As Prefect does,
# a subflow whose containing run no longer exists is cancelled too; one whose parent task run is
# gone is left alone.
SQL_SUBFLOWS_OF_CANCELLED = (
    "SELECT f.view FROM flow_runs f JOIN task_runs t ON t.id = f.parent_task_run_id "
    "LEFT JOIN flow_runs p ON p.id = t.flow_run_id "
    f"WHERE f.parent_task_run_id IS NOT NULL AND f.state_type IN {_NON_TERMINAL_IN} "
    "AND t.flow_run_id IS NOT NULL AND (p.id IS NULL OR p.state_type = 'CANCELLED') AND f.id > ? "
    "ORDER BY f.id LIMIT ?"
)

# The scheduler's runs: Scheduled runs of deployments from a time on (the auto-scheduled ones
# carry the key "scheduled <deployment> <schedule> <time>", which names their schedule).
SQL_SCHEDULED_OF_DEPLOYMENTS = (
    "SELECT deployment_id, idempotency_key, next_scheduled_start_time FROM flow_runs "
    "WHERE deployment_id IN ({}) AND state_type = 'SCHEDULED' AND next_scheduled_start_time >= ? "
    "AND idempotency_key LIKE 'scheduled %'"
)
SQL_SCHEDULED_OF_DEPLOYMENT = (
    "SELECT view FROM flow_runs WHERE deployment_id = ? AND state_type = 'SCHEDULED' AND id > ? ORDER BY id LIMIT ?"
)

_FIRST_ID = ""  # every id (canonical text) sorts after the empty string


async def auto_scheduled_ahead(
    store: EventStore, deployment_ids: list[UUID], since: datetime,
) -> list[tuple[UUID, str, datetime]]:
    """(deployment, idempotency key, scheduled time) of the Scheduled runs the scheduler made
    for ``deployment_ids`` that start at or after ``since``."""
    if not deployment_ids:
        return []
    sql = SQL_SCHEDULED_OF_DEPLOYMENTS.format(", ".join("?" for _ in deployment_ids))
    async with store.reading() as tx:
        rows = await tx.fetch(sql, *(str(d) for d in deployment_ids), us(since))
    return [(UUID(row[0]), row[1], from_us(row[2])) for row in rows]  # type: ignore[misc]


async def scheduled_of_deployment(store: EventStore, deployment_id: UUID, batch: int = SWEEP_BATCH) -> list[FlowRunView]:
    """Every run of the deployment whose state is of type SCHEDULED, read in batches by id."""
    found: list[FlowRunView] = []
    after = _FIRST_ID
    while True:
        async with store.reading() as tx:
            rows = await tx.fetch(SQL_SCHEDULED_OF_DEPLOYMENT, str(deployment_id), after, batch)
        views = [decode_flow_run(bytes(row[0])) for row in rows]
        found += views
        if len(views) < batch:
            return found
        after = str(views[-1].id)


async def late_candidates(store: EventStore, scheduled_before: datetime, limit: int = LATE_BATCH) -> list[UUID]:
    """Runs named "Scheduled" whose next scheduled start is at or before ``scheduled_before``."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_LATE, us(scheduled_before), limit)
    return [UUID(row[0]) for row in rows]


async def runs_in_state(store: EventStore, state_type: str, batch: int = SWEEP_BATCH) -> list[FlowRunView]:
    """Every flow run whose current state has ``state_type``, read in batches by id."""
    found: list[FlowRunView] = []
    after = _FIRST_ID
    while True:
        async with store.reading() as tx:
            rows = await tx.fetch(SQL_IN_STATE_AFTER, state_type, after, batch)
        views = [decode_flow_run(bytes(row[0])) for row in rows]
        found += views
        if len(views) < batch:
            return found
        after = str(views[-1].id)


async def cancelled_since(store: EventStore, since: datetime, batch: int = SWEEP_BATCH) -> list[UUID]:
    """Flow runs Cancelled at or after ``since`` (by end time)."""
    found: list[UUID] = []
    after = _FIRST_ID
    while True:
        async with store.reading() as tx:
            rows = await tx.fetch(SQL_CANCELLED_SINCE, us(since), after, batch)
        found += [UUID(row[0]) for row in rows]
        if len(rows) < batch:
            return found
        after = rows[-1][0]


async def open_task_runs(store: EventStore, flow_run_id: UUID, limit: int = CHILD_TASK_RUN_BATCH) -> list[UUID]:
    """Up to ``limit`` task runs of a flow run that are not in a terminal state."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_OPEN_TASK_RUNS, str(flow_run_id), limit)
    return [UUID(row[0]) for row in rows]


async def subflows_of_cancelled_runs(store: EventStore, batch: int = SWEEP_BATCH) -> list[FlowRunView]:
    """Subflow runs not yet in a terminal state whose containing flow run is Cancelled (or gone)."""
    found: list[FlowRunView] = []
    after = _FIRST_ID
    while True:
        async with store.reading() as tx:
            rows = await tx.fetch(SQL_SUBFLOWS_OF_CANCELLED, after, batch)
        views = [decode_flow_run(bytes(row[0])) for row in rows]
        found += views
        if len(views) < batch:
            return found
        after = str(views[-1].id)


__all__ = [
    "auto_scheduled_ahead", "cancelled_since", "late_candidates", "open_task_runs", "runs_in_state",
    "scheduled_of_deployment", "subflows_of_cancelled_runs",
]
