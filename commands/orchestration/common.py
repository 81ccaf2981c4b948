"""What the flow and task rule chains share: the draft a transition shapes, the loop that runs
rules in priority order, the rules both policies use, and the shaping every written state gets.

The loop keeps Prefect's two subtle semantics. A rule fires only while the transition is still
the one it was chosen for: once a rule rejects, delays or aborts, the rules after it are skipped
unless the replacement keeps the proposed type. And a rule's side effects (policy updates, the
task run count reset) survive only if the state finally written is of the type that rule
governed; Prefect gets the same result from its ``after_transition`` and ``cleanup`` hooks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec

from runlog.projections.runs import TERMINAL
from runlog.schema.events import State, StateDetails, StateType

from . import ProposedState, Status

ALL_STATES: frozenset[StateType | None] = frozenset({*StateType, None})
"""Every initial state type, including None (a run that has no state yet)."""

FINAL = TERMINAL  # Prefect's is_final(): the four terminal types


def default_name(state_type: StateType) -> str:
    """Prefect's default state name: the type in title case ("Scheduled", "Cancelling")."""
    return " ".join(part.capitalize() for part in state_type.value.split("_"))


def has_persisted_result(data: Any) -> bool:
    """True if ``data`` is a persisted result reference (the run's output exists somewhere).

    A state's data may be anything the client sent; only a non-empty mapping whose type is not
    "unpersisted" refers to a stored result that leaving the state would orphan.
    """
    return bool(data) and isinstance(data, dict) and data.get("type") != "unpersisted"


@dataclass
class Draft:
    """A state on its way to being written: no id yet, and the timestamp may still be unset."""

    type: StateType
    name: str
    details: StateDetails
    message: str | None = None
    data: Any = None
    timestamp: datetime | None = None

    @classmethod
    def from_proposal(cls, proposed: ProposedState, now: datetime) -> Draft:
        """Apply what Prefect's StateCreate validators do before any rule sees the state."""
        details = msgspec.structs.replace(proposed.state_details)  # a copy: rules edit it
        if proposed.type is StateType.SCHEDULED and details.scheduled_time is None:
            details.scheduled_time = proposed.timestamp or now
        return cls(
            type=proposed.type, name=proposed.name or default_name(proposed.type), details=details,
            message=proposed.message, data=proposed.data, timestamp=proposed.timestamp,
        )

    @classmethod
    def fresh(cls, state_type: StateType, name: str | None = None, *, message: str | None = None,
              data: Any = None, **details: Any) -> Draft:
        """A state the server makes up (AwaitingRetry, Cancelled, NotReady, ...)."""
        return cls(type=state_type, name=name or default_name(state_type), details=StateDetails(**details),
                   message=message, data=data)


@dataclass
class Verdict:
    """A rule's ruling that changes the transition: REJECT, WAIT or ABORT.

    ``state`` is the replacement to write (REJECT only); None writes nothing.
    """

    status: Status
    reason: str
    state: Draft | None = None
    delay_seconds: int | None = None


def reject(reason: str, state: Draft | None = None) -> Verdict:
    return Verdict(Status.REJECT, reason, state)


def wait(delay_seconds: int, reason: str) -> Verdict:
    return Verdict(Status.WAIT, reason, delay_seconds=delay_seconds)


def abort(reason: str) -> Verdict:
    return Verdict(Status.ABORT, reason)


@dataclass
class _Fired:
    """A rule that ran, the transition type it now governs, and its pending side effects."""

    to_type: StateType | None
    effects: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Transition:
    """The working context one decision threads through its rules."""

    initial: State | None
    draft: Draft | None
    now: datetime
    status: Status = Status.ACCEPT
    reason: str | None = None
    delay_seconds: int | None = None
    _fired: list[_Fired] = field(default_factory=list)

    def on_success(self, effect: Callable[[], None]) -> None:
        """Run ``effect`` only if this rule still governs the state that ends up written."""
        self._fired[-1].effects.append(effect)


T = TypeVar("T", bound=Transition)


@dataclass(frozen=True)
class Rule(Generic[T]):
    """One orchestration rule: the transitions it governs and what it does to them.

    The states are tuples, not sets: ``in`` a tuple of enum members compares them by identity in
    C, where a set hashes the member in Python (enum.Enum.__hash__), twice for each rule of
    each transition; there are at most ten states."""

    from_states: tuple[StateType | None, ...]
    to_states: tuple[StateType | None, ...]
    apply: Callable[[T], Verdict | None]


def rule(from_states: Iterable[StateType | None], to_states: Iterable[StateType | None],
         apply: Callable[[T], Verdict | None]) -> Rule[T]:
    return Rule(tuple(from_states), tuple(to_states), apply)


def govern(rules: Iterable[Rule[T]], t: T) -> None:
    """Run ``rules`` in priority order over ``t``, then keep the side effects that still apply."""
    assert t.draft is not None
    from_type = t.initial.type if t.initial is not None else None
    to_type = t.draft.type
    for r in rules:
        if from_type not in r.from_states or to_type not in r.to_states:
            continue
        # An earlier rule changed the transition: this rule was chosen for another one.
        if t.draft is None or t.draft.type is not to_type:
            continue
        t._fired.append(_Fired(to_type))
        verdict = r.apply(t)
        if verdict is not None:
            t.status, t.reason, t.delay_seconds = verdict.status, verdict.reason, verdict.delay_seconds
            t.draft = verdict.state
            # A rule that changes the transition governs its own replacement (it does not fizzle).
            t._fired[-1].to_type = verdict.state.type if verdict.state is not None else None
    if t.draft is None:
        return  # nothing is written, so no rule's side effects take hold
    for fired in t._fired:
        if fired.to_type is t.draft.type:
            for effect in fired.effects:
                effect()


def write(draft: Draft, *, state_id: Any, now: datetime, initial: State | None, **details: Any) -> State:
    """The state as stored: its id, its timestamp (unique within the run), and its run ids."""
    timestamp = draft.timestamp or now
    if initial is not None and timestamp == initial.timestamp:
        # Two states of a run must not share a timestamp (Prefect's unique index and the
        # history's order both rely on it); nudge the new one past the current one.
        timestamp += timedelta(microseconds=1)
    state_details = msgspec.structs.replace(draft.details, **details)
    if draft.type is StateType.SCHEDULED and state_details.scheduled_time is None:
        state_details.scheduled_time = timestamp
    return State(id=state_id, type=draft.type, name=draft.name, timestamp=timestamp, message=draft.message,
                 state_details=state_details, data=draft.data)


# Rules shared by the flow and task policies ------------------------------------------------


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone: a client's naive datetime is taken as UTC, as Prefect does."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``moment``, rounded the way Prefect rounds WAIT delays.

    Prefect floors the seconds and rounds the sub-second part on its own (so 0.5 s rounds to 0
    and 1.6 s to 2); keeping its arithmetic keeps the client's retry timing identical.
    """
    delay = aware(moment) - now
    return math.floor(delay.total_seconds()) + round(delay.microseconds / 1e6)


def copy_scheduled_time(t: Transition) -> None:
    """SCHEDULED -> PENDING: keep the scheduled time unless the new state names its own."""
    assert t.initial is not None and t.draft is not None
    if t.draft.details.scheduled_time is None:
        t.draft.details.scheduled_time = t.initial.state_details.scheduled_time


def wait_for_scheduled_time(t: Transition) -> Verdict | None:
    """SCHEDULED/PENDING -> RUNNING: too early by the server's clock means WAIT, not start."""
    assert t.initial is not None
    scheduled_time = t.initial.state_details.scheduled_time
    if scheduled_time is None:
        return None
    delay = seconds_until(scheduled_time, t.now)
    if delay > 0:
        return wait(delay, "Scheduled time is in the future")
    return None


def prevent_pending_transitions(t: Transition) -> Verdict | None:
    """Only one submitter may move a run into PENDING: the second one is told to stop.

    Two workers may pick up the same run; the first PENDING wins and the other gets ABORT. A
    run already RUNNING or being cancelled must not be submitted again either. A PENDING run may
    still be renamed (Submitting, InfrastructurePending), keeping what earlier rules put on it.
    """
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None
    if (initial.type is StateType.PENDING and initial.name != draft.name and draft.name != "Pending"):
        draft.details.scheduled_time = initial.state_details.scheduled_time
        draft.details.deployment_concurrency_lease_id = initial.state_details.deployment_concurrency_lease_id
        return None
    return abort(f"This run is in a {initial.type.name} state and cannot transition to a PENDING state.")


PREVENT_PENDING_FROM = (StateType.PENDING, StateType.CANCELLING, StateType.RUNNING, StateType.CANCELLED)


def state_from_proposal(
    proposed: ProposedState, state_id: UUID, now: datetime, **references: UUID | None
) -> State:
    """A run's initial state, written with force at creation, shaped as the rules shape states.

    ``references`` are the state_details ids to set (flow_run_id, task_run_id).
    """
    details = msgspec.structs.replace(proposed.state_details, **references)
    if proposed.type is StateType.SCHEDULED and details.scheduled_time is None:
        details = msgspec.structs.replace(details, scheduled_time=proposed.timestamp or now)
    return State(
        id=state_id, type=proposed.type, name=proposed.name or proposed.type.value.title(),
        timestamp=proposed.timestamp or now, message=proposed.message, state_details=details, data=proposed.data,
    )
