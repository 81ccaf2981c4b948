"""The store's contract, run once per backend: every backend must pass every test here."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

import pytest

from runlog.eventstore import (
    NO_STREAM,
    ConcurrencyError,
    InvalidEvent,
    NewEvent,
    StorageUnavailable,
    StoreClosed,
    open_store,
)

from .head_reads import counting_head_reads


def new(type_: str = "thing.happened", data: bytes = b'{"n":1}') -> NewEvent:
    return NewEvent(type=type_, data=data, id=uuid4())


async def test_append_returns_recorded_events_with_positions_and_versions(store):
    events = [new(data=b"1"), new(data=b"2")]
    recorded = await store.append("flow-run-a", events)
    assert [r.position for r in recorded] == [1, 2]
    assert [r.version for r in recorded] == [1, 2]
    assert [r.id for r in recorded] == [e.id for e in events]
    assert [r.data for r in recorded] == [b"1", b"2"]
    assert all(r.stream_id == "flow-run-a" and r.type == "thing.happened" for r in recorded)
    # recorded_at is the database's time of the append (the PostgreSQL server's clock, which need
    # not agree with this process's): an aware UTC time, returned as it is stored.
    assert all(r.recorded_at.utcoffset() == timedelta(0) for r in recorded)
    assert [r.recorded_at for r in recorded] == [r.recorded_at async for r in store.read_stream("flow-run-a")]
    more = await store.append("flow-run-b", [new()])
    assert (more[0].position, more[0].version) == (3, 1)
    assert await store.head() == 3


async def test_head_is_zero_on_an_empty_store(store):
    assert await store.head() == 0
    assert [e async for e in store.read_all()] == []


async def test_head_with_finds_the_first_event_of_a_type_past_a_position(store, monkeypatch):
    assert await store.head_with(0, "automation.") == (0, None)
    await store.append("flow-run-a", [new("flow_run.created"), new("flow_run.state_changed")])
    assert await store.head_with(0, "automation.") == (2, None)
    await store.append("automation-a", [new("automation.created")])
    await store.append("flow-run-a", [new("flow_run.state_changed")])
    await store.append("automation-a", [new("automation.updated")])
    assert await store.head_with(2, "automation.") == (5, 3)
    assert await store.head_with(3, "automation.") == (5, 5)
    assert await store.head_with(5, "automation.") == (5, None)
    assert await store.head_with(0, "flow_run.") == (5, 1)
    # Past the most it looks at, it answers the first that may be one, without looking.
    import runlog.eventstore.postgres as postgres_module
    import runlog.eventstore.sqlite as sqlite_module

    monkeypatch.setattr(postgres_module, "HEAD_WITH_LOOKS_AT_MOST", 1)
    monkeypatch.setattr(sqlite_module, "HEAD_WITH_LOOKS_AT_MOST", 1)
    assert await store.head_with(1, "automation.") == (5, 2)
    assert await store.head_with(2, "automation.") == (5, 3)  # found within the one it looks at


async def test_read_stream_returns_only_that_stream_in_version_order(store):
    await store.append("s1", [new(data=b"a")])
    await store.append("s2", [new(data=b"x")])
    await store.append("s1", [new(data=b"b"), new(data=b"c")])
    got = [e async for e in store.read_stream("s1")]
    assert [e.data for e in got] == [b"a", b"b", b"c"]
    assert [e.version for e in got] == [1, 2, 3]
    assert [e.data for e in [e async for e in store.read_stream("s1", after_version=2)]] == [b"c"]
    assert [e async for e in store.read_stream("nobody")] == []


async def test_read_all_pages_through_more_than_one_page(store):
    for chunk in range(3):
        await store.append(f"s{chunk}", [new(data=str(i).encode()) for i in range(1000)])
    positions = [e.position async for e in store.read_all()]
    assert positions == list(range(1, 3001))
    assert [e.position async for e in store.read_all(after=2990)] == list(range(2991, 3001))
    assert [e.position async for e in store.read_all(after=10, limit=5)] == [11, 12, 13, 14, 15]


async def test_append_is_atomic_when_one_event_is_invalid(store):
    with pytest.raises(InvalidEvent):
        await store.append("s", [new(), NewEvent(type="", data=b"", id=uuid4())])
    assert await store.head() == 0


async def test_expected_version_no_stream_fails_when_the_stream_exists(store):
    await store.append("s", [new()], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError) as info:
        await store.append("s", [new()], expected_version=NO_STREAM)
    assert (info.value.stream_id, info.value.expected, info.value.actual) == ("s", 0, 1)
    assert "'s'" in str(info.value) and "version 1" in str(info.value)


async def test_expected_version_must_equal_the_last_version(store):
    await store.append("s", [new(), new()])
    with pytest.raises(ConcurrencyError) as info:
        await store.append("s", [new()], expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    recorded = await store.append("s", [new()], expected_version=2)
    assert recorded[0].version == 3
    with pytest.raises(ConcurrencyError):
        await store.append("other", [new()], expected_version=5)


async def test_twenty_concurrent_appends_with_one_expected_version_exactly_one_wins(store):
    await store.append("contested", [new()])
    results = await asyncio.gather(
        *(store.append("contested", [new()], expected_version=1) for _ in range(20)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 19 and all(isinstance(e, ConcurrencyError) for e in losers)
    assert [e.version async for e in store.read_stream("contested")] == [1, 2]


async def test_appending_a_stored_id_again_returns_the_stored_record_and_adds_nothing(store):
    event = new(data=b"once")
    first = await store.append("s", [event], expected_version=NO_STREAM)
    # A retry of the same request (same ids, same expected version) is a no-op.
    again = await store.append("s", [event], expected_version=NO_STREAM)
    assert again == first
    # So is a retry that names the id under another stream or payload: the id decides.
    other = await store.append("elsewhere", [NewEvent(type="x", data=b"other", id=event.id)])
    assert other == first
    assert await store.head() == 1


async def test_a_partly_stored_append_stores_only_the_new_events(store):
    a, b = new(data=b"a"), new(data=b"b")
    await store.append("s", [a])
    recorded = await store.append("s", [a, b], expected_version=1)
    assert [(r.id, r.version) for r in recorded] == [(a.id, 1), (b.id, 2)]
    assert await store.head() == 2


async def test_concurrent_retries_of_one_event_store_it_once(store):
    event = new()
    results = await asyncio.gather(*(store.append("s", [event]) for _ in range(10)))
    assert all(r == results[0] for r in results)
    assert await store.head() == 1


async def test_concurrent_appenders_get_distinct_contiguous_positions(store):
    async def writer(n: int) -> list[int]:
        out = []
        for _ in range(25):
            out += [r.position for r in await store.append(f"w{n}", [new()])]
        return out

    results = await asyncio.gather(*(writer(n) for n in range(16)))
    positions = sorted(p for r in results for p in r)
    assert positions == list(range(1, 16 * 25 + 1))
    for n in range(16):
        assert [e.version async for e in store.read_stream(f"w{n}")] == list(range(1, 26))


@pytest.mark.parametrize(
    ("stream_id", "events", "expected", "message"),
    [
        ("", [new()], None, "stream id must not be empty"),
        ("a\x00b", [new()], None, "NUL"),
        ("bad\ud800", [new()], None, "not valid Unicode"),
        (42, [new()], None, "stream id must be a string"),
        ("s", [NewEvent(type="t\x00", data=b"", id=uuid4())], None, "NUL"),
        ("s", [NewEvent(type="t", data="text", id=uuid4())], None, "data must be bytes"),  # type: ignore[arg-type]
        ("s", [NewEvent(type="t", data=b"", id="nope")], None, "id must be a UUID"),  # type: ignore[arg-type]
        ("s", ["not an event"], None, "NewEvent"),
        ("s", [new()], -1, "expected_version"),
        ("s", [new()], True, "expected_version"),
    ],
)
async def test_invalid_appends_are_refused_with_a_clear_error(store, stream_id, events, expected, message):
    with pytest.raises(InvalidEvent, match=message):
        await store.append(stream_id, events, expected_version=expected)
    assert await store.head() == 0
    # The store keeps working after refusing.
    assert (await store.append("fine", [new()]))[0].position == 1


async def test_the_same_id_twice_in_one_append_is_refused(store):
    event = new()
    with pytest.raises(InvalidEvent, match="twice"):
        await store.append("s", [event, event])


async def test_one_bad_append_in_a_batch_does_not_fail_its_neighbours(store):
    """Concurrent appends share a transaction; a conflict in one must not roll back the rest."""
    await store.append("taken", [new()])
    results = await asyncio.gather(
        *(store.append(f"ok{i}", [new()]) for i in range(10)),
        store.append("taken", [new()], expected_version=NO_STREAM),
        *(store.append(f"ok{i}", [new()]) for i in range(10, 20)),
        return_exceptions=True,
    )
    assert isinstance(results[10], ConcurrencyError)
    assert sum(not isinstance(r, BaseException) for r in results) == 20
    assert await store.head() == 21


async def test_unicode_and_binary_payloads_round_trip(store):
    data = bytes(range(256))
    await store.append("flow-run-ünïcødé ✓", [new("type.✓", data)])
    (event,) = [e async for e in store.read_all()]
    assert (event.stream_id, event.type, event.data) == ("flow-run-ünïcødé ✓", "type.✓", data)


async def test_subscribe_catches_up_then_follows_new_events_on_a_wakeup(store):
    # With the fallback poll pushed far out, only a wake-up can deliver the new events.
    store.poll_interval = 60
    await store.append("s", [new(data=b"old")])
    seen: list[bytes] = []
    caught_up = asyncio.Event()

    async def follow() -> None:
        async for event in store.subscribe(after=0):
            seen.append(event.data)
            caught_up.set()
            if len(seen) == 3:
                return

    task = asyncio.create_task(follow())
    await asyncio.wait_for(caught_up.wait(), 10)
    await store.append("s", [new(data=b"new1")])
    await store.append("t", [new(data=b"new2")])
    await asyncio.wait_for(task, 10)
    assert seen == [b"old", b"new1", b"new2"]


@pytest.mark.parametrize("wait", [lambda store: anext(store.subscribe()), lambda store: store.grown(0)],
                         ids=["subscribe", "grown"])
async def test_a_cancelled_subscriber_ends(store, wait):
    # Cancelled while it waits for the log to grow (not before it got there), it ends.
    store.poll_interval = 60
    task = asyncio.create_task(wait(store))
    async with asyncio.timeout(10):
        while store.subscribers_waiting == 0:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert store.subscribers_waiting == 0


async def test_grown_returns_once_the_log_holds_an_event_past_the_position(store):
    await store.append("s", [new(), new()])
    async with asyncio.timeout(10):
        await store.grown(1)  # position 2 is past it: at once

    store.poll_interval = 60  # only the append's wake-up can end the wait in time
    waiting = asyncio.create_task(store.grown(2))
    async with asyncio.timeout(10):
        while store.subscribers_waiting == 0:
            await asyncio.sleep(0.01)
    assert not waiting.done()
    await store.append("t", [new()])
    await asyncio.wait_for(waiting, 10)
    assert store.subscribers_waiting == 0


async def test_grown_past_what_this_process_appended_reads_no_head(store, monkeypatch):
    await store.append("s", [new(), new()])
    reads = counting_head_reads(store, monkeypatch)
    async with asyncio.timeout(10):
        await store.grown(1)  # position 2 was committed by this store's writer
    assert reads == []
    store.poll_interval = 0.01
    store.head_known_for = 0  # the batch's head is not taken as known: see the test below
    waiting = asyncio.create_task(store.grown(2))  # nothing past it yet: the head is read
    async with asyncio.timeout(10):
        while not reads:
            await asyncio.sleep(0.01)
    assert not waiting.done()
    await store.append("t", [new()])
    await asyncio.wait_for(waiting, 10)


async def test_grown_just_after_a_batch_found_the_head_reads_none(store, monkeypatch):
    """A follower starting to wait just after this writer's batch found the head (under the
    append lock) takes it as known: no read, and this writer's next append ends the wait."""
    await store.append("s", [new(), new()])
    store.head_known_for = 3600  # "just after", however slow the machine
    store.poll_interval = 60
    reads = counting_head_reads(store, monkeypatch)
    waiting = asyncio.create_task(store.grown(2))
    async with asyncio.timeout(10):
        while store.subscribers_waiting == 0:
            await asyncio.sleep(0.01)
    await store.append("t", [new()])
    await asyncio.wait_for(waiting, 10)
    assert reads == []


async def test_a_failed_batch_leaves_the_head_unknown_to_a_follower(store, monkeypatch):
    """A batch that failed (its outcome unknown: a commit may fail after the database made
    it) tells followers nothing: one starting to wait reads the head (SQLite), or has heard
    the commit announced (PostgreSQL)."""
    await store.append("s", [new()])
    store.head_known_for = 3600
    store.poll_interval = 60
    write_batch = store._write_batch

    async def failing(requests):
        await write_batch(requests)  # the head found, the batch committed, and then the error
        raise StorageUnavailable("the connection dropped at the commit")

    monkeypatch.setattr(store, "_write_batch", failing)
    with pytest.raises(StorageUnavailable):
        await store.append("t", [new()])
    monkeypatch.setattr(store, "_write_batch", write_batch)
    async with asyncio.timeout(10):  # not the poll's 60 s: the head is read (SQLite) or was heard
        await store.grown(1)  # position 2 is in the log, though this writer cannot know it


async def test_subscribe_after_a_position_skips_what_came_before(store):
    await store.append("s", [new(data=b"1"), new(data=b"2"), new(data=b"3")])
    got = []
    async for event in store.subscribe(after=2):
        got.append(event.position)
        break
    assert got == [3]


async def test_a_subscriber_sees_every_event_of_concurrent_writers_once_in_order(store):
    total = 16 * 20
    seen: list[int] = []

    async def follow() -> None:
        async for event in store.subscribe():
            seen.append(event.position)
            if len(seen) == total:
                return

    reader = asyncio.create_task(follow())

    async def writer(n: int) -> None:
        for _ in range(20):
            await store.append(f"w{n}", [new()])

    await asyncio.gather(*(writer(n) for n in range(16)))
    await asyncio.wait_for(reader, 10)
    assert seen == list(range(1, total + 1))


async def test_use_after_close_raises_store_closed_and_close_is_idempotent(store_url):
    store = open_store(store_url)
    async with store:
        await store.append("s", [new()])
    await store.aclose()
    with pytest.raises(StoreClosed):
        await store.append("s", [new()])
    with pytest.raises(StoreClosed):
        await store.head()
    with pytest.raises(StoreClosed):
        [e async for e in store.read_all()]


async def test_close_commits_appends_already_queued(store_url):
    store = await open_store(store_url)
    pending = [asyncio.create_task(store.append(f"s{i}", [new()])) for i in range(50)]
    await asyncio.sleep(0)  # let every append reach the writer's queue
    await store.aclose()
    results = await asyncio.gather(*pending)
    assert len(results) == 50
    async with open_store(store_url) as reopened:
        assert await reopened.head() == 50


async def test_events_survive_reopening_the_store(store_url):
    async with open_store(store_url) as store:
        recorded = await store.append("s", [new(data=b"kept")])
    async with open_store(store_url) as store:
        assert [e async for e in store.read_all()] == recorded
        more = await store.append("s", [new()], expected_version=1)
        assert (more[0].position, more[0].version) == (2, 2)


async def test_a_reopened_store_checks_streams_it_has_not_seen_against_the_log(store_url):
    # A new writer knows no stream versions (PostgreSQL's guesses a stream it does not
    # remember is new): every expectation must still be checked against what is stored.
    first = new()
    async with open_store(store_url) as store:
        await store.append("s", [first, new()])
        await store.append("t", [new()])
    async with open_store(store_url) as store:
        await store.append("u", [new()])  # the writer has seen the log's head now
        with pytest.raises(ConcurrencyError) as stale:
            await store.append("s", [new()], expected_version=1)
        assert (stale.value.expected, stale.value.actual) == (1, 2)
        with pytest.raises(ConcurrencyError) as exists:
            await store.append("t", [new()], expected_version=NO_STREAM)
        assert exists.value.actual == 1
        (third,) = await store.append("s", [new()], expected_version=2)
        (second,) = await store.append("t", [new()])  # no expectation: after what is stored
        assert [(e.stream_id, e.version, e.position) for e in (third, second)] == [("s", 3, 5), ("t", 2, 6)]
        (again,) = await store.append("v", [first])  # stored already, under "s": returned as stored
        assert (again.stream_id, again.version, again.position) == ("s", 1, 1)
        assert [e.position async for e in store.read_all()] == list(range(1, 7))


async def test_read_event_finds_a_stored_event_by_id(store):
    a, b = new(data=b"a"), new(data=b"b")
    recorded = await store.append("s", [a, b])
    assert await store.read_event(b.id) == recorded[1]
    assert await store.read_event(uuid4()) is None


async def test_two_stores_on_one_database_see_each_others_appends_in_versions_ids_and_positions(store_url):
    # Each store's writer plans on what it last saw; the other store's appends must be noticed
    # (PostgreSQL's writer sends its guesses and falls back when they are wrong).
    async with open_store(store_url) as a, open_store(store_url) as b:
        await a.append("s", [new()])
        await a.append("other", [new()])
        await b.append("s", [new()])  # "s" is at version 2 now, unknown to a
        shared = new()
        await b.append("t", [shared])

        with pytest.raises(ConcurrencyError) as stale:
            await a.append("s", [new()], expected_version=1)
        assert (stale.value.expected, stale.value.actual) == (1, 2)
        (third,) = await a.append("s", [new()], expected_version=2)
        assert (third.version, third.position) == (3, 5)

        (again,) = await a.append("t", [shared])  # stored by b: returned, not duplicated
        assert (again.position, again.version) == (4, 1)
        await b.append("u", [new()])
        (after,) = await a.append("u", [new()], expected_version=1)
        assert (after.position, after.version) == (7, 2)

        assert [e.position for e in [x async for x in a.read_all()]] == list(range(1, 8))
        assert [e.version for e in [x async for x in b.read_stream("s")]] == [1, 2, 3]


async def test_stream_version_is_the_last_version_or_zero(store):
    assert await store.stream_version("s") == 0
    await store.append("s", [new(), new()])
    await store.append("t", [new()])
    await store.append("s", [new()])
    assert (await store.stream_version("s"), await store.stream_version("t")) == (3, 1)


async def test_read_next_serves_what_this_process_appended_and_reads_the_rest(store, monkeypatch):
    """A follower's page comes from the events this process committed last when they hold the
    next position, as the log holds them; from the database otherwise."""
    first = await store.append("s", [new(data=b"1"), new(data=b"2"), new(data=b"3")])
    second = await store.append("t", [new(data=b"4")])
    stored = [r async for r in store.read_all()]
    reads: list[tuple[int, int]] = []
    read_page = store._read_page

    async def counted(after: int, limit: int):
        reads.append((after, limit))
        return await read_page(after, limit)

    monkeypatch.setattr(store, "_read_page", counted)
    assert await store.read_next(0, 10) == stored == first + second
    assert await store.read_next(1, 2) == stored[1:3]
    assert reads == []
    assert await store.read_next(4, 10) == []  # past what it holds: read
    assert reads == [(4, 10)]


async def test_read_next_never_skips_what_another_process_appended_between_this_one_s_appends(store_url):
    async with open_store(store_url) as this, open_store(store_url) as other:
        await this.append("s", [new(data=b"1"), new(data=b"2")])
        await other.append("o", [new(data=b"3")])
        await this.append("s", [new(data=b"4")])
        assert [r.data for r in await this.read_next(0, 10)] == [b"1", b"2", b"3", b"4"]
        assert [r.data for r in await this.read_next(2, 10)] == [b"3", b"4"]
        assert [r.data for r in await this.read_next(3, 10)] == [b"4"]
