"""Prefect's rows as runlog's events (commands/import_prefect/convert.py, source.py): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from runlog.commands.deployments import deployment_id_for
from runlog.commands.flows import flow_id_for
from runlog.commands.import_prefect import convert
from runlog.commands.import_prefect.source import seconds, when
from runlog.projections.runs import evolve_task_run
from runlog.schema.events import StateType, TaskRunCreated, TaskRunStateChanged

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("stored", "expected"), [
    ("2026-03-01 12:00:00.250000", T0 + timedelta(milliseconds=250)),  # SQLite: naive UTC text
    ("2026-03-01 12:00:00", T0),  # without microseconds
    ("2026-03-01T13:00:00+01:00", T0),  # text with an offset of its own
    ("2026-03-01 12:00:00Z", T0),
    ("2026-03-01", T0 - timedelta(hours=12)),  # a date alone: its midnight, UTC
    (datetime(2026, 3, 1, 12, 0), T0),  # a naive datetime
    (T0, T0),
    (datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))), T0),  # PostgreSQL: timestamptz
    (None, None),
])
def test_times_are_read_as_aware_utc(stored, expected):
    assert when(stored) == expected and (expected is None or when(stored).tzinfo is UTC)


@pytest.mark.parametrize(("stored", "expected"), [
    ("1970-01-01 00:00:01.472090", 1.47209),  # SQLite keeps an interval as a time after the epoch
    (timedelta(seconds=2.5), 2.5),  # PostgreSQL: interval
    (None, 0.0),
])
def test_intervals_are_read_as_seconds(stored, expected):
    assert seconds(stored) == pytest.approx(expected)


def _task_row(task_id: UUID, run_id: UUID, created: datetime) -> dict:
    return {
        "id": str(task_id), "flow_run_id": str(run_id), "name": "add-1", "task_key": "add-abc", "dynamic_key": "1",
        "cache_key": None, "cache_expiration": None, "task_version": None, "empirical_policy": "{}", "tags": '["math"]',
        "labels": "{}", "task_inputs": '{"a": []}', "run_count": 2, "flow_run_run_count": 1,
        "start_time": "2026-03-01 12:00:01.000000", "end_time": "2026-03-01 12:00:03.000000",
        "total_run_time": "1970-01-01 00:00:01.500000", "expected_start_time": "2026-03-01 12:00:00.000000",
        "next_scheduled_start_time": None, "created": created.replace(tzinfo=None).isoformat(" "),
    }


def _state_row(task_id: UUID, kind: str, at: float) -> dict:
    stamp = (T0 + timedelta(seconds=at)).replace(tzinfo=None).isoformat(" ")
    return {"id": str(uuid4()), "type": kind, "name": kind.title(), "timestamp": stamp, "created": stamp,
            "message": None, "data": None, "state_details": f'{{"task_run_id": "{task_id}"}}'}


def test_a_task_run_is_prefects_row_whatever_its_states_would_derive():
    """Prefect writes a task run's row after its first states (client-side orchestration): the
    imported run keeps the row's creation time, run count and times, and its last state."""
    task_id, run_id = uuid4(), uuid4()
    created = T0 + timedelta(seconds=3.5)  # after every state
    states = [_state_row(task_id, kind, at) for kind, at in (("RUNNING", 2), ("PENDING", 0), ("RUNNING", 1),
                                                             ("COMPLETED", 3))]
    stream, events = convert.task_run(_task_row(task_id, run_id, created), states)
    assert stream == f"task-run-{task_id}"
    assert [type(e) for _, e in events] == [TaskRunCreated, *[TaskRunStateChanged] * 4]
    assert [e.state.type for _, e in events[1:]] == [StateType.PENDING, StateType.RUNNING, StateType.RUNNING,
                                                     StateType.COMPLETED]
    assert [i for i, _ in events[1:]] == [e.state.id for _, e in events[1:]]  # a state's id is its event's
    view = None
    for version, (_, event) in enumerate(events, start=1):
        view = evolve_task_run(view, event, version)
    assert view is not None
    assert (view.created, view.run_count, view.start_time, view.end_time, view.total_run_time) == (
        created, 2, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3), 1.5)
    assert view.state is not None and view.state.type is StateType.COMPLETED and view.tags == ["math"]


def test_name_keyed_records_take_runlogs_ids_and_references_follow():
    ids = convert.Ids()
    prefect_flow, prefect_deployment = uuid4(), uuid4()
    stream, [(_, flow)] = convert.flow(
        {"id": str(prefect_flow), "name": "etl", "tags": "[]", "labels": "{}", "created": "2026-03-01 12:00:00"}, ids)
    assert flow.flow_id == flow_id_for("etl") and ids.flow(prefect_flow) == flow_id_for("etl")
    ids.deployments[prefect_deployment] = deployment_id_for(flow_id_for("etl"), "nightly")
    schedule, moment = uuid4(), "2026-03-02 00:00:00+00:00"
    assert ids.run_key(f"scheduled {prefect_deployment} {schedule} {moment}") == \
        f"scheduled {ids.deployment(prefect_deployment)} {schedule} {moment}"
    assert ids.run_key("my-own-key") == "my-own-key"
    assert ids.limit_name(f"deployment:{prefect_deployment}") == f"deployment:{ids.deployment(prefect_deployment)}"
    assert ids.limit_name("tag:math") == "tag:math"
    assert ids.labels({"prefect.flow.id": str(prefect_flow), "team": "x"}) == {
        "prefect.flow.id": str(flow_id_for("etl")), "team": "x"}


def test_event_ids_are_the_same_every_import():
    record = uuid4()
    assert convert.derived("flow_run.created", record) == convert.derived("flow_run.created", record)
    assert convert.derived("flow_run.created", record) != convert.derived("task_run.created", record)


@pytest.mark.parametrize("parts", [
    ("flow_run.created", UUID("0b9e4a4e-0000-4000-8000-000000000001")),
    ("flow_run.infrastructure_pid", uuid4(), "12345"),
    ("flow.created",),
    ("artifact.latest", "a key with ünïcode", 7),
    *(("task_run.created", uuid4()) for _ in range(20)),
])
def test_derived_ids_are_uuid5_of_the_import_namespace(parts):
    """Ids derived by earlier imports must come out the same: the fast path is uuid5 exactly."""
    import uuid

    expected = uuid.uuid5(convert.IMPORT_NAMESPACE, "\x1f".join(map(str, parts)))
    got = convert.derived(*parts)
    assert got == expected and got.version == 5 and got.variant == uuid.RFC_4122
