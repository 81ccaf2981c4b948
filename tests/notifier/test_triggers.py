"""Trigger evaluation, pure and table-driven: Prefect's label matching and its buckets of
threshold / within / for_each / posture, with "now" given."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.notifier import triggers as t
from runlog.schema.automations import EventTrigger, ReceivedEvent

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RUN_A = "prefect.flow-run.aaaa"
RUN_B = "prefect.flow-run.bbbb"


def event(name: str = "prefect.flow-run.Failed", at: float = 0, run: str = RUN_A, tags=("daily-etl",),
          flow: str = "prefect.flow.ffff", **labels: str) -> ReceivedEvent:
    related = [{"prefect.resource.id": flow, "prefect.resource.role": "flow", "prefect.resource.name": "etl"}]
    related += [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"} for tag in tags]
    return ReceivedEvent(
        occurred=T0 + timedelta(seconds=at), event=name, resource={"prefect.resource.id": run, **labels},
        related=related, id=uuid.uuid4(),
    )


def trigger(**fields) -> EventTrigger:
    return EventTrigger(**({"id": uuid.uuid4(), "posture": "Reactive"} | fields))


TAG_ETL = {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.daily-etl"}


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("prefect.flow-run.*", "prefect.flow-run.abc", True),
    ("prefect.flow-run.*", "prefect.task-run.abc", False),
    ("prefect.flow-run.Failed", "prefect.flow-run.Failed", True),
    ("prefect.flow-run.Failed", "prefect.flow-run.failed", False),  # case matters
    ("!prefect.flow-run.Completed", "prefect.flow-run.Failed", True),
    ("!prefect.flow-run.Completed", "prefect.flow-run.Completed", False),
    ("*", "anything", True),
    ("prefect.*.Failed", "prefect.flow-run.Failed", True),
    ("x", None, False),
    ("!x", None, False),  # a missing label matches no pattern, negated or not
])
def test_label_patterns(pattern: str, value: str | None, expected: bool) -> None:
    assert t.label_matches(pattern, value) is expected


@pytest.mark.parametrize(("fields", "ev", "expected"), [
    ({}, event(), True),  # an empty trigger covers every event
    ({"expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"]}, event("prefect.flow-run.Crashed"), True),
    ({"expect": ["prefect.flow-run.Failed"]}, event("prefect.flow-run.Completed"), False),
    ({"expect": ["prefect.flow-run.*"]}, event("prefect.flow-run.Running"), True),
    ({"expect": ["prefect.flow-run.Completed"], "after": ["prefect.flow-run.Running"]},
     event("prefect.flow-run.Running"), True),  # an after event concerns the trigger too
    ({"match": {"prefect.resource.id": "prefect.flow-run.*"}}, event(), True),
    ({"match": {"prefect.resource.id": "prefect.task-run.*"}}, event(), False),
    ({"match": {"prefect.resource.id": [RUN_B, RUN_A]}}, event(), True),  # a list is OR
    ({"match": {"prefect.resource.id": RUN_A, "prefect.state-name": "Failed"}}, event(), False),  # labels are AND
    ({"match_related": TAG_ETL}, event(), True),
    ({"match_related": TAG_ETL}, event(tags=("weekly",)), False),
    ({"match_related": TAG_ETL}, event(tags=()), False),
    ({"match_related": {"prefect.resource.role": "tag", "prefect.resource.id": ["prefect.tag.a", "prefect.tag.b"]}},
     event(tags=("b",)), True),  # tags OR within the dimension
    ({"match_related": [TAG_ETL, {"prefect.resource.role": "flow", "prefect.resource.name": "etl"}]},
     event(), True),  # AND across dimensions
    ({"match_related": [TAG_ETL, {"prefect.resource.role": "flow", "prefect.resource.name": "other"}]},
     event(), False),
    ({"match_related": {"prefect.resource.role": "tag", "prefect.resource.id": "!prefect.tag.daily-etl"}},
     event(tags=("daily-etl", "x")), True),  # some related resource is a tag other than daily-etl
])
def test_matches(fields: dict, ev: ReceivedEvent, expected: bool) -> None:
    assert t.matches(trigger(**fields), ev) is expected


def test_for_each_reads_the_resource_or_the_first_related_of_a_role() -> None:
    ev = event(**{"prefect.state-name": "Failed"})
    assert t.bucket_key(trigger(for_each=["prefect.state-name", "prefect.resource.id"]), ev) == (RUN_A, "Failed")
    assert t.bucket_key(trigger(for_each=["related:flow:prefect.resource.name"]), ev) == ("etl",)
    assert t.bucket_key(trigger(for_each=["related:deployment:prefect.resource.id"]), ev) == ("",)


def run(trig: EventTrigger, steps: list[tuple[str, object]]) -> list[tuple[float, object]]:
    """Feed ("event", ReceivedEvent) and ("tick", seconds) steps; the firings, as (seconds, event id or None)."""
    buckets: dict = {}
    fired: list[tuple[float, object]] = []
    for kind, value in steps:
        if kind == "event":
            buckets, firings = t.observe(trig, buckets, value)  # type: ignore[arg-type]
        else:
            buckets, firings = t.tick(trig, buckets, T0 + timedelta(seconds=value))  # type: ignore[operator]
        fired += [((f.at - T0).total_seconds(), f.event.id if f.event else None) for f in firings]
    return fired


FAILED = [event(at=s) for s in (0, 5, 10, 70)]


@pytest.mark.parametrize(("name", "fields", "steps", "expected"), [
    ("immediate: every matching event fires",
     {"expect": ["prefect.flow-run.Failed"]},
     [("event", FAILED[0]), ("event", FAILED[1])], [(0, FAILED[0].id), (5, FAILED[1].id)]),
    ("threshold 3 within 60: fires on the third, then ignores the rest of the window",
     {"expect": ["prefect.flow-run.Failed"], "threshold": 3, "within": 60},
     [("event", event(at=0)), ("event", event(at=20)), ("event", e3 := event(at=30)), ("event", event(at=40))],
     [(30, e3.id)]),
    ("threshold 2 within 10: two events too far apart never fire",
     {"expect": ["prefect.flow-run.Failed"], "threshold": 2, "within": 10},
     [("event", event(at=0)), ("event", event(at=30)), ("tick", 100)], []),
    ("repeat suppression: within 60 per (run, state) fires once a window per run",
     {"expect": ["prefect.flow-run.Failed"], "within": 60, "for_each": ["prefect.resource.id"]},
     [("event", a0 := event(at=0)), ("event", event(at=5)), ("event", b5 := event(at=5, run=RUN_B)),
      ("event", a70 := event(at=70))],
     [(0, a0.id), (5, b5.id), (70, a70.id)]),
    ("hold-for: a proactive wait after Failed fires when no later state arrives",
     {"after": ["prefect.flow-run.Failed"], "expect": ["prefect.flow-run.*"], "posture": "Proactive",
      "within": 60, "for_each": ["prefect.resource.id"]},
     [("event", f0 := event(at=0)), ("tick", 30), ("tick", 60)], [(60, f0.id)]),
    ("hold-for: a later state of the same run within the wait cancels it",
     {"after": ["prefect.flow-run.Failed"], "expect": ["prefect.flow-run.*"], "posture": "Proactive",
      "within": 60, "for_each": ["prefect.resource.id"]},
     [("event", event(at=0)), ("event", event("prefect.flow-run.Running", at=20)), ("tick", 60)], []),
    ("hold-for: another run's state does not cancel this run's wait",
     {"after": ["prefect.flow-run.Failed"], "expect": ["prefect.flow-run.*"], "posture": "Proactive",
      "within": 60, "for_each": ["prefect.resource.id"]},
     [("event", g0 := event(at=0)), ("event", event("prefect.flow-run.Running", at=20, run=RUN_B)), ("tick", 61)],
     [(61, g0.id)]),
    ("proactive after/expect: Completed expected within 30 s of Running",
     {"after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.Completed"], "posture": "Proactive",
      "within": 30},
     [("event", r0 := event("prefect.flow-run.Running", at=0)), ("tick", 31)], [(31, r0.id)]),
    ("proactive after/expect: the Completed in time means no firing",
     {"after": ["prefect.flow-run.Running"], "expect": ["prefect.flow-run.Completed"], "posture": "Proactive",
      "within": 30},
     [("event", event("prefect.flow-run.Running", at=0)), ("event", event("prefect.flow-run.Completed", at=10)),
      ("tick", 31)], []),
    ("unrelated events leave buckets alone",
     {"expect": ["prefect.flow-run.Failed"], "match_related": TAG_ETL},
     [("event", event(tags=("other",))), ("event", event("prefect.flow-run.Completed"))], []),
])
def test_firing(name: str, fields: dict, steps: list, expected: list) -> None:
    assert run(trigger(**fields), steps) == expected, name


def test_expired_reactive_buckets_are_dropped_on_tick() -> None:
    trig = trigger(expect=["prefect.flow-run.Failed"], within=60, for_each=["prefect.resource.id"])
    buckets, _ = t.observe(trig, {}, event(at=0))
    assert buckets
    buckets, firings = t.tick(trig, buckets, T0 + timedelta(seconds=500))
    assert buckets == {} and firings == []
