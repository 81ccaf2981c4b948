"""The one catch-up from a checkpoint (projections/catchup.py) that the asynchronous projections
and the notifier's matcher use, on both backends: a page's rows and its checkpoint commit
together or not at all, a crash between pages replays nothing twice, a second process moving
the same checkpoint writes nothing, and a follower of effects saves its checkpoint when due."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, RecordedEvent, RowChanges, Table, Tx, open_store
from runlog.projections.catchup import CatchUp, CheckpointMoved, catch_up
from runlog.projections.checkpoints import CHECKPOINTS, checkpoint
from runlog.schema import events as catalogue
from runlog.schema import streams

COUNTS = Table("test_catchup_counts", ("name", "n"), key=("name",))
"""A row a follower adds to, as run history adds to its cells: a page applied twice counts twice."""


class Counter:
    """Counts the events it has seen in one row, read and written back in the page's
    transaction; ``fail_on`` makes the page holding that position raise after its rows are made."""

    name = "test-counter"
    tables = (COUNTS,)
    reads_own_rows = True

    def __init__(self, fail_on: int | None = None, invalid_on: int | None = None) -> None:
        self.fail_on = fail_on
        self.invalid_on = invalid_on

    async def changes(self, records: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges:
        assert tx is not None
        rows = await tx.fetch("SELECT n FROM test_catchup_counts WHERE name = ?", "all")
        total = (int(rows[0][0]) if rows else 0) + len(records)
        positions = {r.position for r in records}
        if self.fail_on in positions:
            raise RuntimeError("the process died while applying this page")
        changes = RowChanges()
        # NULL into a NOT NULL column: the database refuses the page's rows, after its checkpoint moved.
        changes.upsert(COUNTS, ("all", None if self.invalid_on in positions else total))
        return changes


class Effects:
    """A follower whose output is not rows (as the matcher's deliveries are): it notes what it saw."""

    name = "test-effects"
    tables = ()

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def changes(self, records: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges:
        self.seen += [r.position for r in records]
        return RowChanges()


async def _append(store, count: int) -> None:
    for _ in range(count):
        flow_id = uuid4()
        event = catalogue.FlowCreated(flow_id=flow_id, name=f"f-{flow_id}", created=datetime(2026, 1, 1, tzinfo=UTC))
        await store.append(streams.flow(flow_id), [
            NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=uuid4()),
        ])


async def _table(store) -> None:
    async def create(tx: Tx) -> None:
        await tx.execute("CREATE TABLE test_catchup_counts (name TEXT PRIMARY KEY, n BIGINT NOT NULL)")

    await store.write_transaction(create)


async def _count(store) -> int:
    async with store.reading() as tx:
        rows = await tx.fetch("SELECT n FROM test_catchup_counts WHERE name = ?", "all")
    return int(rows[0][0]) if rows else 0


async def test_a_crash_between_pages_replays_nothing_twice_and_loses_nothing(store_url):
    async with open_store(store_url) as store:
        await _table(store)
        await _append(store, 25)
        head = await store.head()
        crashing = CatchUp(store, Counter(fail_on=17), page=5)
        with pytest.raises(RuntimeError):
            await crashing.run()
        # Pages up to 15 committed with their checkpoint; the one holding 17 wrote nothing.
        assert await checkpoint(store, Counter.name) == 15 == await _count(store)
        # A restarted process goes on from the checkpoint: every event counted exactly once.
        assert await CatchUp(store, Counter(), page=5).run() == head
        assert await _count(store) == head == await checkpoint(store, Counter.name)


async def test_a_page_s_rows_and_its_checkpoint_commit_together_or_not_at_all(store_url):
    async with open_store(store_url) as store:
        await _table(store)
        await _append(store, 12)
        refused = CatchUp(store, Counter(invalid_on=8), page=4)
        with pytest.raises(Exception) as raised:
            await refused.run()
        assert not isinstance(raised.value, CheckpointMoved)
        # The checkpoint moved first in the failed transaction: rolled back with the rows.
        assert await checkpoint(store, Counter.name) == 4 == await _count(store)
        assert await catch_up(store, Counter()) == await store.head() == await _count(store)


async def test_a_second_process_moving_the_same_checkpoint_writes_nothing(store_url):
    async with open_store(store_url) as one, open_store(store_url) as other:
        await _table(one)
        await _append(one, 10)
        first, second = CatchUp(one, Counter(), page=4), CatchUp(other, Counter(), page=4)
        await first.resume()
        await second.resume()  # both read checkpoint 0: two leaders for a moment
        assert await first.run(upto=8) == 8
        with pytest.raises(CheckpointMoved):
            await second.run()
        assert await _count(one) == 8 == await checkpoint(one, Counter.name)
        # Resumed from where the other got to, it applies only what is left.
        await second.resume()
        assert await second.run() == await one.head() == await _count(one)


async def test_a_follower_of_effects_saves_its_checkpoint_when_due_and_a_restart_applies_the_rest_again(store_url):
    now = [1000.0]
    async with open_store(store_url) as store:
        await _append(store, 6)
        follower = Effects()
        following = CatchUp(store, follower, page=2, save_every=1.0, clock=lambda: now[0])
        assert await following.run() == 6 == await checkpoint(store, Effects.name)
        assert follower.seen == [1, 2, 3, 4, 5, 6]
        # Within the same second: applied and remembered, not written.
        await _append(store, 2)
        assert await following.run() == 8
        assert await checkpoint(store, Effects.name) == 6
        assert await following.run() == 8 and follower.seen[-2:] == [7, 8]  # not applied twice here
        # A crash now: a new process applies again what the checkpoint had not covered (effects are
        # idempotent: the matcher's deliveries are keyed by event, rule and action), then saves it.
        again = Effects()
        assert await CatchUp(store, again).run() == 8 == await checkpoint(store, Effects.name)
        assert again.seen == [7, 8]
        # The first process finds that the other moved the checkpoint when it comes to save.
        now[0] += 1.5
        await _append(store, 1)
        with pytest.raises(CheckpointMoved):
            await following.run()
        assert await checkpoint(store, Effects.name) == 8


async def test_a_checkpoint_moved_by_someone_else_is_found_before_anything_is_written(store_url):
    async with open_store(store_url) as store:
        await _table(store)
        await _append(store, 6)
        following = CatchUp(store, Counter(), page=3)
        assert await following.run(upto=3) == 3
        moved = RowChanges()
        moved.upsert(CHECKPOINTS, (Counter.name, 5))  # a rebuild's swap, say
        await store.write_tables(moved)
        with pytest.raises(CheckpointMoved):
            await following.run()
        assert await _count(store) == 3
        assert await following.resume() == 5
        assert await following.run() == 6 and await _count(store) == 4


async def test_a_round_reads_no_further_once_a_page_comes_back_short(store_url, monkeypatch):
    """A page shorter than asked for is the log's end as that read found it: the round ends
    there rather than reading an empty page (a follower runs a round per group commit)."""
    async with open_store(store_url) as store:
        await _append(store, 12)
        pages: list[int] = []
        read_next = store.read_next

        async def counted(after, limit):
            page = await read_next(after, limit)
            pages.append(len(page))
            return page

        monkeypatch.setattr(store, "read_next", counted)
        follower = Effects()
        assert await CatchUp(store, follower, page=5).run() == 12
        assert pages == [5, 5, 2]
        assert follower.seen == list(range(1, 13))
        await _append(store, 5)
        pages.clear()
        assert await CatchUp(store, follower, page=5).run() == 17
        assert pages == [5, 0]  # a full page may be the last: the next read finds the end
