"""The worker channel websocket over a real server on both backends: Prefect's handshake, a
ready frame (and snapshots) that Prefect's own client models accept, heartbeats recorded."""

from __future__ import annotations

import uuid

import aiohttp
from prefect.client.schemas.worker_channel import WorkerReadyFrame, WorkPoolSnapshotFrame, validate_worker_channel_frame

TEMPLATE = {"job_configuration": {"command": "{{ command }}"}, "variables": {"properties": {}}}


def hello(consumer: uuid.UUID, **payload) -> dict:
    return {"type": "worker.hello.v1", "id": str(uuid.uuid4()), "sent_at": "2026-03-01T12:00:00Z", "payload": {
        "consumer_id": str(consumer), "worker_name": "ws-worker", "worker_type": "process",
        "heartbeat_interval_seconds": 10, "supported_channel_versions": ["work_pool_worker_channel.v1"],
        "requested_capabilities": ["worker_heartbeat.v1", "work_pool_snapshot.v1", "cleanup_delivery.v1"],
        "work_queue_names": [], "handled_cleanup_kinds": [], "max_cleanup_concurrency": 0,
        "create_pool_if_not_found": True, "default_base_job_template": TEMPLATE, "worker_metadata": None,
        **payload,
    }}


def heartbeat(consumer: uuid.UUID) -> dict:
    return {"type": "worker.heartbeat.v1", "id": str(uuid.uuid4()), "sent_at": "2026-03-01T12:00:10Z", "payload": {
        "consumer_id": str(consumer), "worker_name": "ws-worker", "heartbeat_interval_seconds": 10,
    }}


async def connect(session: aiohttp.ClientSession, server, pool: str) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{server.base.replace('http', 'ws', 1)}/work_pools/{pool}/workers/connect",
                                  protocols=("prefect",))
    await ws.send_json({"type": "auth", "token": None})
    assert await ws.receive_json(timeout=10) == {"type": "auth_success"}
    return ws


async def test_a_worker_creates_its_pool_heartbeats_and_gets_snapshots(server, clock) -> None:
    consumer = uuid.uuid4()
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, server, "ws-pool")
        await ws.send_json(hello(consumer))
        ready = validate_worker_channel_frame(await ws.receive_json(timeout=10))
        assert isinstance(ready, WorkerReadyFrame)
        assert ready.payload.consumer_id == consumer and ready.payload.worker_id is None
        assert ready.payload.accepted_capabilities == ["worker_heartbeat.v1", "work_pool_snapshot.v1"]
        assert ready.payload.rejected_capabilities == ["cleanup_delivery.v1"]
        assert [q.name for q in ready.payload.resolved_work_queues] == ["default"]
        snapshot_pool = ready.payload.initial_snapshot.work_pool
        assert snapshot_pool.name == "ws-pool" and snapshot_pool.base_job_template == TEMPLATE
        assert snapshot_pool.status is not None and snapshot_pool.status.value == "READY"  # the hello was a heartbeat

        status, _ = await server.request("PATCH", "/work_pools/ws-pool", json={"description": "changed"})
        assert status == 204
        clock.advance(10)
        await ws.send_json(heartbeat(consumer))
        snapshot = validate_worker_channel_frame(await ws.receive_json(timeout=10))
        assert isinstance(snapshot, WorkPoolSnapshotFrame)
        assert snapshot.payload.snapshot_sequence == 2 and snapshot.payload.work_pool.description == "changed"
        await ws.close()

    status, workers = await server.request("POST", "/work_pools/ws-pool/workers/filter", json={})
    assert status == 200 and [(w["name"], w["status"]) for w in workers] == [("ws-worker", "ONLINE")]
    assert workers[0]["last_heartbeat_time"] == "2026-03-01T12:00:10Z"


async def test_an_unknown_pool_or_version_closes_with_prefects_reason(server) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, server, "missing")
        await ws.send_json(hello(uuid.uuid4(), create_pool_if_not_found=False))
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (1008, "authorization_failed")
        await ws.close()

        ws = await connect(session, server, "any")
        await ws.send_json(hello(uuid.uuid4(), supported_channel_versions=["work_pool_worker_channel.v9"]))
        message = await ws.receive(timeout=10)
        assert (message.data, message.extra) == (1008, "unsupported_version")
        await ws.close()
    status, _ = await server.request("GET", "/work_pools/missing")
    assert status == 404


async def test_a_pool_update_is_pushed_at_once_and_a_deleted_pool_closes_the_channel(server) -> None:
    """No heartbeat in between: the snapshot follows the PATCH (Prefect pushes it through its
    message bus), and deleting the pool closes the channel with Prefect's reason."""
    consumer = uuid.uuid4()
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, server, "pushed")
        await ws.send_json(hello(consumer))
        ready = validate_worker_channel_frame(await ws.receive_json(timeout=10))
        assert isinstance(ready, WorkerReadyFrame)

        status, _ = await server.request("PATCH", "/work_pools/pushed", json={"concurrency_limit": 2})
        assert status == 204
        snapshot = validate_worker_channel_frame(await ws.receive_json(timeout=10))
        assert isinstance(snapshot, WorkPoolSnapshotFrame)
        assert snapshot.payload.snapshot_sequence == 2 and snapshot.payload.reason == "work_pool_updated"
        assert snapshot.payload.work_pool.concurrency_limit == 2

        status, _ = await server.request("PATCH", "/work_pools/pushed", json={"is_paused": True})
        assert status == 204
        paused = validate_worker_channel_frame(await ws.receive_json(timeout=10))
        assert isinstance(paused, WorkPoolSnapshotFrame)
        assert paused.payload.snapshot_sequence == 3 and paused.payload.work_pool.is_paused is True
        assert paused.payload.work_pool.status is not None and paused.payload.work_pool.status.value == "PAUSED"

        status, _ = await server.request("DELETE", "/work_pools/pushed")
        assert status == 204
        message = await ws.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (1008, "authorization_failed")
        await ws.close()
