"""Prefect's client event (POST /events, the /events/in websocket): the shape is the command's
input (commands/client_events.py), checked here as the API receives it.

msgspec checks the types; ``check_event`` adds the rules Prefect's pydantic validators add
(a resource needs a non-empty ``prefect.resource.id``, a related resource a role, label and
name limits). Unknown fields are ignored, as Prefect's event models ignore them.
"""

from __future__ import annotations

from datetime import UTC

import msgspec

from runlog.commands.client_events import Event

MAX_LABELS_PER_RESOURCE = 500
MAX_RELATED_RESOURCES = 100
"""Prefect's defaults (server.events.maximum_*)."""

__all__ = ["Event", "check_event"]


def check_event(event: Event, path: str = "$") -> Event:
    """Apply Prefect's validators; raise msgspec.ValidationError naming the field at fault.

    Returns the event with a naive ``occurred`` read as UTC, as Prefect reads it.
    """
    _check_resource(event.resource, f"{path}.resource", role=False)
    if len(event.related) > MAX_RELATED_RESOURCES:
        raise _invalid(f"The maximum number of related resources is {MAX_RELATED_RESOURCES}", f"{path}.related")
    for index, related in enumerate(event.related):
        _check_resource(related, f"{path}.related[{index}]", role=True)
    if event.occurred.tzinfo is None:
        event = msgspec.structs.replace(event, occurred=event.occurred.replace(tzinfo=UTC))
    return event


def _check_resource(labels: dict[str, str], path: str, *, role: bool) -> None:
    if len(labels) > MAX_LABELS_PER_RESOURCE:
        raise _invalid(f"The maximum number of labels per resource is {MAX_LABELS_PER_RESOURCE}", path)
    if not labels.get("prefect.resource.id"):
        raise _invalid("Resources must include a non-empty prefect.resource.id label", path)
    if role and not labels.get("prefect.resource.role"):
        raise _invalid("Related Resources must include a non-empty prefect.resource.role label", path)


def _invalid(message: str, path: str) -> msgspec.ValidationError:
    # The same "message - at `path`" shape msgspec gives its own errors.
    return msgspec.ValidationError(f"{message} - at `{path}`")
