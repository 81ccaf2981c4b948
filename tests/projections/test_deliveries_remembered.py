"""The deliveries projection folds a delivery's attempts onto the view it remembers, on both backends.

On PostgreSQL an attempt or a sending then rides in the append's one statement (``prepare``)
instead of the locked transaction that reads the row; whatever the path, the stored rows must be
the fold of the log, also when another process appended to the delivery or changed the
channel's health, and nothing remembered may outlive a batch that failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from runlog.eventstore import NewEvent, RowChanges, StreamAppend, open_store
from runlog.eventstore.planning import Row
from runlog.projections import deliveries
from runlog.projections.deliveries import DeliveriesProjection, evolve_delivery
from runlog.schema import events as catalogue
from runlog.schema import streams

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class CountingDeliveries(DeliveriesProjection):
    """Counts the delivery events folded in a transaction (``changes``) rather than prepared."""

    def __init__(self) -> None:
        super().__init__()
        self.read_path: list[str] = []
        self.calls = 0

    async def changes(self, tx, events):  # type: ignore[no-untyped-def]
        self.read_path += [e.type for e in events]
        self.calls += 1
        return await super().changes(tx, events)


class FailsOnSent:
    """An inline projection whose transaction fails on a sending, as a database error would."""

    name = "fails_on_sent"
    tables = ()
    event_types = frozenset({"delivery.sent"})

    async def changes(self, tx, events):  # type: ignore[no-untyped-def]
        raise RuntimeError("the batch fails")


def event(data: catalogue.Event) -> NewEvent:
    return NewEvent(type=catalogue.event_type(data), data=catalogue.encode(data), id=uuid4())


def scheduled(delivery_id: UUID, channel_id: UUID) -> catalogue.DeliveryScheduled:
    return catalogue.DeliveryScheduled(
        delivery_id=delivery_id, rule_id=uuid4(), channel_id=channel_id, event_id=uuid4(), scheduled_at=T0,
    )


def attempted(delivery_id: UUID, n: int, outcome: str, status_code: int = 500) -> catalogue.DeliveryAttempted:
    at = T0 + timedelta(minutes=n)
    return catalogue.DeliveryAttempted(
        delivery_id=delivery_id, attempt=n, started=at, finished=at, status_code=status_code, outcome=outcome,
        next_attempt_at=at + timedelta(minutes=1) if outcome == "retry" else None,
    )


def sent(delivery_id: UUID, n: int) -> catalogue.DeliverySent:
    return catalogue.DeliverySent(delivery_id=delivery_id, at=T0 + timedelta(minutes=n))


async def stored_view(store, delivery_id: UUID) -> deliveries.DeliveryView | None:  # type: ignore[no-untyped-def]
    async with store.reading() as tx:
        return await deliveries.get(tx, delivery_id)


async def folded(store, delivery_id: UUID) -> deliveries.DeliveryView | None:  # type: ignore[no-untyped-def]
    """The view the log's events of the delivery fold to, from nothing."""
    view = None
    async for record in store.read_stream(streams.delivery(delivery_id)):
        view = evolve_delivery(view, catalogue.decode(record.data), record.version)
    return view


async def health(store, channel_id: UUID) -> tuple[str, str | None] | None:  # type: ignore[no-untyped-def]
    async with store.reading() as tx:
        return await deliveries.channel_health(tx, channel_id)


async def test_attempts_and_sending_fold_onto_the_remembered_view(store_url, backend):
    projection = CountingDeliveries()
    delivery_id, channel_id = uuid4(), uuid4()
    stream = streams.delivery(delivery_id)
    async with open_store(store_url, projections=[projection]) as store:
        await store.append(stream, [event(scheduled(delivery_id, channel_id))])
        await store.append(stream, [event(attempted(delivery_id, 1, "retry"))])
        await store.append(stream, [event(attempted(delivery_id, 2, "sent", 200)), event(sent(delivery_id, 2))])
        other = uuid4()  # a second delivery to the same channel, known healthy now
        await store.append(streams.delivery(other), [event(scheduled(other, channel_id))])
        await store.append(streams.delivery(other), [event(attempted(other, 1, "sent", 200)), event(sent(other, 1))])

        view = await stored_view(store, delivery_id)
        assert view is not None and view == await folded(store, delivery_id)
        assert (view.status, len(view.attempts), view.version) == (deliveries.SENT, 2, 4)
        assert await stored_view(store, other) == await folded(store, other)
        assert await health(store, channel_id) == (deliveries.HEALTHY, None)
    if backend == "postgres":
        # Only the first batch (the writer knows no head yet) and the first sending (the
        # channel's health unknown) were folded in a transaction; the rest in one statement.
        assert projection.read_path == ["delivery.scheduled", "delivery.attempted", "delivery.sent"]


async def test_another_process_appending_to_the_delivery_is_folded_in(store_url):
    here, there = DeliveriesProjection(), DeliveriesProjection()
    delivery_id, channel_id = uuid4(), uuid4()
    stream = streams.delivery(delivery_id)
    async with (
        open_store(store_url, projections=[here]) as store,
        open_store(store_url, projections=[there]) as elsewhere,
    ):
        await store.append(stream, [event(scheduled(delivery_id, channel_id))])
        await store.append(stream, [event(attempted(delivery_id, 1, "retry"))])  # remembered here at version 2
        await elsewhere.append(stream, [event(attempted(delivery_id, 2, "retry"))])
        await store.append(stream, [event(attempted(delivery_id, 3, "sent", 200)), event(sent(delivery_id, 3))])

        view = await stored_view(store, delivery_id)
        assert view is not None and view == await folded(store, delivery_id)
        assert [a.attempt for a in view.attempts] == [1, 2, 3]


async def test_a_channel_found_gone_by_another_process_is_marked_healthy_again(store_url):
    here, there = DeliveriesProjection(), DeliveriesProjection()
    channel_id = uuid4()
    first, second, third = uuid4(), uuid4(), uuid4()
    async with (
        open_store(store_url, projections=[here]) as store,
        open_store(store_url, projections=[there]) as elsewhere,
    ):
        for delivery_id in (first, third):
            await store.append(streams.delivery(delivery_id), [event(scheduled(delivery_id, channel_id))])
        await store.append(streams.delivery(first), [event(attempted(first, 1, "sent", 200)), event(sent(first, 1))])
        assert await health(store, channel_id) == (deliveries.HEALTHY, None)  # and remembered so here

        await elsewhere.append(streams.delivery(second), [event(scheduled(second, channel_id))])
        await elsewhere.append(streams.delivery(second), [event(attempted(second, 1, "gone", 410))])
        assert (await health(store, channel_id))[0] == deliveries.FAILING

        await store.append(streams.delivery(third), [event(attempted(third, 2, "sent", 200)), event(sent(third, 2))])
        assert await health(store, channel_id) == (deliveries.HEALTHY, None)


async def test_a_failed_batch_leaves_nothing_remembered(store_url):
    projection = DeliveriesProjection()
    delivery_id, channel_id = uuid4(), uuid4()
    stream = streams.delivery(delivery_id)
    async with open_store(store_url, projections=[projection, FailsOnSent()]) as store:
        await store.append(stream, [event(scheduled(delivery_id, channel_id))])
        await store.append(stream, [event(attempted(delivery_id, 1, "retry"))])
        next_attempt = Row(position=1_000, stream_id=stream, version=3, event=event(attempted(delivery_id, 2, "retry")))
        assert isinstance(projection.prepare([next_attempt]), RowChanges)  # version 2 is remembered

        # The deliveries projection folds the attempt (version 3) and the sending before the batch fails.
        with pytest.raises(RuntimeError, match="the batch fails"):
            await store.append(stream, [event(attempted(delivery_id, 2, "sent", 200)), event(sent(delivery_id, 2))])

        assert projection.prepare([next_attempt]) is None  # nothing remembered: it must read
        after = Row(position=1_000, stream_id=stream, version=5, event=event(attempted(delivery_id, 9, "retry")))
        assert projection.prepare([after]) is None  # nor the views of the failed batch
        view = await stored_view(store, delivery_id)
        assert view is not None and view == await folded(store, delivery_id) and view.version == 2


async def test_a_batch_of_several_deliveries_is_folded_in_one_call_without_the_views_remembered(store_url):
    """A batch holding a delivery's scheduling, attempt and sending and another's: its rows are
    the fold of the log though nothing is remembered between its events (a cache of one view)
    and its rows are written once, after the whole batch is folded."""
    projection = CountingDeliveries()
    projection._views = type(projection._views)(1)  # remembers one view: the batch's own are what count
    first, second, channel_id = uuid4(), uuid4(), uuid4()
    async with open_store(store_url, projections=[projection]) as store:
        await store.append_streams([
            StreamAppend(streams.delivery(first), [
                event(scheduled(first, channel_id)), event(attempted(first, 1, "retry")),
                event(attempted(first, 2, "sent", 200)), event(sent(first, 2)),
            ]),
            StreamAppend(streams.delivery(second), [event(scheduled(second, channel_id)), event(attempted(second, 1, "gone", 410))]),
        ])
        for delivery_id in (first, second):
            view = await stored_view(store, delivery_id)
            assert view is not None and view == await folded(store, delivery_id)
        assert [len((await stored_view(store, d)).attempts) for d in (first, second)] == [2, 1]  # type: ignore[union-attr]
        assert (await health(store, channel_id))[0] == deliveries.FAILING  # the gone attempt came after the sending
    assert projection.calls == 1
