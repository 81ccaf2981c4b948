"""The log's Prometheus instruments on both backends: append requests by outcome, events, and
each group-commit batch's size. They are the process's, so each test reads a before and after."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from runlog.eventstore import ConcurrencyError, NewEvent


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts() -> dict[str, float]:
    return {
        "committed": sample("runlog_eventstore_appends_total", outcome="committed"),
        "rejected": sample("runlog_eventstore_appends_total", outcome="rejected"),
        "events": sample("runlog_eventstore_events_appended_total"),
        "batches": sample("runlog_eventstore_batch_appends_count"),
        "batched_appends": sample("runlog_eventstore_batch_appends_sum"),
        "batched_events": sample("runlog_eventstore_batch_events_sum"),
    }


def new() -> NewEvent:
    return NewEvent(type="thing.happened", data=b"{}", id=uuid4())


async def test_committed_and_rejected_appends_and_their_batches_are_counted(store) -> None:
    before = counts()
    stream = f"metered-{uuid4()}"
    await store.append(stream, [new(), new()], expected_version=0)
    with pytest.raises(ConcurrencyError):
        await store.append(stream, [new()], expected_version=0)  # the stream is at version 2
    # Queued together, these are committed in as few batches as the writer makes of them.
    await asyncio.gather(*(store.append(f"metered-{uuid4()}", [new()]) for _ in range(10)))
    after = counts()
    delta = {key: after[key] - before[key] for key in before}

    assert delta["committed"] == 11
    assert delta["rejected"] == 1
    assert delta["events"] == delta["batched_events"] == 12
    assert delta["batched_appends"] == 12  # every request, the rejected one too, was in one batch
    assert 3 <= delta["batches"] <= 12  # the first two alone; the ten in one batch or more


async def test_postgres_batches_are_counted_by_how_they_were_written(store, backend) -> None:
    """PostgreSQL's first batch takes the locked transaction (its writer knows no head yet); the
    next, with nothing else appending, goes in one statement on its guesses. SQLite counts none."""
    def paths() -> tuple[float, float]:
        return sample("runlog_eventstore_batch_paths_total", path="one_statement"), \
            sample("runlog_eventstore_batch_paths_total", path="locked")

    before = paths()
    await store.append(f"metered-{uuid4()}", [new()])
    await store.append(f"metered-{uuid4()}", [new()])
    after = paths()
    delta = (after[0] - before[0], after[1] - before[1])
    assert delta == ((1, 1) if backend == "postgres" else (0, 0))
