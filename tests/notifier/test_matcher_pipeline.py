"""The matcher records a page's firings while it matches the pages that follow (a burst's later
events join the first one's group commits instead of waiting for them), on both backends; the
round still ends with every firing recorded, and the checkpoint never passes a firing that was
not recorded."""

from __future__ import annotations

import asyncio

from runlog.commands.clock import ManualClock
from runlog.commands import automations
from runlog.notifier.matcher import NAME
from runlog.projections.checkpoints import checkpoint
from runlog.schema.events import StateType

from .test_matcher import a_run_in, failed_runs_of, matcher_for, scheduled

PATIENCE = 30.0
"""How long a test waits for something that is bound to happen (never a speed assertion)."""


class HeldFirings:
    """The store, with the first firing's append held until ``release`` (a slow commit)."""

    def __init__(self, store, *, fail_first: bool = False) -> None:
        self._store = store
        self._fail_first = fail_first
        self.appends = 0
        self.second_started = asyncio.Event()
        self.first_started = asyncio.Event()
        self.released = asyncio.Event()

    async def append_streams(self, appends):
        self.appends += 1
        if self.appends == 1:
            self.first_started.set()
            await self.released.wait()
            if self._fail_first:
                raise ConnectionResetError("the database went away")
        else:
            self.second_started.set()
        return await self._store.append_streams(appends)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


async def test_a_later_failure_is_matched_while_the_first_firing_is_recorded(store, clock: ManualClock) -> None:
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    held = HeldFirings(store)
    matcher = matcher_for(held, clock)
    await matcher.step(clock())  # loads the automation, nothing to match yet
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="first")

    round_ = asyncio.create_task(matcher.step(clock()))
    await asyncio.wait_for(held.first_started.wait(), PATIENCE)
    # The first firing's append is held; a second run fails meanwhile.
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="second")
    await asyncio.wait_for(held.second_started.wait(), PATIENCE)
    assert not round_.done(), "the round ends only once every firing is recorded"
    held.released.set()

    assert await asyncio.wait_for(round_, PATIENCE) == 2
    assert sorted(d.scheduled.subject for d in await scheduled(store)) == ["first", "second"]


async def test_a_firing_that_failed_is_not_passed_by_the_checkpoint_and_is_matched_again(
    store, clock: ManualClock,
) -> None:
    await automations.create(store, failed_runs_of("daily-etl"), clock=clock)
    held = HeldFirings(store, fail_first=True)
    matcher = matcher_for(held, clock)
    await matcher.step(clock())
    before = await checkpoint(store, NAME)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="first")
    settling = asyncio.Event()
    settle = matcher.settle

    async def noted_settle() -> None:  # what the catch-up awaits before it writes the checkpoint
        settling.set()
        await settle()

    matcher.settle = noted_settle  # type: ignore[method-assign]

    round_ = asyncio.create_task(matcher.step(clock()))
    await asyncio.wait_for(held.first_started.wait(), PATIENCE)
    clock.advance(seconds=5)  # a checkpoint save is due when the round matches what follows
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="second")
    await asyncio.wait_for(settling.wait(), PATIENCE)
    held.released.set()  # the first firing's append fails
    try:
        await asyncio.wait_for(round_, PATIENCE)
    except ConnectionResetError:
        pass
    else:
        raise AssertionError("the round that lost a firing says so")
    assert await checkpoint(store, NAME) == before

    # The next round goes on from the checkpoint: the lost firing is made, nothing twice.
    await matcher.step(clock())
    assert sorted(d.scheduled.subject for d in await scheduled(store)) == ["first", "second"]
    assert await checkpoint(store, NAME) > before
