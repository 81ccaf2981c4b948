"""The delivery commands on both backends: idempotent scheduling, attempts recorded once, replay,
and the read model equal to a rebuild from the log."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from runlog.commands import deliveries as commands
from runlog.commands.errors import Conflict, NotFound
from runlog.projections import deliveries as model
from runlog.projections.verify import verify

from .conftest import schedule


def sent_at(clock):
    return commands.AttemptRecord(started=clock(), finished=clock(), outcome="sent", status_code=200)


async def test_scheduling_collapses_onto_the_existing_delivery(store, clock):
    rule, event, channel = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first, created = await commands.schedule(store, rule_id=rule, channel_id=channel, event_id=event, subject="s",
                                             body="b", clock=clock)
    clock.advance(5)
    again, created_again = await commands.schedule(store, rule_id=rule, channel_id=channel, event_id=event,
                                                   subject="other", body="other", clock=clock)
    assert (created, created_again) == (True, False)
    assert again == first and again.scheduled.body == "b"
    other_action, _ = await commands.schedule(store, rule_id=rule, channel_id=channel, event_id=event, action_index=1,
                                              subject="s", body="b", clock=clock)
    assert other_action.id != first.id
    assert await store.stream_version(f"delivery-{first.id}") == 1


async def test_two_dispatchers_cannot_both_record_attempt_n(store, clock):
    taken = await schedule(store, clock, uuid.uuid4())
    first = await commands.record_attempt(store, taken, sent_at(clock), clock=clock)
    second = await commands.record_attempt(store, taken, sent_at(clock), clock=clock)
    assert first is not None and first.status == model.SENT
    assert second is None
    assert len((await commands.read(store, taken.id)).attempts) == 1


async def test_replay_takes_dead_letters_and_retries_and_refuses_the_rest(store, clock):
    dead = await schedule(store, clock, uuid.uuid4())
    dead = await commands.record_attempt(store, dead, commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="permanent", status_code=400), clock=clock)
    assert dead is not None and dead.status == model.DEAD
    pending = await schedule(store, clock, uuid.uuid4())
    with pytest.raises(Conflict, match="already waiting"):
        await commands.replay(store, pending.id, clock=clock)
    with pytest.raises(NotFound):
        await commands.replay(store, uuid.uuid4(), clock=clock)
    clock.advance(60)
    assert await commands.replay_dead(store, clock=clock) == [dead.id]
    replayed = await commands.read(store, dead.id)
    assert (replayed.status, replayed.next_attempt_at, replayed.age_from) == (model.PENDING, clock(), clock())
    assert await commands.replay_dead(store, clock=clock) == []
    sent = await commands.record_attempt(store, replayed, sent_at(clock), clock=clock)
    with pytest.raises(Conflict, match="was sent"):
        await commands.replay(store, sent.id, clock=clock)


async def test_dead_letter_only_takes_a_waiting_delivery(store, clock):
    waiting = await schedule(store, clock, uuid.uuid4())
    dead = await commands.dead_letter(store, waiting.id, "the channel no longer exists", clock=clock)
    assert dead.status == model.DEAD and dead.dead_reason == "the channel no longer exists"
    again = await commands.dead_letter(store, waiting.id, "something else", clock=clock)
    assert again.dead_reason == "the channel no longer exists"
    assert await commands.dead_letter(store, uuid.uuid4(), "nothing", clock=clock) is None


async def test_due_reads_only_waiting_deliveries_whose_time_has_come(store, clock):
    soon = await schedule(store, clock, uuid.uuid4())
    later = await commands.record_attempt(store, await schedule(store, clock, uuid.uuid4()), commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="retry", status_code=500), draw=lambda: 1.0, clock=clock)
    await commands.record_attempt(store, await schedule(store, clock, uuid.uuid4()), sent_at(clock), clock=clock)
    async with store.reading() as tx:
        assert [v.id for v in await model.due(tx, clock(), 10)] == [soon.id]
        assert [v.id for v in await model.due(tx, clock() + timedelta(seconds=5), 10)] == [soon.id, later.id]
        assert [v.id for v in await model.due(tx, clock() + timedelta(seconds=5), 1)] == [soon.id]


async def test_the_delivery_tables_equal_a_rebuild_from_the_log(store, store_url, clock):
    channel = uuid.uuid4()
    gone = await schedule(store, clock, channel)
    await commands.record_attempt(store, gone, commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="gone", status_code=410), clock=clock)
    await commands.replay(store, gone.id, clock=clock)
    retried = await commands.record_attempt(store, await commands.read(store, gone.id), commands.AttemptRecord(
        started=clock(), finished=clock(), outcome="retry", error="no answer within 10 s"), clock=clock)
    await commands.record_attempt(store, retried, sent_at(clock), clock=clock)
    await schedule(store, clock, channel)
    checked = await verify(store_url)
    delivery_tables = [t for t in checked.tables if t.projection == "deliveries"]
    assert [(t.table, t.live) for t in delivery_tables] == [("deliveries", 2), ("channel_health", 1)]
    assert checked.equal, [t for t in checked.tables if not t.equal]
