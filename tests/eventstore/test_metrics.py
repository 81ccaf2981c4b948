"""The log's Prometheus instruments on both backends: append requests by outcome, events, and
each group-commit batch's size. They are the process's, so each test reads a before and after."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY

from runlog.eventstore import ConcurrencyError, NewEvent, open_store


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


@pytest.mark.postgres
async def test_after_another_process_appended_a_batch_goes_in_one_statement_at_the_second_try(pg_url) -> None:
    """A second writer (another process's store: a notifier child, another server) appending
    to the log, even to this writer's own stream, sends this writer's next batch neither down
    a wrong version nor down the locked path: runlog_append reports the head and the batch's
    streams as it found them, and the batch goes in one statement on those. A conflict is
    still found under the lock."""
    def paths() -> tuple[float, ...]:
        return tuple(sample("runlog_eventstore_batch_paths_total", path=p)
                     for p in ("one_statement", "one_statement_retried", "locked"))

    async def counted(append) -> tuple[tuple[float, ...], object]:  # type: ignore[no-untyped-def]
        before = paths()
        try:
            outcome = await append
        except ConcurrencyError as exc:
            outcome = exc
        return tuple(a - b for a, b in zip(paths(), before)), outcome

    async with open_store(pg_url) as mine, open_store(pg_url) as other:
        stream, own = f"shared-{uuid4()}", f"mine-{uuid4()}"
        await mine.append(stream, [new()], expected_version=0)  # the locked path: no head known yet
        await mine.append(own, [new()], expected_version=0)

        await other.append(stream, [new()])  # version 2, which `mine` has not seen
        same, (recorded,) = await counted(mine.append(stream, [new()]))
        assert same == (0, 1, 0) and recorded.version == 3  # type: ignore[attr-defined]

        await other.append(f"other-{uuid4()}", [new()])
        apart, (recorded,) = await counted(mine.append(own, [new()], expected_version=1))
        assert apart == (0, 1, 0) and recorded.version == 2  # type: ignore[attr-defined]
        assert recorded.position == await mine.head()  # type: ignore[attr-defined]

        await other.append(own, [new()])  # version 3: an append expecting 2 conflicts
        refused, error = await counted(mine.append(own, [new()], expected_version=2))
        assert isinstance(error, ConcurrencyError) and error.actual == 3
        assert refused[2] == 1  # the conflict is found under the lock

        assert [e.version for e in await _read_stream(mine, stream)] == [1, 2, 3]
        assert [e.version for e in await _read_stream(mine, own)] == [1, 2, 3]


async def _read_stream(store, stream: str) -> list:  # type: ignore[no-untyped-def]
    return [e async for e in store.read_stream(stream)]
