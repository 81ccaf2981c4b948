"""The command executor on both backends: decide against the current view, append with its
version expected, decide again after losing a race, give up with Busy, build records once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from runlog.commands.clock import ManualClock
from runlog.commands.errors import Busy
from runlog.commands.executor import Command, Decided, Executor, backoff_seconds, no_view
from runlog.eventstore import ConcurrencyError
from runlog.projections.cache import ViewCache
from runlog.schema import events as catalogue

T0 = datetime(2026, 3, 1, tzinfo=UTC)
FLOW = uuid.UUID(int=7)
STREAM = f"flow-{FLOW}"


@dataclass(frozen=True)
class Counter:
    """A test view: how many updates the stream holds, and its version."""

    count: int
    version: int


def evolve(view: Counter | None, event: object, version: int) -> Counter:
    assert isinstance(event, catalogue.FlowUpdated)
    return Counter((view.count if view else 0) + 1, version)


def bump(view: Counter | None, now: datetime) -> Decided[int]:
    count = (view.count if view else 0) + 1
    return Decided([catalogue.FlowUpdated(flow_id=FLOW, changes={"n": count}, updated=now)], count)


async def load(store) -> Counter | None:
    view = None
    async for record in store.read_stream(STREAM):
        view = evolve(view, catalogue.decode(record.data), record.version)
    return view


async def test_a_command_is_decided_with_the_clocks_time_and_appended_after_the_version_it_read(store) -> None:
    executor = Executor(store, clock=ManualClock(T0))
    first = await executor.execute(STREAM, load=lambda: load(store), decide=bump, evolve=evolve)
    second = await executor.execute(STREAM, load=lambda: load(store), decide=bump, evolve=evolve)
    assert (first.result, second.result) == (1, 2)
    assert second.view == Counter(2, 2) and second.wrote
    stored = [catalogue.decode(r.data) async for r in store.read_stream(STREAM)]
    assert [e.changes for e in stored] == [{"n": 1}, {"n": 2}]
    assert all(e.updated == T0 for e in stored)


async def test_concurrent_commands_on_one_stream_are_each_decided_from_a_different_state(store) -> None:
    executor = Executor(store, clock=ManualClock(T0))
    outcomes = await asyncio.gather(*(
        executor.execute(STREAM, load=lambda: load(store), decide=bump, evolve=evolve) for _ in range(20)
    ))
    assert sorted(o.result for o in outcomes) == list(range(1, 21))  # no two from the same prior state
    assert await load(store) == Counter(20, 20)


async def test_a_decision_without_events_writes_nothing(store) -> None:
    executor = Executor(store)
    outcome = await executor.execute(
        STREAM, load=lambda: load(store), decide=lambda view, now: Decided((), "nothing"), evolve=evolve
    )
    assert (outcome.result, outcome.view, outcome.wrote) == ("nothing", None, False)
    assert await store.head() == 0


async def test_a_stream_that_keeps_changing_gives_busy_after_the_attempts(store) -> None:
    await Executor(store).execute(STREAM, load=lambda: load(store), decide=bump, evolve=evolve)
    stale = Counter(0, 0)  # a view that is always behind: every append conflicts
    attempts = 0

    async def stale_load() -> Counter:
        nonlocal attempts
        attempts += 1
        return stale

    executor = Executor(store, max_attempts=3, draw=lambda: 0.0)
    with pytest.raises(Busy, match="changed under every one of 3 attempts") as caught:
        await executor.execute(STREAM, load=stale_load, decide=bump, evolve=evolve)
    assert attempts == 3 and caught.value.retry_after > 0
    assert await load(store) == Counter(1, 1)  # nothing of the failed command was stored


async def test_ids_chosen_by_the_decision_are_the_events_ids(store) -> None:
    chosen = uuid.uuid4()

    def decide(view: Counter | None, now: datetime) -> Decided[None]:
        events = [catalogue.FlowUpdated(flow_id=FLOW, changes={}, updated=now)] * 2
        return Decided(events, None, ids=[chosen])

    outcome = await Executor(store).execute(STREAM, load=lambda: load(store), decide=decide, evolve=evolve)
    assert outcome.recorded[0].id == chosen and outcome.recorded[1].id != chosen


async def test_a_cached_view_saves_the_load_and_a_conflict_drops_it(store) -> None:
    executor = Executor(store, cache=ViewCache(16))
    loads = 0

    async def counting_load() -> Counter | None:
        nonlocal loads
        loads += 1
        return await load(store)

    run = dict(load=counting_load, decide=bump, evolve=evolve, cache_key="counter")
    await executor.execute(STREAM, **run)
    await executor.execute(STREAM, **run)
    assert loads == 1  # the second used the view the first cached
    await Executor(store).execute(STREAM, load=lambda: load(store), decide=bump, evolve=evolve)  # elsewhere
    outcome = await executor.execute(STREAM, **run)
    assert outcome.result == 4 and loads == 2  # the stale cached view conflicted, was dropped, reloaded


def test_backoff_is_bounded_jittered_and_immediate_at_first() -> None:
    assert backoff_seconds(0, 0.9) == backoff_seconds(1, 0.9) == 0.0
    assert backoff_seconds(5, 0.5) == pytest.approx(0.005)
    assert backoff_seconds(10**9, 1.0) == 0.05 and backoff_seconds(10**9, 7.0) == 0.05
    assert backoff_seconds(10, 0.0) == 0.0


async def load_stream(store, stream_id: str) -> Counter | None:
    view = None
    async for record in store.read_stream(stream_id):
        view = evolve(view, catalogue.decode(record.data), record.version)
    return view


def counter(store, stream_id: str) -> Command[Counter, int]:
    return Command(stream_id, load=lambda: load_stream(store, stream_id), decide=bump, evolve=evolve)


async def test_commands_on_several_streams_are_appended_together_and_folded_each(store) -> None:
    executor = Executor(store, clock=ManualClock(T0))
    await executor.execute("flow-b", load=lambda: load_stream(store, "flow-b"), decide=bump, evolve=evolve)
    idle = Command("flow-idle", load=lambda: load_stream(store, "flow-idle"), decide=lambda v, now: Decided((), "no"),
                   evolve=evolve)
    outcomes = await executor.execute_together([counter(store, "flow-a"), idle, counter(store, "flow-b")])
    assert [(o.result, o.view, o.wrote) for o in outcomes] == [
        (1, Counter(1, 1), True), ("no", None, False), (2, Counter(2, 2), True),
    ]
    # One append: the two streams' events are next to each other in the log.
    assert [r.position for o in outcomes for r in o.recorded] == [2, 3]


async def test_a_conflict_on_one_stream_decides_every_stream_again(store) -> None:
    executor = Executor(store, clock=ManualClock(T0))
    loads = 0

    async def racing_load() -> Counter | None:
        nonlocal loads
        loads += 1
        view = await load_stream(store, "flow-b")
        if loads == 1:  # another writer moves flow-b on after this command read it
            await executor.execute("flow-b", load=lambda: load_stream(store, "flow-b"), decide=bump, evolve=evolve)
        return view

    raced = Command("flow-b", load=racing_load, decide=bump, evolve=evolve)
    outcomes = await executor.execute_together([counter(store, "flow-a"), raced])
    assert [o.result for o in outcomes] == [1, 2]
    assert loads == 2
    assert (await load_stream(store, "flow-a"), await load_stream(store, "flow-b")) == (Counter(1, 1), Counter(2, 2))


async def test_without_retries_a_conflict_is_raised_and_nothing_is_stored(store) -> None:
    executor = Executor(store, clock=ManualClock(T0))
    await executor.execute("flow-b", load=lambda: load_stream(store, "flow-b"), decide=bump, evolve=evolve)
    stale = Command("flow-b", load=no_view, decide=bump, evolve=evolve)  # expects no stream: it exists
    with pytest.raises(ConcurrencyError):
        await executor.execute_together([counter(store, "flow-a"), stale], retry_conflicts=False)
    assert await load_stream(store, "flow-a") is None
    assert await store.head() == 1
