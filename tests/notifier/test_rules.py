"""Rules as automations: the trigger each option maps to, the way back, and what a rule
cannot take. The mapped triggers are then evaluated as Prefect would."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

import msgspec

from runlog.api.schemas.automations import AutomationUpdate
from runlog.api.schemas.automations import definition_of as checked
from runlog.notifier import resolving, rules, triggers

from .test_triggers import T0, event

CHANNEL = uuid.uuid4()


def definition_of(automation: dict):
    """The definition the server would store for this body (checked as a PUT body is)."""
    return checked(msgspec.convert(automation, AutomationUpdate))


def rule(**fields) -> rules.Rule:
    return rules.Rule(**({"name": "r", "channel_id": CHANNEL} | fields))


@pytest.mark.parametrize("made", [
    rule(),
    rule(states=["Failed", "Crashed"], tags=["daily-etl", "etl"], flows=["etl"], deployments=["nightly"]),
    rule(states=["Failed"], hold_for=60.0),
    rule(states=["Failed"], repeat_suppress=600.0, message="{{ flow_run.name }}", enabled=False),
    rule(states=["Failed"], resolve_on_completed=True),
    rule(states=["Failed"], resolve_on_completed=True, other_tags=["team-data"]),
])
def test_a_rule_reads_back_from_its_automation(made: rules.Rule) -> None:
    automation = rules.definition_of(made)
    definition_of(automation)  # a definition the server accepts
    assert rules.rule_of(automation) == made


@pytest.mark.parametrize(("tags", "resolves"), [
    ([], False), (["ops"], False), ([rules.RESOLVE_TAG], True), (["ops", rules.RESOLVE_TAG], True), (None, False),
])
def test_the_resolve_option_is_the_automations_tag(tags, resolves: bool) -> None:
    automation = rules.definition_of(rule()) | {"tags": tags}
    made = rules.rule_of(automation)
    assert made is not None and made.resolve_on_completed is resolves
    assert made.other_tags == [t for t in tags or [] if t != rules.RESOLVE_TAG], "the other tags are kept"
    assert rules.definition_of(made)["tags"] == (tags or [])
    assert rules.definition_of(rule(resolve_on_completed=True))["tags"] == [rules.RESOLVE_TAG]


def test_automations_that_are_not_rules_are_left_out() -> None:
    automation = rules.definition_of(rule())
    assert rules.rule_of(automation | {"actions": [{"type": "do-nothing"}]}) is None
    assert rules.rule_of(automation | {"actions": automation["actions"] * 2}) is None
    assert rules.rule_of(automation | {"trigger": {"type": "compound"}}) is None


@pytest.mark.parametrize(("text", "name"), [("failed", "Failed"), ("CRASHED", "Crashed"), (" TimedOut ", "TimedOut")])
def test_state_names_are_prefects_whatever_their_case(text: str, name: str) -> None:
    assert rules.state_name(text) == name


@pytest.mark.parametrize(("made", "words"), [
    (rule(hold_for=5.0), "at least 10s"),
    (rule(hold_for=60.0, repeat_suppress=60.0), "cannot be combined"),
])
def test_what_a_rule_cannot_take(made: rules.Rule, words: str) -> None:
    with pytest.raises(rules.RuleError, match=words):
        rules.trigger_of(made)
    with pytest.raises(rules.RuleError, match="unknown state 'Faild'"):
        rules.state_name("Faild")


def fired(made: rules.Rule, steps: list) -> int:
    trigger = definition_of(rules.definition_of(made)).trigger
    buckets: dict = {}
    count = 0
    for step in steps:
        if isinstance(step, int):
            buckets, firings = triggers.tick(trigger, buckets, T0 + timedelta(seconds=step))
        else:
            buckets, firings = triggers.observe(trigger, buckets, step)
        count += len(firings)
    return count


@pytest.mark.parametrize(("made", "steps", "expected"), [
    (rule(states=["Failed", "Crashed"], tags=["daily-etl"]), [event(), event("prefect.flow-run.Crashed")], 2),
    (rule(states=["Failed"], tags=["daily-etl"]), [event(tags=("other",)), event("prefect.flow-run.Completed")], 0),
    (rule(states=["Failed"], tags=["nope", "daily-etl"]), [event()], 1),  # OR within tags
    (rule(states=["Failed"], tags=["daily-etl"], flows=["etl"]), [event()], 1),
    (rule(states=["Failed"], tags=["daily-etl"], flows=["other-flow"]), [event()], 0),  # AND across
    (rule(states=["Failed"], repeat_suppress=600), [event(at=0), event(at=60), event(at=700)], 2),
    (rule(states=["Failed"], hold_for=60), [event(at=0), 61], 1),
    (rule(states=["Failed"], hold_for=60), [event(at=0), event("prefect.flow-run.Running", at=30), 61], 0),
])
def test_rules_fire_as_their_options_say(made: rules.Rule, steps: list, expected: int) -> None:
    assert fired(made, steps) == expected


@pytest.mark.parametrize(("name", "state_type", "completes"), [
    ("prefect.flow-run.Completed", "COMPLETED", True),
    ("prefect.flow-run.Cached", "COMPLETED", True),  # a completed state by another name
    ("prefect.flow-run.Failed", "FAILED", False),
    ("prefect.flow-run.Running", "RUNNING", False),
    ("prefect.task-run.Completed", "COMPLETED", False),  # a task's completion is not the run's
])
def test_which_events_complete_a_run(name: str, state_type: str, completes: bool) -> None:
    kind = name.rsplit(".", 1)[0]  # prefect.flow-run or prefect.task-run
    seen = event(name, run=f"{kind}.{uuid.uuid4()}", **{"prefect.state-type": state_type})
    found = resolving.completes_a_run(seen)
    assert (found is not None) is completes
    if completes:
        assert f"prefect.flow-run.{found}" == seen.resource["prefect.resource.id"]
