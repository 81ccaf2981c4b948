"""What each event of a stream changed: the stream's view before and after it, field by field.

``runlog events ls --stream S --diff`` folds the stream through the inline projections' own
evolve functions (runs, concurrency, work pools and workers), so each event is shown by its
effect on the view that readers see. A stream of another kind has no view here; its events
are shown by their own fields (a diff against nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from runlog.schema import events as catalogue
from runlog.schema import streams

from .concurrency import evolve as evolve_limit
from .runs import evolve_flow_run, evolve_task_run
from .work_pools import evolve_pool, evolve_queue, evolve_worker

Fold = Callable[[Any, Any, int], Any]
"""(view before, event, the event's stream version) -> view after (None: no such entity)."""

MISSING = object()
"""A field the view did not have (before it existed, or after it went)."""


def _work_pools(views: dict[str, Any] | None, event: Any, _version: int) -> dict[str, Any]:
    """The "work-pools" stream's view: every pool and queue on it, by "pool <id>" / "queue <id>"."""
    views = dict(views or {})
    if isinstance(event, catalogue.WorkPoolCreated | catalogue.WorkPoolUpdated | catalogue.WorkPoolStatusChanged | catalogue.WorkPoolDeleted):
        key = f"pool {event.work_pool_id}"
        views[key] = evolve_pool(views.get(key), event)
    elif isinstance(event, catalogue.WorkQueueCreated | catalogue.WorkQueueUpdated | catalogue.WorkQueueStatusChanged | catalogue.WorkQueueDeleted):
        key = f"queue {event.work_queue_id}"
        views[key] = evolve_queue(views.get(key), event)
    return {key: view for key, view in views.items() if view is not None}


def fold_for(stream_id: str) -> Fold | None:
    """The fold of a stream's view, or None for a stream this module has no view of."""
    if stream_id.startswith(streams.FLOW_RUN):
        return evolve_flow_run
    if stream_id.startswith(streams.TASK_RUN):
        return evolve_task_run
    if stream_id.startswith(streams.CONCURRENCY_LIMIT):
        return evolve_limit
    if stream_id.startswith(streams.WORKER):
        return lambda view, event, _version: evolve_worker(view, event)
    if stream_id == streams.WORK_POOLS:
        return _work_pools
    return None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A view (or event) as dotted paths to plain values: nested dicts are walked, lists kept whole."""
    plain = msgspec.to_builtins(value) if not isinstance(value, dict) else {k: msgspec.to_builtins(v) for k, v in value.items()}
    out: dict[str, Any] = {}
    if isinstance(plain, dict):
        for key, item in plain.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, dict) and item:
                out.update(flatten(item, path))
            else:
                out[path] = item
    else:
        out[prefix or "value"] = plain
    return out


def diff(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(path, old, new) for every field that differs, in path order; MISSING where a side lacks it."""
    old = flatten(before) if before is not None else {}
    new = flatten(after) if after is not None else {}
    return [
        (path, old.get(path, MISSING), new.get(path, MISSING))
        for path in sorted(old.keys() | new.keys())
        if old.get(path, MISSING) != new.get(path, MISSING)
    ]


class StreamDiffer:
    """Folds one stream's events in order and says what each changed."""

    def __init__(self, stream_id: str) -> None:
        self.fold = fold_for(stream_id)
        self.view: Any = None

    def step(self, data: bytes, version: int) -> list[tuple[str, Any, Any]]:
        try:
            event = catalogue.decode(data)
        except msgspec.DecodeError:
            return [("(payload)", MISSING, "not readable by this runlog")]
        if self.fold is None:
            return diff(None, {k: v for k, v in flatten(event).items()})
        before, self.view = self.view, self.fold(self.view, event, version)
        changes = diff(before, self.view)
        # version moves with every event of a run's or limit's stream: it says nothing new.
        return [change for change in changes if change[0] != "version"]


__all__ = ["MISSING", "StreamDiffer", "diff", "flatten", "fold_for"]
