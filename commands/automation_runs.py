"""Recording what an automation's firing did: its Prefect events, and the claim that makes an
action that is not a delivery run at most once.

The events are PrefectEventReceived with the ids projections/automation_events.py derives, so
recording one again (a page matched again after a restart) writes nothing. An action carried
out by the notifier itself (a flow run's state change) is claimed first: its
``prefect.automation.action.triggered`` is appended to the action's own stream with "no stream
yet" expected, under a fresh record id so that a second claim conflicts instead of passing as
an idempotent retry. Only the claimant acts, so a firing matched twice never changes a run
twice; a crash between the claim and the state change loses that one action (at most once, as
Prefect's own actions service, which forgets the actions it ran when it restarts).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from runlog.eventstore import ConcurrencyError, EventStore
from runlog.schema import events as catalogue
from runlog.schema import streams

from .client_events import resource_stream
from .clock import Clock, system_clock
from .executor import Command, Decided, Executor, no_view, record


def _stream_of(event: catalogue.PrefectEventReceived, stream: str | None) -> str:
    assert event.event_id is not None, "automation events carry their derived id"
    return stream or resource_stream(event.resource.get("prefect.resource.id"))


async def record_event(store: EventStore, event: catalogue.PrefectEventReceived, *, stream: str | None = None) -> None:
    """Append an automation event under its own id (a no-op when it is there already), on
    ``stream`` or its resource's stream."""
    await record(store, _stream_of(event, stream), [event], ids=[event.event_id])  # type: ignore[list-item]


def record_command(event: catalogue.PrefectEventReceived, *, stream: str | None = None) -> Command[None, None]:
    """``record_event`` as a command, to be appended with others (Executor.execute_together)."""
    target = _stream_of(event, stream)

    def decide(_view: None, _now: datetime) -> Decided[None]:
        return Decided([event], ids=[event.event_id])  # type: ignore[list-item]

    return Command(target, load=no_view, decide=decide, evolve=lambda view, _event, _version: view, any_version=True)


async def claim(
    store: EventStore, invocation: UUID, triggered: catalogue.PrefectEventReceived, *, clock: Clock = system_clock,
) -> bool:
    """Record the action's triggered event as its claim: True when this call made it, False
    when the action was claimed before (it must not be carried out again)."""

    def decide(_view: None, _now: datetime) -> Decided[None]:
        return Decided([triggered], ids=[uuid.uuid4()])

    try:
        await Executor(store, clock=clock).execute(
            streams.triggered_action(invocation), load=no_view, decide=decide,
            evolve=lambda view, _event, _version: view, retry_conflicts=False,
        )
    except ConcurrencyError:
        return False
    return True


__all__ = ["claim", "record_command", "record_event"]
