"""Inline projections run inside the append's transaction, on both backends."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, RowChanges, StorageUnavailable, Table, WriteRejected, open_store

CREATE = "CREATE TABLE stream_counts (stream_id TEXT PRIMARY KEY, events INTEGER NOT NULL, last_position INTEGER NOT NULL)"
COUNTS = Table("stream_counts", ("stream_id", "events", "last_position"), key=("stream_id",))


class StreamCounts:
    """Counts events per stream; refuses events of type 'poison' to prove atomicity."""

    name = "stream_counts"
    tables = (COUNTS,)

    def __init__(self) -> None:
        self.calls = 0

    async def changes(self, tx, events) -> RowChanges:
        self.calls += 1
        if any(e.type == "poison" for e in events):
            raise RuntimeError("this projection cannot take poison")
        counts: dict[str, int] = {}
        for stream_id in {e.stream_id for e in events}:
            rows = await tx.fetch("SELECT events FROM stream_counts WHERE stream_id = ?", stream_id)
            counts[stream_id] = rows[0][0] if rows else 0
        changes = RowChanges()
        for e in events:
            counts[e.stream_id] += 1
            changes.upsert(COUNTS, (e.stream_id, counts[e.stream_id], e.position))
        return changes


def new(type_: str = "t") -> NewEvent:
    return NewEvent(type=type_, data=b"{}", id=uuid4())


async def counts(store) -> dict[str, tuple[int, int]]:
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT stream_id, events, last_position FROM stream_counts WHERE events > ?", 0)
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
async def projected(store_url):
    async with open_store(store_url) as setup, setup.reading() as tx:
        await tx.execute(CREATE)
    projection = StreamCounts()
    async with open_store(store_url, projections=[projection]) as store:
        yield store, projection


async def test_a_read_right_after_an_append_sees_the_projection(projected):
    store, _ = projected
    await store.append("a", [new(), new()])
    assert await counts(store) == {"a": (2, 2)}
    await store.append("b", [new()])
    assert await counts(store) == {"a": (2, 2), "b": (1, 3)}


async def test_concurrent_appends_are_projected_exactly_once(projected):
    store, projection = projected
    await asyncio.gather(*(store.append(f"s{i % 4}", [new()]) for i in range(40)))
    assert await counts(store) == {f"s{i}": (10, await _last(store, f"s{i}")) for i in range(4)}
    assert projection.calls < 40  # batched: one call per transaction, not per append


async def _last(store, stream: str) -> int:
    return [e.position async for e in store.read_stream(stream)][-1]


async def test_a_failing_projection_fails_the_append_and_stores_nothing_of_it(projected):
    store, _ = projected
    results = await asyncio.gather(
        store.append("ok1", [new()]),
        store.append("bad", [new(), new("poison")]),
        store.append("ok2", [new()]),
        return_exceptions=True,
    )
    assert isinstance(results[1], RuntimeError)
    assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
    assert [e.stream_id async for e in store.read_all()] == ["ok1", "ok2"]
    assert await counts(store) == {"ok1": (1, 1), "ok2": (1, 2)}


async def test_retried_events_are_not_projected_twice(projected):
    store, _ = projected
    event = new()
    await store.append("a", [event])
    await store.append("a", [event])
    assert await counts(store) == {"a": (1, 1)}


CREATE_CHECKED = "CREATE TABLE checked_counts (stream_id TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))"
CHECKED = Table("checked_counts", ("stream_id", "n"), key=("stream_id",))


class CheckedCounts:
    """Writes n = -1 for events of type 'negative': the database's CHECK rule refuses it."""

    name = "checked_counts"
    tables = (CHECKED,)

    async def changes(self, tx, events) -> RowChanges:
        changes = RowChanges()
        for e in events:
            changes.upsert(CHECKED, (e.stream_id, -1 if e.type == "negative" else 1))
        return changes


async def test_a_write_the_database_refuses_fails_that_append_alone_and_never_as_unavailable(store_url):
    # The bad append shares a batch with good ones (all queued before the writer wakes): the
    # database's refusal must fail it alone, as WriteRejected, and commit its neighbours.
    async with open_store(store_url) as setup, setup.reading() as tx:
        await tx.execute(CREATE_CHECKED)
    async with open_store(store_url, projections=[CheckedCounts()]) as store:
        results = await asyncio.gather(
            store.append("ok1", [new()]),
            store.append("bad", [new("negative")]),
            store.append("ok2", [new()]),
            return_exceptions=True,
        )
        assert isinstance(results[1], WriteRejected), results[1]
        assert not isinstance(results[1], StorageUnavailable)
        assert "refused the write" in str(results[1])
        assert not isinstance(results[0], BaseException) and not isinstance(results[2], BaseException)
        assert [e.stream_id async for e in store.read_all()] == ["ok1", "ok2"]
        async with store.reading() as tx:
            rows = await tx.fetch("SELECT stream_id, n FROM checked_counts ORDER BY stream_id")
        assert [tuple(r) for r in rows] == [("ok1", 1), ("ok2", 1)]
        # The store keeps working after the refusal.
        await store.append("ok3", [new()])
        assert await store.head() == 3


class CountsOfOneType(StreamCounts):
    """Declares that it folds only 'counted' events, one at a time (event_types, per_event)."""

    event_types = frozenset({"counted"})
    per_event = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def changes(self, tx, events) -> RowChanges:
        self.seen.extend(e.type for e in events)
        return await super().changes(tx, events)


async def test_a_projection_declaring_its_event_types_is_handed_only_those(store_url):
    async with open_store(store_url) as setup, setup.reading() as tx:
        await tx.execute(CREATE)
    projection = CountsOfOneType()
    async with open_store(store_url, projections=[projection]) as store:
        await store.append("a", [new("other"), new("counted"), new("other")])
        await store.append("b", [new("other")])  # a batch with none of its types: not called at all
        assert projection.seen == ["counted"]
        assert projection.calls == 1
        assert await counts(store) == {"a": (1, 2)}


class Remembering(StreamCounts):
    """Records when the store tells it to forget; prepares (nothing: its counts are not the
    point here) unless poisoned, so that PostgreSQL's one-statement append on its guessed head
    is taken too."""

    def __init__(self) -> None:
        super().__init__()
        self.forgets: list[bool] = []

    def prepare(self, rows) -> RowChanges | None:
        return None if any(row.event.type == "poison" for row in rows) else RowChanges()

    def prepared_stored(self) -> None:
        pass

    def forget(self, *, failed: bool) -> None:
        self.forgets.append(failed)


async def test_projections_forget_after_a_failed_batch_or_another_processs_append_and_only_then(store_url):
    # One head-seen rule on both backends: the head a batch finds under the append lock is not
    # where this writer left it after opening (nothing known), a failure, or another's append.
    async with open_store(store_url) as setup, setup.reading() as tx:
        await tx.execute(CREATE)
    remembering = Remembering()
    async with open_store(store_url, projections=[remembering]) as mine, open_store(store_url) as other:
        await mine.append("a", [new()])
        assert remembering.forgets == [False]  # a new writer knows no head
        await mine.append("a", [new()])
        await mine.append("b", [new()])
        assert remembering.forgets == [False]  # its own appends: the head is where it left it
        await other.append("c", [new()])
        await mine.append("a", [new()])
        assert remembering.forgets == [False, False]  # another writer appended in between
        with pytest.raises(RuntimeError):
            await mine.append("a", [new("poison")])
        assert remembering.forgets == [False, False, True]
        await mine.append("b", [new()])
        assert remembering.forgets == [False, False, True, False]  # nothing known after a failure
        await mine.append("b", [new()])
        assert remembering.forgets == [False, False, True, False]
        assert [e.stream_id async for e in mine.read_all()] == ["a", "a", "b", "c", "a", "b", "b"]


class PreparesOneType(StreamCounts):
    """Folds only 'counted' events and prepares its changes without reading (PostgreSQL's
    one-statement append); records every prepare and every prepared_stored."""

    event_types = frozenset({"counted"})

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[list[str]] = []
        self.stored = 0
        self._next: dict[str, int] = {}

    def prepare(self, rows) -> RowChanges | None:
        self.prepared.append([row.event.type for row in rows])
        changes = RowChanges()
        for row in rows:
            if row.event.type in self.event_types:
                # The counts of streams this test starts empty: the stream's count so far.
                n = self._next[row.stream_id] = self._next.get(row.stream_id, 0) + 1
                changes.upsert(COUNTS, (row.stream_id, n, row.position))
        return changes

    def prepared_stored(self) -> None:
        self.stored += 1


@pytest.mark.postgres
async def test_a_batch_without_a_projections_event_types_is_neither_prepared_for_it_nor_told_stored(pg_url):
    async with open_store(pg_url) as setup, setup.reading() as tx:
        await tx.execute(CREATE)
    projection = PreparesOneType()
    async with open_store(pg_url, projections=[projection]) as store:
        await store.append("warm-up", [new("other")])  # the locked path: no head known yet
        assert projection.calls == 0  # folded nothing of it

        await store.append("a", [new("other")])  # one statement, without asking the projection
        assert (projection.prepared, projection.stored) == ([], 0)

        await store.append("a", [new("counted"), new("other")])
        assert (projection.prepared, projection.stored) == ([["counted", "other"]], 1)
        assert await counts(store) == {"a": (1, 3)}
        assert projection.calls == 0  # prepared and written in the append's statement
