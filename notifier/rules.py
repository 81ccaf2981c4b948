"""runlog's notification rules ("states, tags, flows, deployments -> channel") as Prefect
automations, and back: a rule IS an automation, so ``prefect automation ls`` lists it and
the notifier evaluates it like any other.

The trigger that expresses a rule (the mapping the README documents):

- ``match``: every flow run (``prefect.resource.id: prefect.flow-run.*``);
- states: ``expect`` the events ``prefect.flow-run.<State>`` (OR; none = ``prefect.flow-run.*``);
- tags: ``match_related`` on role ``tag`` with ids ``prefect.tag.<t>`` (OR within tags); the
  event's tag resources are the union of the run's, its flow's and its deployment's tags;
- flows / deployments: ``match_related`` on role ``flow`` / ``deployment`` by
  ``prefect.resource.name`` (OR within each); dimensions are ANDed (a list of specifications);
- ``--repeat-suppress D``: a reactive trigger with ``within: D`` and ``for_each`` the run and
  its state name: one message per (run, state) per window, the rest ignored (Prefect's buckets);
- ``--hold-for D``: a proactive trigger: ``after`` the states, ``expect`` any later state of
  the run (``prefect.flow-run.*``), ``within: D``, ``for_each`` the run: it fires only when the
  run is still in the state after D (Prefect's floor for D is 10 s);
- neither: reactive, ``within: 0``, ``threshold: 1``: every matching state change fires;
- the action: ``send-notification`` to the channel's block document, subject
  "Prefect flow run notification", body ``--message`` or Prefect's default message;
- ``--resolve-on-completed``: the automation's tag ``runlog.resolve-on-completed``. Tags are
  part of Prefect's automation model, so the stock client keeps the option through a read and
  an update (it drops fields it does not know), and Prefect's UI shows it. The matcher reads
  the tag off any automation (resolving.py): when a run that alerted through a PagerDuty or
  Opsgenie channel later enters Completed, the alert is resolved.

``--hold-for`` and ``--repeat-suppress`` both use ``within``, so one rule takes one of them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from .templates import DEFAULT_FLOW_RUN_BODY, DEFAULT_FLOW_RUN_SUBJECT

FLOW_RUN_EVENT = "prefect.flow-run."
STATE_NAMES = (
    "Scheduled", "Late", "AwaitingRetry", "AwaitingConcurrencySlot", "Pending", "Running", "Retrying", "Paused",
    "Suspended", "Completed", "Cached", "RolledBack", "Failed", "Crashed", "Cancelled", "Cancelling", "TimedOut",
)
"""The state names Prefect's client and server give flow runs."""
MIN_HOLD_SECONDS = 10.0
RESOLVE_TAG = "runlog.resolve-on-completed"
"""The automation tag that asks for an alert to be resolved when its run later completes."""


class RuleError(ValueError):
    """An option a rule cannot take; the message names it."""


class Rule(msgspec.Struct, kw_only=True):
    name: str
    channel_id: UUID
    states: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    flows: list[str] = msgspec.field(default_factory=list)
    deployments: list[str] = msgspec.field(default_factory=list)
    message: str = DEFAULT_FLOW_RUN_BODY
    subject: str = DEFAULT_FLOW_RUN_SUBJECT
    hold_for: float = 0.0
    repeat_suppress: float = 0.0
    enabled: bool = True
    resolve_on_completed: bool = False
    other_tags: list[str] = msgspec.field(default_factory=list)
    """The automation's tags besides runlog's own (given in Prefect's UI or SDK), kept by edits."""


def state_name(text: str) -> str:
    """A state name as Prefect spells it (case-insensitively given); RuleError for one that does not exist."""
    for name in STATE_NAMES:
        if name.lower() == text.strip().lower():
            return name
    raise RuleError(f"unknown state {text!r}; states are {', '.join(STATE_NAMES)}")


def _related(rule: Rule) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    if rule.tags:
        specs.append({"prefect.resource.role": "tag", "prefect.resource.id": [f"prefect.tag.{t}" for t in rule.tags]})
    if rule.flows:
        specs.append({"prefect.resource.role": "flow", "prefect.resource.name": list(rule.flows)})
    if rule.deployments:
        specs.append({"prefect.resource.role": "deployment", "prefect.resource.name": list(rule.deployments)})
    return specs


def trigger_of(rule: Rule) -> dict[str, Any]:
    """The Prefect event trigger that expresses the rule (see the module docstring)."""
    if rule.hold_for and rule.repeat_suppress:
        raise RuleError("--hold-for and --repeat-suppress cannot be combined: both are the trigger's `within`")
    states = [f"{FLOW_RUN_EVENT}{s}" for s in rule.states] or [f"{FLOW_RUN_EVENT}*"]
    base: dict[str, Any] = {
        "type": "event", "match": {"prefect.resource.id": f"{FLOW_RUN_EVENT}*"}, "match_related": _related(rule),
        "threshold": 1,
    }
    if rule.hold_for:
        if rule.hold_for < MIN_HOLD_SECONDS:
            raise RuleError(f"--hold-for must be at least {MIN_HOLD_SECONDS:g}s (Prefect's floor for proactive triggers)")
        return base | {"posture": "Proactive", "after": states, "expect": [f"{FLOW_RUN_EVENT}*"],
                       "for_each": ["prefect.resource.id"], "within": rule.hold_for}
    for_each = ["prefect.resource.id", "prefect.state-name"] if rule.repeat_suppress else ["prefect.resource.id"]
    return base | {"posture": "Reactive", "after": [], "expect": states, "for_each": for_each,
                   "within": rule.repeat_suppress}


def definition_of(rule: Rule) -> dict[str, Any]:
    """The body of ``POST /automations/`` (or, without owner_resource, of PUT) for the rule."""
    return {
        "name": rule.name, "description": "A runlog notification rule", "enabled": rule.enabled,
        "tags": [*rule.other_tags, *([RESOLVE_TAG] if rule.resolve_on_completed else [])],
        "trigger": trigger_of(rule),
        "actions": [{"type": "send-notification", "block_document_id": str(rule.channel_id),
                     "subject": rule.subject, "body": rule.message}],
        "actions_on_trigger": [], "actions_on_resolve": [],
    }


def resolves_on_completed(tags: Any) -> bool:
    """The automation (by its tags) asks for its alerts to be resolved when the run completes."""
    return isinstance(tags, list) and RESOLVE_TAG in tags


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def rule_of(automation: dict[str, Any]) -> Rule | None:
    """The rule an automation expresses, or None when it is not one (another trigger or action)."""
    trigger, actions = automation.get("trigger") or {}, automation.get("actions") or []
    if trigger.get("type") != "event" or len(actions) != 1 or actions[0].get("type") != "send-notification":
        return None
    proactive = trigger.get("posture") == "Proactive"
    events = trigger.get("after") if proactive else trigger.get("expect")
    states = [e.removeprefix(FLOW_RUN_EVENT) for e in events or [] if e.startswith(FLOW_RUN_EVENT)]
    rule = Rule(
        name=automation["name"], channel_id=UUID(str(actions[0]["block_document_id"])),
        states=[s for s in states if s != "*"], message=actions[0].get("body", ""),
        subject=actions[0].get("subject", DEFAULT_FLOW_RUN_SUBJECT), enabled=automation.get("enabled", True),
        hold_for=float(trigger.get("within") or 0) if proactive else 0.0,
        repeat_suppress=0.0 if proactive else float(trigger.get("within") or 0),
        resolve_on_completed=resolves_on_completed(automation.get("tags")),
        other_tags=[str(t) for t in automation.get("tags") or [] if t != RESOLVE_TAG],
    )
    related = trigger.get("match_related") or []
    for spec in related if isinstance(related, list) else [related]:
        role = spec.get("prefect.resource.role")
        if role == "tag":
            rule.tags = [t.removeprefix("prefect.tag.") for t in _names(spec.get("prefect.resource.id"))]
        elif role == "flow":
            rule.flows = _names(spec.get("prefect.resource.name"))
        elif role == "deployment":
            rule.deployments = _names(spec.get("prefect.resource.name"))
    return rule


__all__ = ["RESOLVE_TAG", "Rule", "RuleError", "STATE_NAMES", "resolves_on_completed", "definition_of", "rule_of", "state_name", "trigger_of"]
