"""The derivation of Prefect's events from the log: pure builders, and runs as they were at each event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from runlog.commands.executor import record
from runlog.eventstore import open_store
from runlog.projections import automation_events
from runlog.projections.catchup import catch_up
from runlog.projections.checkpoints import checkpoint
from runlog.projections.event_feed import EventFeedProjection
from runlog.projections.flows import FlowView
from runlog.projections.prefect_events import Derivation, flow_run_state_event, state_payload, truncated_to
from runlog.projections.runs import FlowRunView
from runlog.schema import events as catalogue
from runlog.schema import streams

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
FLOW_ID, RUN_ID, DEPLOYMENT_ID = uuid4(), uuid4(), uuid4()
FLOW = FlowView(id=FLOW_ID, name="etl", created=T0, updated=T0, tags=["b", "a"])
RUN = FlowRunView(id=RUN_ID, created=T0, updated=T0, name="run-1", flow_id=FLOW_ID, tags=["a", "c"], run_count=2)


def state(kind: str, at: datetime, message: str | None = None, **details) -> catalogue.State:
    return catalogue.State(
        id=uuid4(), type=catalogue.StateType(kind), name=kind.title(), timestamp=at, message=message,
        state_details=catalogue.StateDetails(**details),
    )


def test_a_state_change_event_has_prefects_resource_related_and_payload():
    running, failed = state("RUNNING", T0), state("FAILED", T0 + timedelta(seconds=3), "boom")
    event = flow_run_state_event(RUN, FLOW, running, failed, received=T0 + timedelta(seconds=4))
    assert event.event == "prefect.flow-run.Failed" and event.id == failed.id and event.follows == running.id
    assert event.occurred == failed.timestamp and event.received == T0 + timedelta(seconds=4)
    assert event.resource == {
        "prefect.resource.id": f"prefect.flow-run.{RUN_ID}", "prefect.resource.name": "run-1",
        "prefect.run-count": "2", "prefect.state-message": "boom", "prefect.state-name": "Failed",
        "prefect.state-timestamp": "2026-03-01T12:00:03+00:00", "prefect.state-type": "FAILED",
    }
    # The flow, then the sorted union of the run's and the flow's tags, each once.
    assert event.related == [
        {"prefect.resource.id": f"prefect.flow.{FLOW_ID}", "prefect.resource.role": "flow", "prefect.resource.name": "etl"},
        *({"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"} for t in ("a", "b", "c")),
    ]
    assert event.payload == {
        "intended": {"from": "RUNNING", "to": "FAILED"},
        "initial_state": {"type": "RUNNING", "name": "Running"},
        "validated_state": {"type": "FAILED", "name": "Failed", "message": "boom"},
    }


def test_a_first_state_follows_nothing_and_a_late_one_is_not_linked():
    first = flow_run_state_event(RUN, FLOW, None, state("PENDING", T0), received=T0)
    assert first.follows is None and first.payload["intended"] == {"from": None, "to": "PENDING"}
    assert first.payload["initial_state"] is None and first.resource["prefect.state-message"] == ""
    old = state("SCHEDULED", T0 - timedelta(minutes=5))
    assert flow_run_state_event(RUN, FLOW, old, state("PENDING", T0), received=T0).follows is None
    recent = state("SCHEDULED", T0 - timedelta(minutes=4, seconds=59))
    assert flow_run_state_event(RUN, FLOW, recent, state("PENDING", T0), received=T0).follows == recent.id


def test_a_deployment_is_related_and_an_unknown_flow_is_not():
    run = FlowRunView(id=RUN_ID, created=T0, updated=T0, name="r", flow_id=FLOW_ID, deployment_id=DEPLOYMENT_ID)
    event = flow_run_state_event(run, None, None, state("PENDING", T0), received=T0)
    assert event.related == [{"prefect.resource.id": f"prefect.deployment.{DEPLOYMENT_ID}", "prefect.resource.role": "deployment"}]


def test_state_payloads_and_truncation():
    assert state_payload(state("PAUSED", T0, pause_reschedule=True)) == {
        "type": "PAUSED", "name": "Paused", "pause_reschedule": "true"}
    assert truncated_to(10, "abcdefghijKLMNO") == "abcde...KLMNO"
    assert truncated_to(10, None) == "" and truncated_to(10, "short") == "short"


async def append(store, stream: str, event: catalogue.Event, event_id: UUID | None = None):
    (recorded,) = await record(store, stream, [event], ids=[event_id or uuid4()])
    return recorded


async def write_history(store):
    """A run that fails, with its flow retagged and the run renamed between its states."""
    flow_stream, run_stream = streams.flow(FLOW_ID), streams.flow_run(RUN_ID)
    records = [await append(store, flow_stream, catalogue.FlowCreated(flow_id=FLOW_ID, name="etl", tags=["a"], created=T0))]
    records.append(await append(store, run_stream, catalogue.FlowRunCreated(
        flow_run_id=RUN_ID, flow_id=FLOW_ID, name="before", tags=["r"], created=T0)))
    pending, running, failed = state("PENDING", T0), state("RUNNING", T0 + timedelta(seconds=1)), state("FAILED", T0 + timedelta(seconds=2), "boom")
    records.append(await append(store, run_stream, catalogue.FlowRunStateChanged(flow_run_id=RUN_ID, state=pending), pending.id))
    records.append(await append(store, flow_stream, catalogue.FlowUpdated(flow_id=FLOW_ID, changes={"tags": ["a", "b"]}, updated=T0)))
    records.append(await append(store, run_stream, catalogue.FlowRunStateChanged(flow_run_id=RUN_ID, state=running), running.id))
    records.append(await append(store, run_stream, catalogue.FlowRunUpdated(flow_run_id=RUN_ID, changes={"name": "after"})))
    records.append(await append(store, run_stream, catalogue.FlowRunStateChanged(flow_run_id=RUN_ID, state=failed), failed.id))
    client = catalogue.PrefectEventReceived(occurred=T0, event="my.event", resource={"prefect.resource.id": "my.thing"})
    client_id = uuid4()
    records.append(await append(store, "resource-my.thing", client, client_id))
    return records, client_id


async def test_each_event_shows_the_run_and_flow_as_they_were_then(store_url):
    async with open_store(store_url) as store:
        records, client_id = await write_history(store)
        warm = Derivation(store)
        derived = [event for r in records for event in await warm.events_of(r)]
        assert [e.event for e in derived] == [
            "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.Failed", "my.event"]
        pending, running, failed, client = derived
        assert [e.resource["prefect.resource.name"] for e in (pending, running, failed)] == ["before", "before", "after"]
        tags = [[r["prefect.resource.id"] for r in e.related if r["prefect.resource.role"] == "tag"] for e in (pending, failed)]
        assert tags == [["prefect.tag.a", "prefect.tag.r"], ["prefect.tag.a", "prefect.tag.b", "prefect.tag.r"]]
        assert [e.resource["prefect.run-count"] for e in (pending, running, failed)] == ["0", "1", "1"]
        assert client.id == client_id and client.received == records[-1].recorded_at
        # A cold derivation, handed only the state changes, reads the streams up to each one.
        for record_, expected in zip((records[2], records[4], records[6]), (pending, running, failed), strict=True):
            assert await Derivation(store).events_of(record_) == [expected]


async def test_the_feed_resumes_from_its_checkpoint(store_url):
    async with open_store(store_url) as store:
        records, _ = await write_history(store)
        projection = EventFeedProjection(store)
        assert await catch_up(store, projection, upto=3) == 3 == await checkpoint(store, projection.name)
        async with store.reading() as tx:
            assert [row[0] for row in await tx.fetch("SELECT event FROM event_feed")] == ["prefect.flow-run.Pending"]
        # A new instance (a restarted server) carries on after the checkpoint.
        assert await catch_up(store, EventFeedProjection(store)) == records[-1].position
        async with store.reading() as tx:
            rows = await tx.fetch("SELECT event, position FROM event_feed ORDER BY position")
            resources = await tx.fetch("SELECT count(*) FROM event_feed_resources")
        assert [(e, p) for e, p in rows] == [
            ("prefect.flow-run.Pending", records[2].position), ("prefect.flow-run.Running", records[4].position),
            ("prefect.flow-run.Failed", records[6].position), ("my.event", records[7].position)]
        # A row per related resource: its flow and its tags (b joins from Running); the client event has none.
        assert resources[0][0] == 3 + 4 + 4 + 0


class CountingReads:
    """The store, counting the streams read (what a cold derivation has to look up)."""

    def __init__(self, store) -> None:
        self._store = store
        self.streams_read: list[str] = []

    def read_stream(self, stream_id: str, **kwargs):
        self.streams_read.append(stream_id)
        return self._store.read_stream(stream_id, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


async def test_a_derivation_following_the_log_reads_no_stream_for_runs_flows_and_deployments(store_url):
    """Its caches (runs by stream, flows and deployments by id) hit for a consumer that follows
    the log in order: each state change is derived from what passed, with no read."""
    async with open_store(store_url) as store:
        records, _ = await write_history(store)
        deployment_id, run_id = uuid4(), uuid4()
        records.append(await append(store, streams.deployment(deployment_id), catalogue.DeploymentCreated(
            deployment_id=deployment_id, flow_id=FLOW_ID, name="nightly", fields={"tags": ["d"]}, created=T0)))
        run_stream = streams.flow_run(run_id)
        records.append(await append(store, run_stream, catalogue.FlowRunCreated(
            flow_run_id=run_id, flow_id=FLOW_ID, name="deployed", deployment_id=deployment_id, created=T0)))
        for kind, seconds in (("PENDING", 3), ("RUNNING", 4)):
            changed = state(kind, T0 + timedelta(seconds=seconds))
            records.append(await append(store, run_stream, catalogue.FlowRunStateChanged(flow_run_id=run_id, state=changed), changed.id))
        counting = CountingReads(store)
        warm = Derivation(counting)
        derived = [event for r in records for event in await warm.events_of(r)]
        # The deployment's own record reads its stream (its view before the change), nothing else.
        assert counting.streams_read == [streams.deployment(deployment_id)]
        cold = [event for r in records[-2:] for event in await Derivation(store).events_of(r)]
        assert derived[-2:] == cold
        assert [r["prefect.resource.name"] for r in cold[0].related[:2]] == ["etl", "nightly"]


async def test_a_delivery_outcome_shows_its_action_event_without_a_read_once_the_trigger_passed(store_url):
    async with open_store(store_url) as store:
        delivery_id = uuid4()
        triggered = automation_events.action_triggered(
            resource={"prefect.resource.id": f"prefect.automation.{uuid4()}"}, related=[], action_index=0,
            action_type="send-notification", invocation=delivery_id, at=T0, triggered_event_id=uuid4(), triggering=None,
        )
        opened = await append(store, streams.triggered_action(delivery_id), triggered, triggered.event_id)
        sent = await append(store, streams.delivery(delivery_id), catalogue.DeliverySent(delivery_id=delivery_id, at=T0))

        # A consumer that began after the action.triggered record reads its stream to find it ...
        cold_store = CountingReads(store)
        (cold,) = await Derivation(cold_store).events_of(sent)
        assert cold_store.streams_read == [streams.triggered_action(delivery_id)]
        # ... one that saw it pass (the feed and the matcher follow the log in order) reads nothing.
        warm_store = CountingReads(store)
        warm = Derivation(warm_store)
        await warm.events_of(opened)
        assert await warm.events_of(sent) == [cold]
        assert warm_store.streams_read == []
        assert cold.event == "prefect.automation.action.executed"


async def test_the_feeds_fold_hands_the_event_loop_back_every_yield_every_records(store_url):
    """A page's fold is hundreds of records that need no read: folded in one go it held the
    server's event loop, and every request in flight, for 11-16 ms. It lets the loop run other
    work between every YIELD_EVERY records, and still folds them all."""
    from runlog.projections import event_feed

    async with open_store(store_url) as store:
        records = []
        for n in range(3 * event_feed.YIELD_EVERY):
            sent = catalogue.PrefectEventReceived(occurred=T0, event=f"my.event.{n}", resource={"prefect.resource.id": "my.thing"})
            records.append(await append(store, "resource-my.thing", sent, uuid4()))
        loop = asyncio.get_running_loop()
        turns = 0
        folding = True

        def turn() -> None:  # counts the event loop's turns while the fold runs
            nonlocal turns
            if folding:
                turns += 1
                loop.call_soon(turn)

        loop.call_soon(turn)
        changes = await EventFeedProjection(store).changes(records)
        folding = False
        assert turns >= 2  # at least one turn at each of the two yields (records 50 and 100)
        [feed] = [rows for table, rows, _deleted in changes.tables() if table.name == "event_feed"]
        assert sorted(row[2] for row in feed) == sorted(f"my.event.{n}" for n in range(len(records)))
