"""Prefect's orchestration rules as pure functions: (run view, proposed state, context) -> Decision.

The command layer (commands/) loads the run's view and whatever else the rules need
(the parent flow run of a task run, say), calls ``decide_flow_run`` or ``decide_task_run``,
and appends the decision's state, if any, with the run stream's expected version.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.projections.task_run_state_cache import CacheEntry
from runlog.schema.events import State, StateDetails, StateType


class Status(enum.Enum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    WAIT = "WAIT"
    ABORT = "ABORT"


class ProposedState(msgspec.Struct, kw_only=True):
    """A state as a client proposes it (Prefect's StateCreate): no id, maybe no timestamp."""

    type: StateType
    name: str | None = None
    message: str | None = None
    timestamp: datetime | None = None
    state_details: StateDetails = msgspec.field(default_factory=StateDetails)
    data: Any = None


class Decision(msgspec.Struct, kw_only=True):
    """What the rules decided.

    ``state`` is the state to write (with its final id, timestamp, name and details), or None
    when nothing is written; then the response carries the run's current state. A REJECT may
    still write a state (the server's replacement, e.g. AwaitingRetry).
    """

    status: Status
    state: State | None = None
    reason: str | None = None
    delay_seconds: float | None = None
    empirical_policy: dict[str, Any] | None = None  # the run's policy after the transition, if changed
    reset_run_count: bool = False  # task runs: a flow-level retry restarts the count
    flow_run_run_count: int | None = None  # task runs: record the flow run's run_count


class FlowRunContext(msgspec.Struct, kw_only=True):
    now: datetime
    state_id: UUID  # the id the written state gets (its event's id)
    force: bool = False
    has_deployment: bool = False
    is_subflow: bool = False
    # Deployment concurrency: what the command layer found for this transition
    # (commands/deployment_concurrency.SlotCheck), or None when no limit applies.
    deployment_slot: Any = None


class TaskRunContext(msgspec.Struct, kw_only=True):
    now: datetime
    state_id: UUID
    force: bool = False
    flow_run: Any = None  # the parent FlowRunView, or None
    tag_slots_acquired: bool | None = None  # None: no tag limits apply; False: all slots taken
    tag_limit_zero: bool = False  # a tag's limit is 0: the run could never start
    tag_slot_wait_seconds: float = 10.0
    limited_tags: list[str] = msgspec.field(default_factory=list)  # the zero or full limits' tags, for the reason
    # CacheRetrieval: the newest cache entry for the proposed state's cache key that was
    # unexpired at ``now``, looked up by the command layer (None: no entry, or not looked up).
    cache_entry: CacheEntry | None = None
    # RetryFailedTasks: a uniform draw in [0, 1] for the retry's jitter. The command layer draws
    # one per decision; the default, the middle of the range, keeps tests that ignore it stable.
    jitter_draw: float = 0.5


# The rule modules import the types above, so they are imported once those exist.
from .flow_rules import decide_flow_run, flow_run_policy  # noqa: E402
from .task_rules import decide_task_run, holds_tag_slots, task_run_policy  # noqa: E402

__all__ = [
    "Decision",
    "FlowRunContext",
    "ProposedState",
    "Status",
    "TaskRunContext",
    "decide_flow_run",
    "decide_task_run",
    "flow_run_policy",
    "holds_tag_slots",
    "task_run_policy",
]
