"""Prefect client events in: the /events/in websocket and POST /events, over a real socket.

Every received event is in the log once, however often it is sent; client-orchestrated
task-run events build the task run as Prefect's task run recorder does, newest state wins.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import msgspec
import pytest

from runlog.api import keys
from runlog.api.queries.runs import get_task_run, task_run_states
from runlog.commands.client_events import RECEIVED_NAMESPACE, resource_stream
from runlog.projections.runs import evolve_task_run
from runlog.schema import events as catalogue

from ..servers import serve

T0 = datetime(2026, 11, 21, 19, 9, 52, 804786, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def task_event(
    task_run_id: uuid.UUID,
    flow_run_id: uuid.UUID,
    state: str,
    name: str,
    at: datetime,
    *,
    run_count: int,
    start: datetime | None = None,
    end: datetime | None = None,
    total: float = 0.0,
    initial: str | None = None,
    tags: tuple[str, ...] = ("flowtag",),
) -> dict:
    """A task-run state event shaped as the Prefect 3.8 client sends it (prefect-wire.md §2)."""
    task_run = {
        "name": "flaky_task-62f", "task_key": "flaky_task-cddd864b", "dynamic_key": "62f8",
        "empirical_policy": {"max_retries": 0, "retry_delay_seconds": 0.0, "retries": 1, "retry_delay": 1},
        "tags": list(tags), "labels": {}, "task_inputs": {"y": []}, "run_count": run_count,
        "flow_run_run_count": 1, "expected_start_time": iso(T0), "total_run_time": total,
    }
    if start is not None:
        task_run["start_time"] = iso(start)
    if end is not None:
        task_run["end_time"] = iso(end)
    return {
        "occurred": iso(at),
        "event": f"prefect.task-run.{name}",
        "resource": {
            "prefect.resource.id": f"prefect.task-run.{task_run_id}", "prefect.resource.name": "flaky_task-62f",
            "prefect.run-count": str(run_count), "prefect.state-message": "", "prefect.state-name": name,
            "prefect.state-timestamp": at.isoformat(), "prefect.state-type": state,
            "prefect.orchestration": "client",
        },
        "related": [
            *({"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"} for tag in tags),
            {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run",
             "prefect.resource.name": "sociable-stallion"},
            {"prefect.resource.id": f"prefect.flow.{uuid.uuid4()}", "prefect.resource.role": "flow",
             "prefect.resource.name": "wire-a"},
        ],
        "payload": {
            "intended": {"from": initial, "to": state},
            "initial_state": None if initial is None else {"type": initial, "name": initial.title(), "message": "",
                                                           "state_details": {}},
            "validated_state": {"type": state, "name": name, "message": "", "state_details": {}, "data": None},
            "task_run": task_run,
        },
        "id": str(uuid.uuid4()),
        "follows": None,
    }


def lifecycle(task_run_id: uuid.UUID, flow_run_id: uuid.UUID) -> list[dict]:
    """Pending, Running, Completed of one task run, a second apart."""
    t1, t2, t3 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), T0 + timedelta(seconds=3)
    return [
        task_event(task_run_id, flow_run_id, "PENDING", "Pending", t1, run_count=0),
        task_event(task_run_id, flow_run_id, "RUNNING", "Running", t2, run_count=1, start=t2, initial="PENDING"),
        task_event(task_run_id, flow_run_id, "COMPLETED", "Completed", t3, run_count=1, start=t2, end=t3,
                   total=1.0, initial="RUNNING"),
    ]


def heartbeat(flow_run_id: uuid.UUID) -> dict:
    return {
        "occurred": iso(datetime.now(UTC)), "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"},
        "related": [], "payload": {}, "id": str(uuid.uuid4()), "follows": None,
    }


def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


async def send_events(server, frames: list, *, authenticate: bool = True) -> int | None:
    """Send frames over /events/in, then close; the server has stored them when close returns.

    The server reads the close frame only after it has handled every frame before it.
    """
    url = server.base.replace("http", "ws") + "/events/in"
    async with server.session.ws_connect(url, protocols=("prefect",)) as ws:
        if authenticate:
            await ws.send_str(json.dumps({"type": "auth", "token": None}))
            assert json.loads((await ws.receive()).data) == {"type": "auth_success"}
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        await ws.close()
        return ws.close_code


async def new_flow_run(server) -> uuid.UUID:
    """A flow run created through the API: task-run events build task runs only of existing flow runs."""
    _, flow = await server.request("POST", "/flows/", json={"name": "events-in"})
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"]})
    assert status == 201
    return uuid.UUID(run["id"])


async def stream_records(server, stream: str) -> list:
    store = server.app[keys.STORE]
    return [record async for record in store.read_stream(stream)]


async def test_auth_handshake_selects_the_prefect_subprotocol(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        url = server.base.replace("http", "ws") + "/events/in"
        async with server.session.ws_connect(url, protocols=("prefect",)) as ws:
            assert ws.protocol == "prefect"
            await ws.send_str(json.dumps({"type": "auth", "token": "whatever"}))
            message = await ws.receive(timeout=5)
            assert message.type is aiohttp.WSMsgType.TEXT
            assert json.loads(message.data) == {"type": "auth_success"}


async def test_a_first_message_that_is_not_auth_is_refused_with_policy_violation(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        url = server.base.replace("http", "ws") + "/events/in"
        flow_run_id = uuid.uuid4()
        async with server.session.ws_connect(url, protocols=("prefect",)) as ws:
            await ws.send_str(json.dumps(heartbeat(flow_run_id)))
            failure = await ws.receive(timeout=5)
            assert json.loads(failure.data) == {"type": "auth_failure", "reason": "Expected 'auth' message"}
            closing = await ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert closing.data == aiohttp.WSCloseCode.POLICY_VIOLATION
        # The event sent in place of the auth message was not taken.
        assert await stream_records(server, resource_stream(f"prefect.flow-run.{flow_run_id}")) == []


async def test_an_event_sent_twice_is_stored_once(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        flow_run_id = uuid.uuid4()
        event = heartbeat(flow_run_id)
        assert await send_events(server, [event, event]) == aiohttp.WSCloseCode.OK
        # A client re-sending after a reconnect: a new connection, the same event.
        await send_events(server, [event])
        records = await stream_records(server, f"resource-prefect.flow-run.{flow_run_id}")
        assert len(records) == 1
        assert records[0].id == uuid.UUID(event["id"]) and records[0].type == "prefect.event"
        stored = catalogue.decode(records[0].data)
        assert isinstance(stored, catalogue.PrefectEventReceived)
        assert stored.event == "prefect.flow-run.heartbeat"
        assert stored.resource == event["resource"] and stored.related == [] and stored.payload == {}
        assert iso(stored.occurred) == event["occurred"] and stored.follows is None


async def test_client_task_run_events_build_the_task_run(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        task_run_id, flow_run_id = uuid.uuid4(), await new_flow_run(server)
        events = lifecycle(task_run_id, flow_run_id)
        await send_events(server, events)
        store = server.app[keys.STORE]
        view = await get_task_run(store, task_run_id)
        assert view is not None
        assert view.flow_run_id == flow_run_id
        assert view.state is not None and view.state.type is catalogue.StateType.COMPLETED
        assert view.state.id == uuid.UUID(events[2]["id"])  # a state's id is its event's id
        assert view.state.timestamp == T0 + timedelta(seconds=3)
        assert view.state.state_details.task_run_id == task_run_id
        assert view.state.state_details.flow_run_id == flow_run_id
        assert (view.name, view.task_key, view.dynamic_key) == ("flaky_task-62f", "flaky_task-cddd864b", "62f8")
        assert view.tags == ["flowtag"] and view.task_inputs == {"y": []}
        assert view.empirical_policy["retries"] == 1
        assert (view.run_count, view.flow_run_run_count, view.total_run_time) == (1, 1, 1.0)
        assert view.start_time == T0 + timedelta(seconds=2) and view.end_time == T0 + timedelta(seconds=3)
        assert view.expected_start_time == T0
        history = await task_run_states(store, task_run_id)
        assert [s.type for s in history] == [catalogue.StateType.PENDING, catalogue.StateType.RUNNING,
                                             catalogue.StateType.COMPLETED]
        assert [s.id for s in history] == [uuid.UUID(e["id"]) for e in events]
        # The received events are kept too, each under an id derived from the Prefect id.
        received = await stream_records(server, f"resource-prefect.task-run.{task_run_id}")
        assert [r.id for r in received] == [uuid.uuid5(RECEIVED_NAMESPACE, e["id"]) for e in events]
        first = catalogue.decode(received[0].data)
        assert isinstance(first, catalogue.PrefectEventReceived)
        assert first.event_id == uuid.UUID(events[0]["id"]) and first.related == events[0]["related"]
        # Re-sent after a reconnect: nothing new anywhere.
        await send_events(server, events)
        assert len(await task_run_states(store, task_run_id)) == 3
        assert len(await stream_records(server, f"resource-prefect.task-run.{task_run_id}")) == 3


async def test_out_of_order_arrival_leaves_the_newest_state_current(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        task_run_id, flow_run_id = uuid.uuid4(), await new_flow_run(server)
        pending, running, completed = lifecycle(task_run_id, flow_run_id)
        await send_events(server, [pending, completed, running])  # Completed before Running
        store = server.app[keys.STORE]
        view = await get_task_run(store, task_run_id)
        assert view is not None and view.state is not None
        assert view.state.type is catalogue.StateType.COMPLETED
        assert view.state.id == uuid.UUID(completed["id"])
        assert view.end_time == T0 + timedelta(seconds=3) and view.total_run_time == 1.0
        assert view.run_count == 1 and view.version == 3
        # The history still holds every state, in arrival order.
        history = await task_run_states(store, task_run_id)
        # The stream keeps arrival order; the history is answered in timestamp order, as Prefect does.
        assert [s.name for s in history] == ["Pending", "Running", "Completed"]
        # The runs table row agrees with the view.
        async with store.reading() as tx:
            rows = await tx.fetch(
                "SELECT state_type, state_name, state_timestamp, end_time, version FROM task_runs WHERE id = ?",
                str(task_run_id),
            )
        assert [tuple(r) for r in rows] == [("COMPLETED", "Completed", rows[0][2], rows[0][3], 3)]
        assert rows[0][2] == rows[0][3]  # state timestamp == end time == Completed's


def test_the_task_run_view_does_not_depend_on_arrival_order():
    """Folding the reported states in any order gives the same view (but for its version)."""
    task_run_id, flow_run_id = uuid.uuid4(), uuid.uuid4()
    decoded = [_as_state_changed(e) for e in lifecycle(task_run_id, flow_run_id)]
    views = set()
    for order in itertools.permutations(decoded):
        view = None
        for version, event in enumerate(order, start=1):
            view = evolve_task_run(view, event, version)
        assert view is not None and view.state is not None
        views.add(msgspec.json.encode(view))
    assert len(views) == 1
    (only,) = views
    assert json.loads(only)["state"]["type"] == "COMPLETED"


def _as_state_changed(frame: dict) -> catalogue.TaskRunStateChanged:
    from runlog.api.schemas.events import Event, check_event
    from runlog.commands.client_events import task_run_state_changed

    return task_run_state_changed(check_event(msgspec.json.decode(json.dumps(frame), type=Event)))


async def test_a_malformed_frame_is_skipped_and_the_connection_keeps_working(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        flow_run_id = uuid.uuid4()
        no_id = heartbeat(flow_run_id)
        del no_id["id"]
        no_resource_id = heartbeat(flow_run_id)
        no_resource_id["resource"] = {"prefect.resource.name": "x"}
        bad_task_run = task_event(uuid.uuid4(), flow_run_id, "RUNNING", "Running", T0, run_count=1)
        bad_task_run["payload"]["validated_state"] = {"type": "NOT-A-STATE"}
        good = heartbeat(flow_run_id)
        code = await send_events(
            server, ["not json", "[1, 2", b"\xff\xfe", json.dumps([1]), no_id, no_resource_id, bad_task_run, good]
        )
        assert code == aiohttp.WSCloseCode.OK  # the server did not drop the connection
        records = await stream_records(server, f"resource-prefect.flow-run.{flow_run_id}")
        assert [r.id for r in records] == [uuid.UUID(good["id"])]
        # A task-run event the recorder cannot read is still kept as a received event.
        task_stream = resource_stream(bad_task_run["resource"]["prefect.resource.id"])
        (kept,) = await stream_records(server, task_stream)
        assert kept.id == uuid.UUID(bad_task_run["id"]) and kept.type == "prefect.event"


async def test_a_client_without_the_subprotocol_is_served_without_the_handshake(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        flow_run_id = uuid.uuid4()
        event = heartbeat(flow_run_id)
        url = server.base.replace("http", "ws") + "/events/in"
        async with server.session.ws_connect(url) as ws:
            assert ws.protocol is None
            await ws.send_str(json.dumps(event))
            await ws.close()
        assert len(await stream_records(server, f"resource-prefect.flow-run.{flow_run_id}")) == 1


async def test_post_events_stores_a_batch_once(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        task_run_id, flow_run_id = uuid.uuid4(), await new_flow_run(server)
        batch = [heartbeat(flow_run_id), *lifecycle(task_run_id, flow_run_id)]
        assert await server.request("POST", "/events", json=batch) == (204, None)
        assert await server.request("POST", "/events", json=batch) == (204, None)
        assert len(await stream_records(server, f"resource-prefect.flow-run.{flow_run_id}")) == 1
        view = await get_task_run(server.app[keys.STORE], task_run_id)
        assert view is not None and view.state is not None and view.state.type is catalogue.StateType.COMPLETED
        assert len(await task_run_states(server.app[keys.STORE], task_run_id)) == 3


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda e: e["resource"].pop("prefect.resource.id"), "$[1].resource"),
        (lambda e: e["related"].append({"prefect.resource.id": "x"}), "$[1].related[0]"),
        (lambda e: e.update(id="not-a-uuid"), "$[1].id"),
        (lambda e: e.update(occurred="soon"), "$[1].occurred"),  # 17 is a Unix time, as in Prefect
        (lambda e: e.update(event="x" * 1025), "$[1].event"),
        (lambda e: e.pop("event"), "$[1]"),
    ],
)
async def test_post_events_refuses_a_bad_event_naming_its_field(tmp_path, sqlite_url, mutate, path):
    async with serve(env(tmp_path, sqlite_url)) as server:
        flow_run_id = uuid.uuid4()
        good, bad = heartbeat(flow_run_id), heartbeat(flow_run_id)
        mutate(bad)
        status, body = await server.request("POST", "/events", json=[good, bad])
        assert status == 422
        assert f"`{path}`" in body["detail"]
        # The batch is checked before anything is stored.
        assert await stream_records(server, f"resource-prefect.flow-run.{flow_run_id}") == []


@pytest.mark.parametrize("body", [b'{"event": "x"}', b"null", b"not json", b""])
async def test_post_events_needs_a_list(tmp_path, sqlite_url, body):
    async with serve(env(tmp_path, sqlite_url)) as server:
        status, _ = await server.request("POST", "/events", data=body, headers={"Content-Type": "application/json"})
        assert status == 422


def test_resource_streams_stay_within_the_stores_limit():
    assert resource_stream("prefect.flow-run.1") == "resource-prefect.flow-run.1"
    long_id = "x" * 5000
    assert resource_stream(long_id) == resource_stream(long_id)
    assert len(resource_stream(long_id)) < 1000
    assert resource_stream("a\x00b").startswith("resource-sha256-")
    assert resource_stream(None) == resource_stream("") == "resource-unknown"
