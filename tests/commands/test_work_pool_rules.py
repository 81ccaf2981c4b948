"""The pure rules of work pools, queues and workers, table-tested without a database: statuses
(Prefect's foreman and WorkerResponse) and queue priorities (Prefect's bulk update)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.commands.work_pool_status import (
    deployment_status, pool_status, queue_healthy, queue_status, worker_status,
)
from runlog.commands.work_pools import free_priority, reprioritised

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


@pytest.mark.parametrize(("last_heartbeat", "interval", "expected"), [
    (ago(0), 30, "ONLINE"),
    (ago(89), 30, "ONLINE"),
    (ago(90), 30, "OFFLINE"),  # not younger than three intervals
    (ago(89), None, "ONLINE"),  # no interval: 30 s
    (ago(91), None, "OFFLINE"),
    (ago(14), 5, "ONLINE"),
    (ago(16), 5, "OFFLINE"),
])
def test_worker_status(last_heartbeat, interval, expected) -> None:
    assert worker_status(last_heartbeat, interval, NOW) == expected


@pytest.mark.parametrize(("is_paused", "last_polled", "expected"), [
    (False, None, "NOT_READY"),
    (False, ago(60), "READY"),
    (False, ago(61), "NOT_READY"),
    (False, ago(1), "READY"),
    (True, ago(1), "PAUSED"),
    (True, None, "PAUSED"),
])
def test_queue_status(is_paused, last_polled, expected) -> None:
    assert queue_status(is_paused, last_polled, NOW) == expected


@pytest.mark.parametrize(("polls", "expected"), [
    ([], "NOT_READY"),
    ([None, None], "NOT_READY"),
    ([ago(60)], "READY"),
    ([ago(61)], "NOT_READY"),
    ([None, ago(5)], "READY"),  # its queue polled, the deployment itself never
    ([ago(120), ago(30)], "READY"),  # the latest of the two counts
    ([ago(120), ago(90)], "NOT_READY"),
])
def test_deployment_status(polls, expected) -> None:
    assert deployment_status(polls, NOW) == expected


@pytest.mark.parametrize(("pool_type", "is_paused", "workers", "expected"), [
    ("process", False, [], "NOT_READY"),
    ("process", False, ["OFFLINE"], "NOT_READY"),
    ("process", False, ["OFFLINE", "ONLINE"], "READY"),
    ("process", True, ["ONLINE"], "PAUSED"),
    ("prefect-agent", False, ["ONLINE"], None),
])
def test_pool_status(pool_type, is_paused, workers, expected) -> None:
    assert pool_status(pool_type, is_paused, workers) == expected


@pytest.mark.parametrize(("late", "last_polled", "healthy"), [
    (0, ago(10), True), (1, ago(10), False), (0, None, False), (0, ago(61), False),
])
def test_queue_health(late, last_polled, healthy) -> None:
    assert queue_healthy(late, last_polled, NOW) is healthy


@pytest.mark.parametrize(("taken", "expected"), [
    ([], 1), ([1], 2), ([1, 2, 3], 4), ([2, 3], 1), ([1, 3], 2), ([1, 2, 5], 3),
])
def test_a_queue_without_a_priority_takes_the_first_gap(taken, expected) -> None:
    assert free_priority(taken) == expected


A, B, C, D = (uuid.UUID(int=i) for i in range(1, 5))


@pytest.mark.parametrize(("queues", "wanted", "moves"), [
    # a free priority moves nobody else
    ([(A, 1), (B, 2), (C, 5)], {C: 3}, {C: 3}),
    # a taken one pushes the holder (and only as many as needed) down
    ([(A, 1), (B, 2), (C, 3)], {C: 1}, {C: 1, A: 2, B: 3}),
    # a new queue (already listed at its priority) moves the holder only
    ([(A, 1), (B, 2), (C, 4), (D, 2)], {D: 2}, {B: 3}),
    # nothing wanted: only duplicates are separated, gaps stay
    ([(A, 2), (B, 5)], {}, {}),
    ([(A, 1), (B, 1)], {}, {B: 2}),
])
def test_priorities_stay_unique_and_in_order(queues, wanted, moves) -> None:
    assert reprioritised(queues, wanted) == moves
