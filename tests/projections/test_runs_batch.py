"""The batch folds of a run's events (projections/runs_batch.py) give the view that
``evolve_flow_run`` gives one event at a time, for random streams of every kind; no database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from runlog.projections.runs import evolve_flow_run, evolve_task_run
from runlog.projections.runs_batch import fold_flow_run, fold_task_run
from runlog.schema import events as catalogue
from runlog.schema.events import State, StateDetails, StateType

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _state(rng: random.Random, at: datetime) -> State:
    kind = rng.choice(list(StateType))
    details = {}
    if kind is StateType.SCHEDULED and rng.random() < 0.7:
        details["scheduled_time"] = at + timedelta(seconds=rng.randint(-60, 600))
    if rng.random() < 0.2:
        details["cache_key"] = "k"
    return State(id=uuid4(), type=kind, name=rng.choice([None, kind.value.title(), "Retrying", "Late"]),
                 timestamp=at, message=rng.choice([None, "m"]), state_details=StateDetails(**details),
                 data=rng.choice([None, {"x": 1}]))


def _stream(rng: random.Random, run_id: UUID, length: int, *, other_kinds: bool) -> list[catalogue.Event]:
    events: list[catalogue.Event] = [catalogue.FlowRunCreated(
        flow_run_id=run_id, flow_id=uuid4(), name="r", created=T0, tags=["a"],
        empirical_policy=rng.choice([{}, {"resuming": True}, {"retries": 2}]),
    )]
    at = T0
    for _ in range(length):
        at += timedelta(seconds=rng.choice([0, 0.000001, 1.5, 30]))
        roll = rng.random()
        if other_kinds and roll < 0.08:
            events.append(catalogue.FlowRunUpdated(flow_run_id=run_id, changes={"name": "renamed", "tags": ["b"]}))
        elif other_kinds and roll < 0.11:
            events.append(catalogue.FlowRunDeleted(flow_run_id=run_id))
        elif other_kinds and roll < 0.14:
            events.append(catalogue.FlowRunCreated(flow_run_id=run_id, flow_id=uuid4(), name="again", created=at))
        else:
            policy = rng.choice([None, None, {"resuming": True}, {"resuming": False, "retries": 1}])
            events.append(catalogue.FlowRunStateChanged(flow_run_id=run_id, state=_state(rng, at), empirical_policy=policy))
    return events


def _one_by_one(view, events, first_version, evolve=evolve_flow_run):
    for version, event in enumerate(events, first_version):
        view = evolve(view, event, version)
    return view


def _stored(events, first_version, *, json: bool):
    encode = catalogue._json_encoder.encode if json else catalogue.encode
    return [(version, catalogue.event_type(e), encode(e)) for version, e in enumerate(events, first_version)]


def test_state_changes_before_the_creation_make_no_run():
    run_id = uuid4()
    rng = random.Random(3)
    changes = [catalogue.FlowRunStateChanged(flow_run_id=run_id, state=_state(rng, T0)) for _ in range(3)]
    assert fold_flow_run(None, _stored(changes, 1, json=False)) is None


# -- task runs ------------------------------------------------------------------------------------


def _task_stream(rng: random.Random, run_id: UUID, length: int, *, other_kinds: bool) -> list[catalogue.Event]:
    """A task run's stream: a creation (mostly), then decided and reported states in any order of
    time (stale reports among them), with or without the source's creation time; an import's
    shape (decided states, then a report with the fields) among them."""
    flow_run_id = uuid4()
    fields = {"name": "t", "task_key": "k", "dynamic_key": "0", "run_count": 1, "tags": ["x"]}
    events: list[catalogue.Event] = []
    if rng.random() < 0.9:
        events.append(catalogue.TaskRunCreated(task_run_id=run_id, flow_run_id=flow_run_id, task_run=fields, created=T0))
    at = T0
    for _ in range(length):
        at += timedelta(seconds=rng.choice([-30, -1, 0, 0.000001, 1.5, 30]))
        roll = rng.random()
        if other_kinds and roll < 0.08:
            events.append(catalogue.TaskRunUpdated(task_run_id=run_id, changes={"name": "renamed"}))
        elif other_kinds and roll < 0.11:
            events.append(catalogue.TaskRunDeleted(task_run_id=run_id))
        elif roll < 0.5:
            events.append(catalogue.TaskRunStateChanged(
                task_run_id=run_id, flow_run_id=flow_run_id, state=_state(rng, at),
                task_run=dict(fields, run_count=rng.randint(0, 3)),
                created=rng.choice([None, T0 - timedelta(seconds=5), at]),
            ))
        else:
            events.append(catalogue.TaskRunStateChanged(
                task_run_id=run_id, flow_run_id=flow_run_id, state=_state(rng, at),
                reset_run_count=rng.random() < 0.1, flow_run_run_count=rng.choice([None, 2]),
            ))
    return events


# Per kind of run: its batch fold, its one-event fold, its random stream, and how many and how
# long streams to try (a task run's stream of reports has more shapes per event).
_KINDS = {
    "flow run": (fold_flow_run, evolve_flow_run, _stream, 300, 12),
    "task run": (fold_task_run, evolve_task_run, _task_stream, 500, 8),
}


@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("other_kinds", [False, True])
@pytest.mark.parametrize("json", [False, True])
def test_the_batch_fold_equals_evolve_one_event_at_a_time(kind, other_kinds, json):
    fold, evolve, stream, tries, longest = _KINDS[kind]
    rng = random.Random(f"{kind} {other_kinds} {json}")
    for _ in range(tries):
        events = stream(rng, uuid4(), rng.randint(0, longest), other_kinds=other_kinds)
        assert fold(None, _stored(events, 1, json=json)) == _one_by_one(None, events, 1, evolve)


@pytest.mark.parametrize("kind", list(_KINDS))
def test_the_batch_fold_goes_on_from_a_view_folded_before(kind):
    """A rebuild's batch may start mid-stream: the view its earlier events made is the start."""
    fold, evolve, stream, tries, longest = _KINDS[kind]
    rng = random.Random(kind)
    for _ in range(tries):
        events = stream(rng, uuid4(), rng.randint(2, longest), other_kinds=False)
        cut = rng.randint(1, len(events) - 1)
        before = _one_by_one(None, events[:cut], 1, evolve)
        assert fold(before, _stored(events[cut:], cut + 1, json=False)) == _one_by_one(None, events, 1, evolve)


def test_an_imported_task_run_is_made_from_its_last_report():
    """The import's shape (projections' fast path): creation, decided states, then the report."""
    rng = random.Random(5)
    run_id, flow_run_id = uuid4(), uuid4()
    fields = {"name": "t", "task_key": "k", "dynamic_key": "0", "run_count": 1}
    states = [_state(rng, T0 + timedelta(seconds=n)) for n in range(3)]
    events = [
        catalogue.TaskRunCreated(task_run_id=run_id, flow_run_id=flow_run_id, task_run=fields, created=T0),
        catalogue.TaskRunStateChanged(task_run_id=run_id, flow_run_id=flow_run_id, state=states[0]),
        catalogue.TaskRunStateChanged(task_run_id=run_id, flow_run_id=flow_run_id, state=states[1]),
        catalogue.TaskRunStateChanged(task_run_id=run_id, flow_run_id=flow_run_id, state=states[2], task_run=fields,
                                      created=T0),
    ]
    folded = fold_task_run(None, _stored(events, 1, json=False))
    assert folded == _one_by_one(None, events, 1, evolve_task_run)
    assert folded.state == states[2] and folded.version == 4
