"""A run's view after several events at once: the folds of ``evolve_flow_run`` and
``evolve_task_run`` without their intermediate views, for a rebuild (and any batch holding a
run's events more than once: an import's).

Folding a run's stream one event at a time decodes every state in full (its details, data,
ids) and builds a new view for each, though the view keeps only the last state and a few
figures the others add to (start and end times, run time, run count, expected and next
scheduled start, the empirical policy). Here a state change is decoded as only those figures
(``_Change``: msgspec skips the rest of the payload), the figures are carried in locals, and
the view is built once at the end with the last state decoded in full. The result is the
view ``evolve_flow_run`` gives, field for field (tests/projections/test_runs_batch.py folds
random streams both ways); a run whose events include any other kind than its creation and
its state changes is folded event by event with ``evolve_flow_run`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from runlog.schema import events as catalogue

from .runs import FlowRunView, TaskRunView, evolve_flow_run, evolve_task_run, task_run_from_report

CREATED, STATE_CHANGED = "flow_run.created", "flow_run.state_changed"
FAST_TYPES = frozenset({CREATED, STATE_CHANGED})
"""The event kinds ``fold_flow_run`` folds without ``evolve_flow_run``."""

_RUNNING, _SCHEDULED = "RUNNING", "SCHEDULED"
_TERMINAL = frozenset(state.value for state in catalogue.StateType if state in
                      (catalogue.StateType.COMPLETED, catalogue.StateType.FAILED,
                       catalogue.StateType.CANCELLED, catalogue.StateType.CRASHED))


class _Details(msgspec.Struct, gc=False):
    scheduled_time: datetime | None = None


class _Head(msgspec.Struct, gc=False):
    type: str
    timestamp: datetime
    state_details: _Details = msgspec.field(default_factory=_Details)


class _Change(msgspec.Struct, gc=False):
    """What the bookkeeping reads of a FlowRunStateChanged (unknown fields are skipped)."""

    state: _Head
    empirical_policy: dict[str, Any] | None = None


_msgpack_change = msgspec.msgpack.Decoder(_Change)
_json_change = msgspec.json.Decoder(_Change)


def _change(data: bytes) -> _Change:
    # The same two stored forms catalogue.decode reads (schema/events.py).
    return _json_change.decode(data) if data[:1] == b"{" else _msgpack_change.decode(data)


def fold_flow_run(view: FlowRunView | None, events: Sequence[tuple[int, str, bytes]]) -> FlowRunView | None:
    """The view after ``events`` ((version, type, data) of one run's stream, in order) are
    folded into ``view``: what ``evolve_flow_run`` one at a time would give."""
    if len(events) == 1 or any(kind not in FAST_TYPES for _version, kind, _data in events):
        # One event (an append's usual batch) is folded faster whole; other kinds are rare.
        for version, _kind, data in events:
            view = evolve_flow_run(view, catalogue.decode(data), version)
        return view
    index = 0
    while index < len(events):
        version, kind, data = events[index]
        if kind == CREATED:
            view = evolve_flow_run(view, catalogue.decode(data), version)
            index += 1
            continue
        # A stretch of state changes, up to the next creation (none, in a well-formed stream).
        end = index
        while end < len(events) and events[end][1] == STATE_CHANGED:
            end += 1
        if end - index == 1:
            # A lone state change (a new run's first state, in the append that creates it) is
            # decoded once by evolve_flow_run; _states would decode it twice.
            view = evolve_flow_run(view, catalogue.decode(data), version)
        elif view is not None:
            view = _states(view, events[index:end])
        index = end
    return view


def _states(view: FlowRunView, changes: Sequence[tuple[int, str, bytes]]) -> FlowRunView:
    """``view`` after a run of its state changes: _track_times and the run count and policy of
    ``evolve_flow_run``, event by event, on plain values."""
    state = view.state
    kind: str | None = state.type.value if state is not None else None
    at: datetime | None = state.timestamp if state is not None else None
    start_time, end_time = view.start_time, view.end_time
    total = view.total_run_time
    expected = view.expected_start_time
    next_scheduled = view.next_scheduled_start_time
    run_count = view.run_count
    policy = view.empirical_policy
    for _version, _kind, data in changes:
        change = _change(data)
        new = change.state
        new_kind, new_at = new.type, new.timestamp
        if new_kind == _RUNNING and start_time is None:
            start_time = new_at
        if kind in _TERMINAL and new_kind not in _TERMINAL:
            end_time = None
        if new_kind in _TERMINAL and end_time is None:
            start_time = start_time or new_at
            end_time = new_at
        if kind == _RUNNING:
            total = total + (new_at - at).total_seconds()  # type: ignore[operator]
        if expected is None:
            scheduled = new.state_details.scheduled_time if new_kind == _SCHEDULED else None
            expected = scheduled or new_at
        if kind == _SCHEDULED:
            next_scheduled = None
        if new_kind == _SCHEDULED:
            next_scheduled = new.state_details.scheduled_time
        policy = dict(change.empirical_policy if change.empirical_policy is not None else policy)
        if new_kind == _RUNNING and not policy.get("resuming"):
            run_count += 1
        if (new_kind == _RUNNING or new_kind in _TERMINAL) and policy.get("resuming"):
            policy["resuming"] = False
        kind, at = new_kind, new_at
    last_version, _kind, last = changes[-1]
    final = catalogue.decode(last).state  # type: ignore[union-attr]
    return msgspec.structs.replace(
        view, version=last_version, state=final, updated=final.timestamp, start_time=start_time, end_time=end_time,
        total_run_time=total, expected_start_time=expected, next_scheduled_start_time=next_scheduled,
        run_count=run_count, empirical_policy=policy,
    )


TASK_CREATED, TASK_STATE_CHANGED = "task_run.created", "task_run.state_changed"
TASK_FAST_TYPES = frozenset({TASK_CREATED, TASK_STATE_CHANGED})
"""The event kinds ``fold_task_run`` folds without ``evolve_task_run``."""
_EMPTY_MAPS = (b"{}", b"\x80")
"""An empty snapshot as JSON and as MessagePack (an encoder leaves it out: omit_defaults)."""


class _Stamp(msgspec.Struct, gc=False):
    timestamp: datetime


class _TaskChange(msgspec.Struct, gc=False):
    """What deciding whether a TaskRunStateChanged is a current report reads of it."""

    state: _Stamp
    task_run: msgspec.Raw = msgspec.Raw()  # empty when absent
    created: datetime | None = None

    @property
    def report(self) -> bool:
        """Whether it carries a client's snapshot (``evolve_task_run``'s ``if event.task_run``)."""
        return len(self.task_run) > 0 and bytes(self.task_run) not in _EMPTY_MAPS


_msgpack_task_change = msgspec.msgpack.Decoder(_TaskChange)
_json_task_change = msgspec.json.Decoder(_TaskChange)


def fold_task_run(view: TaskRunView | None, events: Sequence[tuple[int, str, bytes]]) -> TaskRunView | None:
    """The view after ``events`` ((version, type, data) of one task run's stream, in order) are
    folded into ``view``: what ``evolve_task_run`` one at a time would give.

    A reported state that is current (not older than the state before it) and names the task
    run's creation time makes the whole view from its snapshot (``task_run_from_report``),
    whatever came before; so the run's last such report is decoded in full and folded alone, the
    events after it one by one, and those before it only read for their times to tell whether it
    is current. Any other stream is folded one event at a time.
    """
    last = _last_current_report(view, events)
    if last is None:
        for version, _kind, data in events:
            view = evolve_task_run(view, catalogue.decode(data), version)
        return view
    version, _kind, data = events[last]
    view = task_run_from_report(None, catalogue.decode(data), version)  # type: ignore[arg-type]
    for version, _kind, data in events[last + 1:]:
        view = evolve_task_run(view, catalogue.decode(data), version)
    return view


def _last_current_report(view: TaskRunView | None, events: Sequence[tuple[int, str, bytes]]) -> int | None:
    """The index of the last report in ``events`` that ``task_run_from_report`` would take whole
    (the view before it does not matter), or None when there is none or the stream holds other
    kinds."""
    if len(events) == 1 or any(kind not in TASK_FAST_TYPES for _version, kind, _data in events):
        return None
    changes = [
        None if kind == TASK_CREATED else (_json_task_change if data[:1] == b"{" else _msgpack_task_change).decode(data)
        for _version, kind, data in events
    ]
    last = next((index for index in range(len(changes) - 1, -1, -1)
                 if changes[index] is not None and changes[index].report), None)  # type: ignore[union-attr]
    if last is None or changes[last].created is None:  # type: ignore[union-attr]
        return None
    # The current state's time before it, as evolve_task_run would leave it (None: no view or no state).
    current = view.state.timestamp if view is not None and view.state is not None else None
    for change in changes[:last]:
        if change is None:
            current = None  # a creation starts the view again, stateless
        elif not (change.report and current is not None and change.state.timestamp < current):
            current = change.state.timestamp  # decided, or a report that is not stale
    if current is not None and changes[last].state.timestamp < current:  # type: ignore[union-attr]
        return None  # stale: it changes only the view's creation time
    return last


__all__ = ["FAST_TYPES", "TASK_FAST_TYPES", "fold_flow_run", "fold_task_run"]
