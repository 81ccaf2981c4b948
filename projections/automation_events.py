"""Prefect's automation events, as Prefect 3.8.8 shapes them (prefect/server/events/triggers.py
and actions.py): ``prefect.automation.triggered`` when a trigger fires, and per action
``prefect.automation.action.triggered`` then ``.executed`` or ``.failed``.

Pure builders and the ids they take. The notifier records the triggered events (and the
outcome of the actions it carries out itself) as PrefectEventReceived, so the feed shows them
as it shows a client's events; the outcome of an action carried out by a delivery is derived
from the delivery's own sent or dead-lettered record (projections/prefect_events.py), so it is
never stored twice. Ids are uuid5 of what the event answers, so a firing matched again after a
restart records nothing new. (Prefect's are uuid7s: time-ordered, but random; nothing reads
their order.) Prefect emits ``prefect.automation.resolved`` only for compound and sequence
triggers, which runlog refuses, so it has no builder here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import events as catalogue

NAMESPACE = uuid.UUID("a1c4e7f0-2b3d-4e5f-8a9b-6175746f6d61")
"""Namespace of the automation events' ids (uuid5): fixed forever."""
TIGHT_TIMING = timedelta(minutes=5)
"""Prefect links an action's event to its triggering event (``follows``) only when this close."""

TRIGGERED = "prefect.automation.triggered"
ACTION_TRIGGERED = "prefect.automation.action.triggered"
ACTION_EXECUTED = "prefect.automation.action.executed"
ACTION_FAILED = "prefect.automation.action.failed"


def event_id(key: UUID, what: str) -> UUID:
    """The id of the event ``what`` ("triggered", "executed", ...) of a firing or an invocation."""
    return uuid.uuid5(NAMESPACE, f"{key}/{what}")


def automation_resource(automation_id: UUID, name: str, posture: str, *, trigger_type: str | None = None) -> dict[str, str]:
    """The automation as the resource of its events; the action events also name the trigger type."""
    resource = {"prefect.resource.id": f"prefect.automation.{automation_id}", "prefect.resource.name": name}
    if trigger_type is not None:
        resource["prefect.trigger-type"] = trigger_type
    resource["prefect.posture"] = posture
    return resource


def event_resource(event_id_: UUID, role: str) -> dict[str, str]:
    return {"prefect.resource.id": f"prefect.event.{event_id_}", "prefect.resource.role": role}


def automation_triggered(
    *, automation_id: UUID, name: str, posture: str, labels: Mapping[str, str], triggering: Any | None,
    at: datetime, firing_key: UUID,
) -> catalogue.PrefectEventReceived:
    """``prefect.automation.triggered``: ``triggering`` is the event that fired it (a struct with
    Prefect's event fields), None for a proactive trigger whose window saw none."""
    return catalogue.PrefectEventReceived(
        occurred=at, event=TRIGGERED,
        resource=automation_resource(automation_id, name, posture),
        related=[event_resource(triggering.id, "triggering-event")] if triggering is not None else [],
        payload={
            "triggering_labels": dict(labels),
            "triggering_event": msgspec.to_builtins(triggering) if triggering is not None else None,
        },
        event_id=event_id(firing_key, "triggered"),
    )


def action_triggered(
    *, resource: dict[str, str], related: Sequence[dict[str, str]], action_index: int, action_type: str,
    invocation: UUID, at: datetime, triggered_event_id: UUID, triggering: Any | None,
) -> catalogue.PrefectEventReceived:
    """``prefect.automation.action.triggered`` of one action: ``related`` holds what the action
    found (its target run, its block), to which the automation's triggered event and the
    triggering event are added, as Prefect adds them."""
    follows = None
    if triggering is not None and abs(at - triggering.occurred) < TIGHT_TIMING:
        follows = triggering.id
    linked = [*related, event_resource(triggered_event_id, "automation-triggered-event")]
    if triggering is not None:
        linked.append(event_resource(triggering.id, "triggering-event"))
    return catalogue.PrefectEventReceived(
        occurred=at, event=ACTION_TRIGGERED, resource=resource, related=linked,
        payload={"action_index": action_index, "action_type": action_type, "invocation": str(invocation)},
        follows=follows, event_id=event_id(invocation, "triggered"),
    )


def action_finished(
    triggered: catalogue.PrefectEventReceived, *, at: datetime, reason: str | None = None,
    details: Mapping[str, Any] | None = None, key: UUID | None = None,
) -> catalogue.PrefectEventReceived:
    """``.executed`` (no ``reason``) or ``.failed`` after ``triggered``: the same resource and
    related resources, its payload with the reason and what the action reported. ``key`` makes
    the id (an outcome that may happen more than once, a replayed delivery's, gives its own)."""
    assert triggered.event_id is not None
    failed = reason is not None
    payload = {**triggered.payload, **({"reason": reason} if failed else {}), **(details or {})}
    outcome = "failed" if failed else "executed"
    return catalogue.PrefectEventReceived(
        occurred=at, event=ACTION_FAILED if failed else ACTION_EXECUTED, resource=triggered.resource,
        related=triggered.related, payload=payload, follows=triggered.event_id,
        event_id=event_id(key or UUID(triggered.payload["invocation"]), outcome),
    )


__all__ = [
    "ACTION_EXECUTED", "ACTION_FAILED", "ACTION_TRIGGERED", "NAMESPACE", "TRIGGERED", "action_finished",
    "action_triggered", "automation_resource", "automation_triggered", "event_id", "event_resource",
]
