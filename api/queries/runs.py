"""Reading single flow runs and task runs, and their state histories, from the runs projection."""

from __future__ import annotations

from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.runs import FlowRunView, TaskRunView
from runlog.projections.runs_writer import FLOW_RUN_STREAM, TASK_RUN_STREAM, decode_flow_run, decode_task_run
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
    return await state_history(store, FLOW_RUN_STREAM + str(run_id))


async def task_run_states(store: EventStore, run_id: UUID) -> list[catalogue.State]:
    return await state_history(store, TASK_RUN_STREAM + str(run_id))


async def state_by_id(store: EventStore, state_id: UUID) -> catalogue.State | None:
    """A state by its id, which is the id of the event that recorded it."""
    event = await store.read_event(state_id)
    if event is None or event.type not in _STATE_EVENTS:
        return None
    return catalogue.decode(event.data).state  # type: ignore[union-attr]
