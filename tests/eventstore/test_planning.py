"""plan_batch decides a batch of appends without a database; table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from runlog.eventstore import ConcurrencyError, NewEvent, RecordedEvent
from runlog.eventstore.planning import AppendRequest, Row, plan_batch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(n: int) -> NewEvent:
    return NewEvent(type="t", data=str(n).encode(), id=UUID(int=n))


def stored(n: int, position: int, stream: str, version: int) -> RecordedEvent:
    return RecordedEvent(position, stream, version, UUID(int=n), "t", str(n).encode(), T0)


def describe(plan):
    """Each request as ('error', actual) or a list of (position, stream, version, stored?)."""
    out = []
    for outcome in plan.outcomes:
        if outcome.error is not None:
            out.append(("error", outcome.error.actual))
        else:
            out.append(
                [
                    (s.position, s.stream_id, s.version, isinstance(s, RecordedEvent))
                    for s in outcome.slots
                ]
            )
    return out


CASES = [
    pytest.param(
        [AppendRequest("a", [ev(1), ev(2)], None)], 0, {}, {},
        [[(1, "a", 1, False), (2, "a", 2, False)]],
        id="fresh stream, any version",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 3)], 10, {"a": 3}, {},
        [[(11, "a", 4, False)]],
        id="expected version matches",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 2)], 10, {"a": 3}, {},
        [("error", 3)],
        id="expected version behind",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 0)], 10, {"a": 3}, {},
        [("error", 3)],
        id="no-stream on an existing stream",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 0), AppendRequest("a", [ev(2)], 0)], 0, {}, {},
        [[(1, "a", 1, False)], ("error", 1)],
        id="two no-stream appends in one batch: the second sees the first",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 0), AppendRequest("a", [ev(2)], 1)], 0, {}, {},
        [[(1, "a", 1, False)], [(2, "a", 2, False)]],
        id="chained expected versions within a batch",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 0)], 5, {"a": 1}, {UUID(int=1): stored(1, 5, "a", 1)},
        [[(5, "a", 1, True)]],
        id="retry of a stored event skips the version check",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1), ev(2)], 1)], 5, {"a": 1}, {UUID(int=1): stored(1, 5, "a", 1)},
        [[(5, "a", 1, True), (6, "a", 2, False)]],
        id="partly stored: only new events are inserted",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], None), AppendRequest("b", [ev(1)], None)], 0, {}, {},
        [[(1, "a", 1, False)], [(1, "a", 1, False)]],
        id="same id in two requests of a batch is stored once",
    ),
    pytest.param(
        [AppendRequest("a", [ev(1)], 9), AppendRequest("b", [ev(2)], None)], 0, {}, {},
        [("error", 0), [(1, "b", 1, False)]],
        id="a conflict leaves the rest of the batch alone and takes no position",
    ),
]


@pytest.mark.parametrize(("requests", "head", "versions", "known", "expected"), CASES)
def test_plan_batch(requests, head, versions, known, expected):
    plan = plan_batch(requests, head, versions, known)
    assert describe(plan) == expected
    # Rows to insert are exactly the planned non-stored slots, with contiguous positions.
    assert [r.position for r in plan.rows] == list(range(head + 1, head + 1 + len(plan.rows)))


def test_conflict_error_names_stream_expected_and_actual():
    plan = plan_batch([AppendRequest("flow-run-x", [ev(1)], 4)], 0, {"flow-run-x": 7}, {})
    error = plan.outcomes[0].error
    assert isinstance(error, ConcurrencyError)
    assert (error.stream_id, error.expected, error.actual) == ("flow-run-x", 4, 7)


def test_rows_become_recorded_events_once_the_backend_stamps_them():
    plan = plan_batch([AppendRequest("a", [ev(1)], None)], 0, {}, {})
    (row,) = plan.rows
    assert isinstance(row, Row)
    row.recorded_at = T0
    assert row.recorded() == RecordedEvent(1, "a", 1, UUID(int=1), "t", b"1", T0)


def test_plan_does_not_mutate_its_inputs():
    versions = {"a": 1}
    plan_batch([AppendRequest("a", [NewEvent(type="t", data=b"", id=uuid4())], 1)], 1, versions, {})
    assert versions == {"a": 1}


def test_a_group_with_a_conflict_is_dropped_whole_and_its_neighbours_close_the_gap() -> None:
    group, other = object(), object()
    requests = [
        AppendRequest("a", [ev(1)], None),
        AppendRequest("b", [ev(2), ev(3)], 0, group),
        AppendRequest("c", [ev(4)], 0, group),  # "c" exists: the whole group is dropped
        AppendRequest("b", [ev(5)], 0),  # planned as if the group had never been there
        AppendRequest("d", [ev(6)], 0, other),
        AppendRequest("e", [ev(7)], None, other),
    ]
    plan = plan_batch(requests, 10, {"c": 4}, {})
    assert describe(plan) == [
        [(11, "a", 1, False)],
        ("error", 4),
        ("error", 4),
        [(12, "b", 1, False)],
        [(13, "d", 1, False)],
        [(14, "e", 1, False)],
    ]
    assert [row.event.id for row in plan.rows] == [UUID(int=n) for n in (1, 5, 6, 7)]
    # Its events' ids are forgotten too: appended again later in the batch, they are new.
    again = plan_batch([*requests[1:3], AppendRequest("f", [ev(2)], None)], 0, {"c": 1}, {})
    assert describe(again)[2] == [(1, "f", 1, False)]
