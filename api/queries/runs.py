"""Reading runs' state histories from the log; single runs are read by the runs projection
(projections/runs_writer.py), which commands share."""

from __future__ import annotations

from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.runs_writer import get_flow_run, get_task_run
from runlog.schema import events as catalogue
from runlog.schema import streams

_STATE_EVENTS = ("flow_run.state_changed", "task_run.state_changed")


async def state_history(store: EventStore, stream_id: str, upto: int | None = None) -> list[catalogue.State]:
    """Every state a run was given, oldest first, from the run's own stream (with ``upto``,
    only those recorded at or before that log position: time travel, api/at.py).

    Sorted by state timestamp, as Prefect answers: client events may arrive out of order,
    and the stream keeps arrival order.
    """
    states = []
    async for event in store.read_stream(stream_id):
        if upto is not None and event.position > upto:
            break
        if event.type in _STATE_EVENTS:
            decoded = catalogue.decode(event.data)
            states.append(decoded.state)  # type: ignore[union-attr]
    states.sort(key=lambda s: s.timestamp)
    return states


async def flow_run_states(store: EventStore, run_id: UUID, upto: int | None = None) -> list[catalogue.State]:
    return await state_history(store, streams.flow_run(run_id), upto)


async def task_run_states(store: EventStore, run_id: UUID) -> list[catalogue.State]:
    return await state_history(store, streams.task_run(run_id))


async def state_by_id(store: EventStore, state_id: UUID) -> catalogue.State | None:
    """A state by its id, which is the id of the event that recorded it."""
    event = await store.read_event(state_id)
    if event is None or event.type not in _STATE_EVENTS:
        return None
    return catalogue.decode(event.data).state  # type: ignore[union-attr]


__all__ = ["flow_run_states", "get_flow_run", "get_task_run", "state_by_id", "state_history", "task_run_states"]
