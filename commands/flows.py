"""Flow commands: register (idempotently, by name), update tags and labels, delete with runs.

A flow's id is derived from its name, so concurrent registrations of one name meet on one
stream and the executor makes one of them the creation; the others answer with it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections import flows as reads
from runlog.projections.cache import ViewCache
from runlog.projections.flows import FlowView, evolve_flow
from runlog.schema import events as catalogue
from runlog.schema import streams

from . import flow_runs
from .clock import Clock, system_clock
from .entities import EntityStream
from .executor import Decided, Versioned

FLOW_NAMESPACE = uuid.UUID("4b1c5d0e-7a5f-4a53-9b1e-72756e6c6f67")


def flow_id_for(name: str) -> UUID:
    """Flows are keyed by name: the id is derived from it, so two concurrent registrations of
    one name meet on one stream and the loser of the race reads the winner's flow."""
    return uuid.uuid5(FLOW_NAMESPACE, name)

FLOWS = EntityStream(streams.flow, reads.get, evolve_flow, versioned=True)


async def register(
    store: EventStore, name: str, tags: list[str] | None = None, labels: dict[str, Any] | None = None, *,
    clock: Clock = system_clock,
) -> tuple[FlowView, bool]:
    """The new flow and True, or the one registered under that name and False."""
    flow_id = flow_id_for(name)
    tags, labels = tags or [], labels or {}

    def decide(flow: Versioned[FlowView], now: datetime) -> Decided[bool]:
        if flow.view is not None:
            return Decided((), False)
        return Decided([catalogue.FlowCreated(flow_id=flow_id, name=name, tags=tags, labels=labels, created=now)], True)

    outcome = await FLOWS.execute(store, flow_id, decide, clock=clock)
    assert outcome.view is not None and outcome.view.view is not None
    return outcome.view.view, outcome.result


async def update(
    store: EventStore, flow_id: UUID, changes: dict[str, Any], *, cache: ViewCache | None = None,
    clock: Clock = system_clock,
) -> bool:
    """Replace the flow's tags or labels (the fields in ``changes``); False when it does not exist.
    (``cache`` is taken as every entity command takes it; a flow's view is not cached.)"""

    def changed(_flow: FlowView, now: datetime) -> list[catalogue.Event]:
        return [catalogue.FlowUpdated(flow_id=flow_id, changes=changes, updated=now)] if changes else []

    return await FLOWS.if_exists(store, flow_id, changed, clock=clock)


async def delete(
    store: EventStore, flow_id: UUID, *, cache: ViewCache | None = None, clock: Clock = system_clock
) -> bool:
    """Delete the flow after its runs (Prefect's foreign keys cascade); False when it does not exist."""
    if await reads.get(store, flow_id) is None:
        return False
    # The runs go first, so none is ever left without its flow.
    await flow_runs.delete_runs_of_flow(store, flow_id, cache=cache)
    return await FLOWS.delete(store, flow_id, catalogue.FlowDeleted(flow_id=flow_id), clock=clock)


__all__ = ["delete", "flow_id_for", "register", "update"]
