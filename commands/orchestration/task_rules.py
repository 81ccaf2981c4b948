"""Prefect's CoreTaskPolicy (and its background-task and ``force`` variants) as one pure function.

``decide_task_run`` runs the rules in Prefect's priority order and shapes the state to write.
The task's run count and the other bookkeeping are folded by the runs projection from the
written state, ``Decision.reset_run_count`` and ``Decision.flow_run_run_count``.

What the rules cannot compute themselves, the command layer finds out first and passes in the
context, so that the rules stay pure:

* CacheRetrieval: the newest cache entry for the proposed cache key (``ctx.cache_entry``, from
  the task run state cache, projections/task_run_state_cache.py). The rule checks its
  expiration against ``ctx.now`` and answers with a copy of the cached state. CacheInsertion
  is the cache projection itself; the rule here only refuses over-long keys.
* RetryFailedTasks's jitter: a uniform draw (``ctx.jitter_draw``) that the clamped Poisson
  interval (jitter.py) turns into the jittered delay.
* Tag concurrency: the command layer acquires the slots (a write) and tells the rules what
  happened through the context; see ``_secure_task_concurrency_slots``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from runlog.projections.runs import FlowRunView, TaskRunView
from runlog.projections.task_run_state_cache import MAX_CACHE_KEY_LENGTH
from runlog.schema.events import StateType

from . import Decision, ProposedState, TaskRunContext
from .common import (
    ALL_STATES,
    FINAL,
    PREVENT_PENDING_FROM,
    Draft,
    Rule,
    Transition,
    Verdict,
    abort,
    copy_scheduled_time,
    govern,
    has_persisted_result,
    prevent_pending_transitions,
    reject,
    rule,
    wait,
    wait_for_scheduled_time,
    write,
)
from .jitter import clamped_poisson_interval

__all__ = ["MAX_CACHE_KEY_LENGTH", "decide_task_run", "holds_tag_slots", "task_run_policy"]


def task_run_policy(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A task run's retry settings, with the deprecated fields filling the current ones."""
    policy = {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": None, "retry_delay": None,
              "retry_jitter_factor": None, **(raw or {})}
    if not policy["retries"] and policy["max_retries"]:
        policy["retries"] = policy["max_retries"]
    if not policy["retry_delay"] and policy["retry_delay_seconds"]:
        policy["retry_delay"] = policy["retry_delay_seconds"]
    return policy


@dataclass
class _TaskTransition(Transition):
    task: TaskRunView | None = None
    ctx: TaskRunContext | None = None
    run_count: int = 0  # as the rules see it: HandleTaskTerminalStateTransitions may zero it
    reset_run_count: bool = False
    flow_run_run_count: int | None = None

    @property
    def flow_run(self) -> FlowRunView | None:
        assert self.ctx is not None and self.task is not None
        return self.ctx.flow_run if self.task.flow_run_id is not None else None


def _retrieve_cached_state(t: _TaskTransition) -> Verdict | None:
    """A task about to run whose result is cached does not run: the server rejects RUNNING and
    writes a copy of the cached COMPLETED state instead, named "Cached", with the cached data.
    The client asks for a fresh result with ``refresh_cache``; an entry past its expiration
    (at this transition's ``now``) is not used."""
    draft, ctx = t.draft, t.ctx
    assert draft is not None and ctx is not None
    cache_key = draft.details.cache_key
    if not cache_key or draft.details.refresh_cache:
        return None
    entry = ctx.cache_entry
    if entry is None or entry.state is None or entry.cache_key != cache_key or not entry.unexpired(t.now):
        return None  # no entry, or one whose task run was deleted (its state is gone)
    cached = entry.state
    # A fresh copy: a new id and timestamp (``write`` gives both), the run ids of this run, and
    # everything else, details included, as cached.
    copy = Draft(type=cached.type, name="Cached", details=msgspec.structs.replace(cached.state_details),
                 message=cached.message, data=cached.data)
    return reject("Retrieved state from cache", copy)


def _handle_terminal_state_transitions(t: _TaskTransition) -> Verdict | None:
    """A finished task stays finished, except that it may run again (a flow-level retry, or a
    task without a stored result being re-run): then its run count, and so its retries, start
    over, and a rerun because the flow is retrying is named "Retrying"."""
    initial, draft = t.initial, t.draft
    assert initial is not None and draft is not None and t.task is not None
    if draft.type in (StateType.CANCELLING, StateType.PAUSED, StateType.CRASHED):
        return abort(f"Run is already {initial.type.value}.")
    if initial.type is StateType.COMPLETED and has_persisted_result(initial.data):
        return reject("This run is already completed.")
    if draft.type not in FINAL:
        t.run_count = 0
        t.on_success(lambda: setattr(t, "reset_run_count", True))
    flow_run = t.flow_run
    if draft.type is StateType.RUNNING and flow_run is not None:
        if t.task.flow_run_run_count < flow_run.run_count:
            draft.name = "Retrying"
    return None


def _prevent_running_tasks_from_stopped_flows(t: _TaskTransition) -> Verdict | None:
    """A task runs only while its flow runs. In a paused flow it waits as NotReady (with the
    flow's pause timeout); in a flow that is not running at all it stops."""
    flow_run = t.flow_run
    if flow_run is None:
        return None
    if flow_run.state is None:
        return abort("The enclosing flow must be running to begin task execution.")
    if flow_run.state.type is StateType.PAUSED:
        parent = flow_run.state.state_details
        not_ready = Draft.fresh(StateType.PAUSED, "NotReady", pause_timeout=parent.pause_timeout,
                                pause_reschedule=parent.pause_reschedule)
        return reject(f"The flow is paused, new tasks can execute after resuming flow run: {flow_run.id}.",
                      not_ready)
    if flow_run.state.type is not StateType.RUNNING:
        return abort("The enclosing flow must be running to begin task execution.")
    return None


def _secure_task_concurrency_slots(t: _TaskTransition) -> Verdict | None:
    """Tag concurrency limits, decided from what the command layer found when it tried to take
    a slot on each of the task's limited tags.

    A limit of 0 could never let the task run, so waiting would deadlock: ABORT. A full limit
    means WAIT and try again. The command layer must give the slots back unless the decision
    writes a RUNNING state (``holds_tag_slots``), as Prefect's rule does in its cleanup.
    """
    ctx, task = t.ctx, t.task
    assert ctx is not None and task is not None
    tags = list(ctx.limited_tags) or list(task.tags)
    if ctx.tag_limit_zero:
        tag = tags[0] if tags else ""
        return abort(f'The concurrency limit on tag "{tag}" is 0 and will deadlock if the task tries to run again.')
    if ctx.tag_slots_acquired is False:
        if len(tags) == 1:
            reason = f"Concurrency limit for the {tags[0]} tag has been reached"
        else:
            reason = f"Concurrency limit reached for tags: {', '.join(tags)}"
        return wait(int(ctx.tag_slot_wait_seconds), reason)
    return None


def _retry_failed_tasks(t: _TaskTransition) -> Verdict | None:
    """A failing task with retries left (and that the client did not mark as not retriable) is
    sent back to AwaitingRetry, scheduled after its retry delay. A list of delays gives one
    delay per attempt, the last repeating. A ``retry_jitter_factor`` jitters a positive delay
    (a clamped Poisson interval, at most ``delay * (1 + factor)``) from the context's draw."""
    draft, ctx = t.draft, t.ctx
    assert draft is not None and t.task is not None and ctx is not None
    policy = task_run_policy(t.task.empirical_policy)
    delay = policy["retry_delay"]
    if isinstance(delay, list):
        delay = delay[min(t.run_count - 1, len(delay) - 1)] if delay else 0
    delay = delay or 0
    factor = policy["retry_jitter_factor"]
    # Prefect refuses a negative factor when the run is created; a stored one is ignored here.
    if _is_number(factor) and factor > 0 and _is_number(delay) and delay > 0:
        delay = clamped_poisson_interval(delay, factor, ctx.jitter_draw)
    if draft.details.retriable is False:
        return None  # the task's retry condition said no
    if policy["retries"] is not None and t.run_count <= policy["retries"]:
        awaiting_retry = Draft.fresh(StateType.SCHEDULED, "AwaitingRetry", message=draft.message, data=draft.data,
                                     scheduled_time=t.now + timedelta(seconds=delay))
        return reject("Retrying", awaiting_retry)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rename_reruns(t: _TaskTransition) -> None:
    """A task that has run before says so: "Retrying" after AwaitingRetry, else "Rerunning"."""
    if t.initial is None or t.draft is None:
        return
    if t.run_count > 0:
        t.draft.name = "Retrying" if t.initial.name == "AwaitingRetry" else "Rerunning"


def _update_flow_run_tracker(t: _TaskTransition) -> None:
    """Remember which attempt of its flow run the task ran in, to spot flow-level retries."""
    flow_run = t.flow_run
    if flow_run is not None:
        t.on_success(lambda: setattr(t, "flow_run_run_count", flow_run.run_count))


def _copy_task_parameters_id(t: _TaskTransition) -> None:
    """Background tasks: the parameters stored at submission follow the run into PENDING/RUNNING."""
    assert t.initial is not None and t.draft is not None
    if t.draft.details.task_parameters_id is None:
        t.draft.details.task_parameters_id = t.initial.state_details.task_parameters_id


def _check_cache_key_length(t: _TaskTransition) -> Verdict | None:
    """An over-long cache key is refused for caching; the state itself is still written (the
    cache projection files no state whose key is over MAX_CACHE_KEY_LENGTH)."""
    draft = t.draft
    assert draft is not None
    cache_key = draft.details.cache_key
    if cache_key and len(cache_key) > MAX_CACHE_KEY_LENGTH:
        return reject(f"Cache key exceeded maximum allowed length of {MAX_CACHE_KEY_LENGTH} characters.", draft)
    return None


_S = StateType
_ALL_TO = ALL_STATES - {None}

CORE_TASK_POLICY: tuple[Rule[_TaskTransition], ...] = (
    rule(ALL_STATES, {_S.RUNNING}, _retrieve_cached_state),  # CacheRetrieval
    rule(FINAL, _ALL_TO, _handle_terminal_state_transitions),
    rule(ALL_STATES, {_S.RUNNING}, _prevent_running_tasks_from_stopped_flows),
    rule(ALL_STATES, {_S.RUNNING}, _secure_task_concurrency_slots),
    rule({_S.SCHEDULED}, {_S.PENDING}, copy_scheduled_time),
    rule({_S.SCHEDULED, _S.PENDING}, {_S.RUNNING}, wait_for_scheduled_time),
    rule({_S.RUNNING}, {_S.FAILED}, _retry_failed_tasks),
    rule(ALL_STATES, {_S.RUNNING}, _rename_reruns),
    rule(ALL_STATES, {_S.RUNNING}, _update_flow_run_tracker),
    rule(ALL_STATES, {_S.COMPLETED}, _check_cache_key_length),  # CacheInsertion (the projection files the state)
)
"""Prefect's CoreTaskPolicy, in its priority order."""

BACKGROUND_TASK_POLICY: tuple[Rule[_TaskTransition], ...] = (
    rule(PREVENT_PENDING_FROM, {_S.PENDING}, prevent_pending_transitions),
    rule(ALL_STATES, {_S.RUNNING}, _retrieve_cached_state),  # CacheRetrieval
    rule(FINAL, _ALL_TO, _handle_terminal_state_transitions),
    rule({_S.SCHEDULED}, {_S.PENDING}, copy_scheduled_time),
    rule({_S.SCHEDULED, _S.PENDING}, {_S.PENDING, _S.RUNNING}, _copy_task_parameters_id),
    rule({_S.SCHEDULED, _S.PENDING}, {_S.RUNNING}, wait_for_scheduled_time),
    rule({_S.RUNNING}, {_S.FAILED}, _retry_failed_tasks),
    rule(ALL_STATES, {_S.RUNNING}, _rename_reruns),
    rule(ALL_STATES, {_S.RUNNING}, _update_flow_run_tracker),
    rule(ALL_STATES, {_S.COMPLETED}, _check_cache_key_length),
)
"""Prefect's BackgroundTaskPolicy (deferred tasks): no tag limits and no parent flow checks,
but only one submitter may take the run to PENDING."""


def decide_task_run(task: TaskRunView, proposed: ProposedState, ctx: TaskRunContext) -> Decision:
    """Decide a proposed task run transition the way Prefect's server does.

    A deferred (background) task's proposal uses the background policy even under ``force``,
    as in Prefect; otherwise ``force`` applies no rules at all.
    """
    if proposed.state_details.deferred:
        rules = BACKGROUND_TASK_POLICY
    elif ctx.force:
        rules = ()
    else:
        rules = CORE_TASK_POLICY
    t = _TaskTransition(initial=task.state, draft=Draft.from_proposal(proposed, ctx.now), now=ctx.now,
                        task=task, ctx=ctx, run_count=task.run_count)
    govern(rules, t)
    if t.draft is None:
        return Decision(status=t.status, reason=t.reason, delay_seconds=t.delay_seconds)
    state = write(t.draft, state_id=ctx.state_id, now=ctx.now, initial=task.state,
                  flow_run_id=task.flow_run_id, task_run_id=task.id)
    return Decision(status=t.status, state=state, reason=t.reason, reset_run_count=t.reset_run_count,
                    flow_run_run_count=t.flow_run_run_count)


def holds_tag_slots(decision: Decision) -> bool:
    """Whether the tag concurrency slots taken for this transition stay taken.

    Only a written RUNNING state keeps them; otherwise (a later rule waited, rejected or
    aborted) the command layer gives them back, as Prefect's SecureTaskConcurrencySlots does
    when its transition fizzles.
    """
    return decision.state is not None and decision.state.type is StateType.RUNNING
