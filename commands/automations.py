"""Creating, replacing, enabling, muting and deleting automations: one stream per automation.

Prefect lets two automations share a name, so no rule spans automations and each one's
writes are decided on its own stream (automation-<id>), like artifacts. Definitions arrive
checked (schema/automations.py structs: only what runlog can carry out); as in Prefect, the
trigger gets a new id on every create and replace.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore
from runlog.projections.automations import AutomationView, by_id, evolve_automation, stream_of
from runlog.schema import events as catalogue
from runlog.schema.automations import AutomationDefinition

from .clock import Clock, system_clock
from .executor import Decided, Executor, Versioned, load_versioned, no_view, versioned


def _stored(definition: AutomationDefinition) -> dict:
    """The definition as the event stores it, with the trigger's new id."""
    fresh = msgspec.structs.replace(definition, trigger=msgspec.structs.replace(definition.trigger, id=uuid.uuid4()))
    return msgspec.to_builtins(fresh)


async def create(
    store: EventStore, definition: AutomationDefinition, *, owner_resource: str | None = None,
    clock: Clock = system_clock,
) -> AutomationView:
    automation_id = uuid.uuid4()

    def decide(_view: None, now: datetime) -> Decided[None]:
        return Decided([catalogue.AutomationCreated(
            automation_id=automation_id, definition=_stored(definition), owner_resource=owner_resource, created=now,
        )])

    outcome = await Executor(store, clock=clock).execute(
        stream_of(automation_id), load=no_view, decide=decide,
        evolve=lambda view, event, _v: evolve_automation(view, event),
        retry_conflicts=False,  # a new id: its stream cannot exist
    )
    assert outcome.view is not None
    return outcome.view


Change = Callable[[AutomationView, datetime], catalogue.Event]


async def _change(store: EventStore, automation_id: UUID, change: Change, clock: Clock) -> bool:
    """Whether the automation exists; when it does, ``change`` gives the event to append."""
    stream = stream_of(automation_id)

    async def load() -> AutomationView | None:
        async with store.reading() as tx:
            return await by_id(tx, automation_id)

    def decide(automation: Versioned[AutomationView], now: datetime) -> Decided[bool]:
        if automation.view is None:
            return Decided((), False)
        return Decided([change(automation.view, now)], True)

    outcome = await Executor(store, clock=clock).execute(
        stream, load=lambda: load_versioned(store, stream, load), decide=decide, evolve=versioned(evolve_automation),
    )
    return outcome.result


async def replace(
    store: EventStore, automation_id: UUID, definition: AutomationDefinition, *, clock: Clock = system_clock
) -> bool:
    """PUT: the whole definition replaced. Whether the automation exists."""
    stored = _stored(definition)
    return await _change(store, automation_id, lambda view, now: catalogue.AutomationUpdated(
        automation_id=view.id, definition=stored, updated=now,
    ), clock)


async def set_enabled(store: EventStore, automation_id: UUID, enabled: bool, *, clock: Clock = system_clock) -> bool:
    return await _change(store, automation_id, lambda view, now: catalogue.AutomationEnabledChanged(
        automation_id=view.id, enabled=enabled, updated=now,
    ), clock)


async def mute(
    store: EventStore, automation_id: UUID, until: datetime | None, *, clock: Clock = system_clock
) -> bool:
    """No action of the automation fires before ``until`` (None lifts the mute)."""
    return await _change(store, automation_id, lambda view, now: catalogue.AutomationMuted(
        automation_id=view.id, until=until, updated=now,
    ), clock)


async def delete(store: EventStore, automation_id: UUID, *, clock: Clock = system_clock) -> bool:
    return await _change(
        store, automation_id, lambda view, _now: catalogue.AutomationDeleted(automation_id=view.id), clock
    )


__all__ = ["create", "delete", "mute", "replace", "set_enabled"]
