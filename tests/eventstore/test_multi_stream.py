"""append_streams, run once per backend: several streams in one append, all of them or none."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from runlog.eventstore import NO_STREAM, ConcurrencyError, InvalidEvent, NewEvent, StreamAppend, open_store


def new(data: bytes = b"{}") -> NewEvent:
    return NewEvent(type="thing.happened", data=data, id=uuid4())


async def stream(store, stream_id: str) -> list[bytes]:
    return [e.data async for e in store.read_stream(stream_id)]


async def test_appends_to_several_streams_in_the_order_given(store):
    await store.append("b", [new(b"b1")])
    recorded = await store.append_streams([
        StreamAppend("a", [new(b"a1"), new(b"a2")], NO_STREAM),
        StreamAppend("empty", []),
        StreamAppend("b", [new(b"b2")], 1),
        StreamAppend("c", [new(b"c1")]),
    ])
    assert [[(r.stream_id, r.version, r.position, r.data) for r in part] for part in recorded] == [
        [("a", 1, 2, b"a1"), ("a", 2, 3, b"a2")], [], [("b", 2, 4, b"b2")], [("c", 1, 5, b"c1")],
    ]
    assert (await stream(store, "a"), await stream(store, "b"), await stream(store, "c")) == (
        [b"a1", b"a2"], [b"b1", b"b2"], [b"c1"],
    )
    assert [e.position async for e in store.read_all()] == [1, 2, 3, 4, 5]


async def test_a_conflict_on_one_stream_stores_nothing_of_the_others(store):
    await store.append("taken", [new(b"first")])
    with pytest.raises(ConcurrencyError) as info:
        await store.append_streams([
            StreamAppend("fresh", [new(b"x")], NO_STREAM),
            StreamAppend("taken", [new(b"y")], NO_STREAM),
            StreamAppend("also-fresh", [new(b"z")]),
        ])
    assert (info.value.stream_id, info.value.expected, info.value.actual) == ("taken", 0, 1)
    assert await store.head() == 1
    assert (await stream(store, "fresh"), await stream(store, "taken"), await stream(store, "also-fresh")) == (
        [], [b"first"], [],
    )
    # The rejected ids were not stored either: appended again, on their own, they are new.
    (again,) = await store.append("fresh", [new(b"x")], expected_version=NO_STREAM)
    assert (again.position, again.version) == (2, 1)


async def test_a_rejected_multi_stream_append_leaves_its_batch_neighbours_gap_free(store):
    await store.append("taken", [new()])
    # Queued together, so one group commit plans them: the rejected group sits between appends
    # that succeed, and must leave neither a hole in the positions nor a version behind.
    singles = [store.append(f"single-{i}", [new(), new()]) for i in range(6)]
    rejected = store.append_streams([
        StreamAppend("single-0", [new()]), StreamAppend("taken", [new()], NO_STREAM),
    ])
    accepted = store.append_streams([StreamAppend("single-1", [new()]), StreamAppend("new", [new()], NO_STREAM)])
    more = [store.append(f"single-{i}", [new()]) for i in range(6)]
    results = await asyncio.gather(*singles, rejected, accepted, *more, return_exceptions=True)
    assert isinstance(results[6], ConcurrencyError) and results[6].stream_id == "taken"
    assert not any(isinstance(r, BaseException) for i, r in enumerate(results) if i != 6)
    assert [e.position async for e in store.read_all()] == list(range(1, 1 + 1 + 12 + 2 + 6))
    versions = {f"single-{i}": [e.version async for e in store.read_stream(f"single-{i}")] for i in range(6)}
    assert versions["single-0"] == [1, 2, 3] and versions["single-1"] == [1, 2, 3, 4]
    assert len(await stream(store, "new")) == 1


async def test_appending_the_same_events_again_returns_what_is_stored(store):
    parts = [StreamAppend("a", [new(b"1")], NO_STREAM), StreamAppend("b", [new(b"2"), new(b"3")], NO_STREAM)]
    first = await store.append_streams(parts)
    again = await store.append_streams(parts)  # a retry: nothing new, so no version check
    assert again == first
    assert await store.head() == 3


async def test_of_concurrent_multi_stream_appends_on_one_new_stream_exactly_one_wins(store):
    results = await asyncio.gather(
        *(
            store.append_streams([StreamAppend(f"own-{i}", [new()]), StreamAppend("shared", [new()], NO_STREAM)])
            for i in range(20)
        ),
        return_exceptions=True,
    )
    winners = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for i, r in enumerate(results) if i not in winners)
    for i in range(20):
        assert len(await stream(store, f"own-{i}")) == (1 if i in winners else 0)
    assert await store.head() == 2


@pytest.mark.parametrize(
    ("appends", "message"),
    [
        ([StreamAppend("a", [new()]), StreamAppend("a", [new()])], "appears twice"),
        ("not a list", "sequence of StreamAppend"),
        ([StreamAppend("a", [new()]), StreamAppend("", [new()])], "stream id must not be empty"),
        ([StreamAppend("a", [new()]), StreamAppend("b", [new()], -1)], "expected_version"),
    ],
)
async def test_invalid_multi_stream_appends_are_refused_and_store_nothing(store, appends, message):
    with pytest.raises(InvalidEvent, match=message):
        await store.append_streams(appends)
    assert await store.head() == 0


async def test_one_event_id_on_two_streams_is_refused(store):
    shared = new()
    with pytest.raises(InvalidEvent, match="appears twice"):
        await store.append_streams([StreamAppend("a", [shared]), StreamAppend("b", [shared])])
    assert await store.head() == 0


async def test_a_stream_another_store_made_rejects_the_whole_append(store_url):
    # b has never seen "made-by-a": PostgreSQL's writer guesses it new, its insert breaks the
    # stream's unique version, and the one statement holding the group must be undone whole.
    async with open_store(store_url) as a, open_store(store_url) as b:
        await b.append("warm", [new()])
        await a.append("made-by-a", [new()])
        with pytest.raises(ConcurrencyError) as info:
            await b.append_streams([
                StreamAppend("b-own", [new()], NO_STREAM), StreamAppend("made-by-a", [new()], NO_STREAM),
            ])
        assert (info.value.stream_id, info.value.actual) == ("made-by-a", 1)
        assert await stream(b, "b-own") == [] and len(await stream(b, "made-by-a")) == 1
        recorded = await b.append_streams([StreamAppend("b-own", [new()], NO_STREAM), StreamAppend("made-by-a", [new()], 1)])
        assert [[(r.position, r.version) for r in part] for part in recorded] == [[(3, 1)], [(4, 2)]]
