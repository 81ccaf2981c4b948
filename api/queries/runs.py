"""Reading single flow runs and task runs, and their state histories, from the runs projection."""

from __future__ import annotations

from uuid import UUID

from runlog.schema import streams
from runlog.eventstore import EventStore
from runlog.projections.runs import FlowRunView, TaskRunView
from runlog.projections.runs_writer import decode_flow_run, decode_task_run
from runlog.schema import events as catalogue

SQL_FLOW_RUN = "SELECT view FROM flow_runs WHERE id = ?"
SQL_TASK_RUN = "SELECT view FROM task_runs WHERE id = ?"

_STATE_EVENTS = ("flow_run.state_changed", "task_run.state_changed")


async def get_flow_run(store: EventStore, run_id: UUID) -> FlowRunView | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_FLOW_RUN, str(run_id))
    return decode_flow_run(bytes(rows[0][0])) if rows else None


async def get_task_run(store: EventStore, run_id: UUID) -> TaskRunView | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_TASK_RUN, str(run_id))
    return decode_task_run(bytes(rows[0][0])) if rows else None


async def state_history(store: EventStore, stream_id: str) -> list[catalogue.State]:
    """Every state a run was given, oldest first, from the run's own stream.

    Sorted by state timestamp, as Prefect answers: client events may arrive out of order,
    and the stream keeps arrival order.
    """
    states = []
    async for event in store.read_stream(stream_id):
        if event.type in _STATE_EVENTS:
            decoded = catalogue.decode(event.data)
            states.append(decoded.state)  # type: ignore[union-attr]
    states.sort(key=lambda s: s.timestamp)
    return states


async def flow_run_states(store: EventStore, run_id: UUID) -> list[catalogue.State]:
    return await state_history(store, streams.flow_run(run_id))


async def task_run_states(store: EventStore, run_id: UUID) -> list[catalogue.State]:
    return await state_history(store, streams.task_run(run_id))


async def state_by_id(store: EventStore, state_id: UUID) -> catalogue.State | None:
    """A state by its id, which is the id of the event that recorded it."""
    event = await store.read_event(state_id)
    if event is None or event.type not in _STATE_EVENTS:
        return None
    return catalogue.decode(event.data).state  # type: ignore[union-attr]


# What creating a run must read, in one statement: whether the references it names exist, and
# the live run that already holds its key. A NULL parameter matches nothing.
SQL_FLOW_RUN_CREATE_READ = (
    "SELECT (SELECT 1 FROM flows WHERE id = ?), (SELECT 1 FROM task_runs WHERE id = ?), "
    "(SELECT view FROM flow_runs WHERE flow_id = ? AND idempotency_key = ?)"
)
SQL_FLOW_EXISTS = "SELECT 1 FROM flows WHERE id = ?"
SQL_TASK_RUN_CREATE_READ = "SELECT (SELECT 1 FROM flow_runs WHERE id = ?), (SELECT view FROM task_runs WHERE id = ?)"


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


async def flow_run_create_read(
    store: EventStore, flow_id: UUID, parent_task_run_id: UUID | None, idempotency_key: str | None
) -> tuple[bool, bool, FlowRunView | None]:
    """Whether the flow exists, whether the parent task run exists (True when none is named),
    and the live flow run of that flow holding ``idempotency_key``."""
    async with store.reading() as tx:
        if parent_task_run_id is None and idempotency_key is None:
            # Most creations name neither: a statement of one index probe plans several times
            # faster than the three-part one, and creating runs is on the hot path.
            rows = await tx.fetch(SQL_FLOW_EXISTS, str(flow_id))
            return bool(rows), True, None
        rows = await tx.fetch(
            SQL_FLOW_RUN_CREATE_READ, str(flow_id), _text(parent_task_run_id), str(flow_id), idempotency_key
        )
    flow, parent, view = rows[0]
    existing = decode_flow_run(bytes(view)) if view is not None else None
    return flow is not None, parent_task_run_id is None or parent is not None, existing


async def task_run_create_read(
    store: EventStore, flow_run_id: UUID | None, task_run_id: UUID
) -> tuple[bool, TaskRunView | None]:
    """Whether the flow run exists (True when none is named), and the task run with this id."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_TASK_RUN_CREATE_READ, _text(flow_run_id), str(task_run_id))
    flow_run, view = rows[0]
    existing = decode_task_run(bytes(view)) if view is not None else None
    return flow_run_id is None or flow_run is not None, existing


SQL_TASK_RUN_IDS_OF_FLOW_RUN = "SELECT id FROM task_runs WHERE flow_run_id = ?"
SQL_FLOW_RUN_IDS_OF_FLOW = "SELECT id FROM flow_runs WHERE flow_id = ?"


async def task_run_ids_of_flow_run(store: EventStore, flow_run_id: UUID) -> list[UUID]:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_TASK_RUN_IDS_OF_FLOW_RUN, str(flow_run_id))
    return [UUID(row[0]) for row in rows]


async def flow_run_ids_of_flow(store: EventStore, flow_id: UUID) -> list[UUID]:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_FLOW_RUN_IDS_OF_FLOW, str(flow_id))
    return [UUID(row[0]) for row in rows]


SQL_FLOW_RUN_EXISTS = "SELECT 1 FROM flow_runs WHERE id = ?"


async def flow_run_exists(store: EventStore, run_id: UUID) -> bool:
    async with store.reading() as tx:
        return bool(await tx.fetch(SQL_FLOW_RUN_EXISTS, str(run_id)))
