"""The worker channel: the websocket ``/work_pools/{name}/workers/connect`` that Prefect 3.8
workers open to heartbeat (prefect-wire.md section 4; prefect/client/schemas/worker_channel.py).

After Prefect's websocket handshake (subprotocol "prefect", then auth) the worker sends
``worker.hello.v1``; the server resolves the pool (creating it when the worker asks to and it
does not exist), records a first heartbeat and answers ``worker.ready.v1`` with the pool as its
initial snapshot. Each ``worker.heartbeat.v1`` is then recorded like the REST heartbeat.

A ``work_pool.snapshot.v1`` is sent when the pool (as GET /work_pools/{name} shows it) changed
since the last snapshot. Prefect pushes one at once, through its message bus, when the pool is
updated; here each channel follows the log (store.subscribe, woken by every append) from the
position its initial snapshot was read at, and pushes at once when a record of the "work-pools"
stream updates its pool or changes its status; a deleted pool closes the channel with
``authorization_failed``, as Prefect's does. What no such record shows (the pool's busy slots)
is checked at each heartbeat. Cost: each open channel reads the log's new records once, as an
``/events/out`` subscriber does. The cleanup delivery capability is rejected, as Prefect's
open-source server does without its cleanup queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from runlog.commands import work_pools as commands
from runlog.commands import workers as worker_commands
from runlog.commands.errors import Conflict, DomainError
from runlog.eventstore import SchemaError, StorageUnavailable, StoreClosed
from runlog.projections.work_pools import WorkPoolView
from runlog.schema import events as catalogue
from runlog.schema import streams

from .. import keys
from ..queries import work_pools as queries
from .events import prefect_socket, websocket
from .work_pools import to_pool

log = structlog.get_logger("runlog.worker_channel")
routes = web.RouteTableDef()

CHANNEL_VERSION = "work_pool_worker_channel.v1"
ACCEPTED = ("worker_heartbeat.v1", "work_pool_snapshot.v1")
HELLO_TIMEOUT_SECONDS = 30.0
POOL_CHANGES = frozenset({"work_pool.updated", "work_pool.status_changed", "work_pool.deleted"})
"""The records of the "work-pools" stream that change what a snapshot shows, or end it."""

# Prefect's close reasons and their websocket codes (WORKER_CHANNEL_CLOSE_POLICIES).
AUTHENTICATION_FAILED = "authentication_failed"  # a wrong or missing token (the handshake's close reason)
AUTHORIZATION_FAILED = ("authorization_failed", WSCloseCode.POLICY_VIOLATION)
UNSUPPORTED_VERSION = ("unsupported_version", WSCloseCode.POLICY_VIOLATION)
PROTOCOL_ERROR = ("protocol_error", WSCloseCode.PROTOCOL_ERROR)
HEARTBEAT_PERSISTENCE_FAILED = ("heartbeat_persistence_failed", WSCloseCode.INTERNAL_ERROR)
TRANSIENT_SERVER_ERROR = ("transient_server_error", WSCloseCode.INTERNAL_ERROR)


class HelloPayload(msgspec.Struct, kw_only=True):
    consumer_id: UUID
    worker_name: str
    worker_type: str
    heartbeat_interval_seconds: int
    supported_channel_versions: list[str]
    requested_capabilities: list[str]
    work_queue_names: list[str] = msgspec.field(default_factory=list)
    create_pool_if_not_found: bool = False
    default_base_job_template: dict[str, Any] = msgspec.field(default_factory=dict)


class HeartbeatPayload(msgspec.Struct, kw_only=True):
    consumer_id: UUID
    worker_name: str
    heartbeat_interval_seconds: int


class Hello(msgspec.Struct, kw_only=True, tag_field="type", tag="worker.hello.v1"):
    id: UUID
    sent_at: datetime
    payload: HelloPayload


class Heartbeat(msgspec.Struct, kw_only=True, tag_field="type", tag="worker.heartbeat.v1"):
    id: UUID
    sent_at: datetime
    payload: HeartbeatPayload


_hello = msgspec.json.Decoder(Hello)
_heartbeat = msgspec.json.Decoder(Heartbeat)


class SetupFailed(Exception):
    def __init__(self, reason: tuple[str, int], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def frame(kind: str, now: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "id": str(uuid.uuid4()), "sent_at": now.isoformat(), "payload": payload}


async def _close(ws: web.WebSocketResponse, reason: tuple[str, int]) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.close(code=reason[1], message=reason[0].encode())


async def _resolve_pool(request: web.Request, name: str, hello: HelloPayload) -> WorkPoolView:
    store, clock = request.config_dict[keys.STORE], request.config_dict[keys.CLOCK]
    pool = await queries.get_pool_by_name(store, name)
    if pool is None:
        if not hello.create_pool_if_not_found:
            raise SetupFailed(AUTHORIZATION_FAILED, "work_pool_not_found")
        if commands.reserved(name):
            raise SetupFailed(AUTHORIZATION_FAILED, "work_pool_creation_unauthorized")
        new = commands.NewWorkPool(name=name, type=hello.worker_type, base_job_template=hello.default_base_job_template)
        with contextlib.suppress(Conflict):  # another worker created it first
            await commands.create_pool(store, new, clock=clock)
        pool = await queries.get_pool_by_name(store, name)
    elif not pool.base_job_template and hello.default_base_job_template:
        await commands.update_pool(store, name, {"base_job_template": hello.default_base_job_template}, clock=clock)
        pool = await queries.get_pool_by_name(store, name)
    if pool is None:
        raise SetupFailed(AUTHORIZATION_FAILED, "work_pool_not_found")
    return pool


async def _snapshot(request: web.Request, pool: WorkPoolView) -> dict[str, Any]:
    active = await queries.active_slots(request.config_dict[keys.STORE], pool.id) if pool.concurrency_limit is not None else None
    return msgspec.to_builtins(to_pool(pool, active))


async def _setup(
    request: web.Request, ws: web.WebSocketResponse, name: str
) -> tuple[HelloPayload, WorkPoolView, dict[str, Any], int]:
    """Hello in, the first heartbeat recorded, ready out. Returns the hello, the pool, its
    initial snapshot and the log's position before that snapshot was read."""
    store, clock = request.config_dict[keys.STORE], request.config_dict[keys.CLOCK]
    try:
        message = await ws.receive(timeout=HELLO_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise SetupFailed(PROTOCOL_ERROR, "no hello") from exc
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        raise SetupFailed(PROTOCOL_ERROR, "no hello")
    try:
        hello = _hello.decode(message.data).payload
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SetupFailed(PROTOCOL_ERROR, "a malformed hello frame") from exc
    if not hello.worker_name or hello.heartbeat_interval_seconds <= 0:
        raise SetupFailed(PROTOCOL_ERROR, "a malformed hello frame")
    if CHANNEL_VERSION not in hello.supported_channel_versions:
        raise SetupFailed(UNSUPPORTED_VERSION, "no supported channel version")
    pool = await _resolve_pool(request, name, hello)
    queues = await queries.get_queues_of_pool(store, pool.id)
    if hello.work_queue_names:
        by_name = {q.name: q for q in queues}
        if any(n not in by_name for n in hello.work_queue_names):
            raise SetupFailed(AUTHORIZATION_FAILED, "work_queue_not_found")
        queues = [by_name[n] for n in dict.fromkeys(hello.work_queue_names)]
    try:
        await worker_commands.heartbeat(store, name, hello.worker_name, hello.heartbeat_interval_seconds, clock=clock)
    except (DomainError, StorageUnavailable, SchemaError, StoreClosed) as exc:
        raise SetupFailed(HEARTBEAT_PERSISTENCE_FAILED, "worker_channel_initial_heartbeat_failed") from exc
    head = await store.head()  # before the read: a change after it is pushed, none is lost
    pool = await queries.get_pool_by_name(store, name) or pool
    requested = list(dict.fromkeys(hello.requested_capabilities))
    snapshot = await _snapshot(request, pool)
    await ws.send_json(frame("worker.ready.v1", clock(), {
        "consumer_id": str(hello.consumer_id), "worker_id": None, "selected_channel_version": CHANNEL_VERSION,
        "effective_heartbeat_interval_seconds": hello.heartbeat_interval_seconds,
        "accepted_capabilities": list(ACCEPTED), "rejected_capabilities": [c for c in requested if c not in ACCEPTED],
        "effective_max_cleanup_concurrency": 0,
        "resolved_work_queues": [{"id": str(q.id), "name": q.name} for q in queues],
        "initial_snapshot": {"snapshot_sequence": 1, "reason": "initial", "work_pool": snapshot},
    }))
    return hello, pool, snapshot, head


class Snapshots:
    """The snapshots one channel sent: a new one goes out only when the pool shown changed.
    The receive loop and the log follower both send, so each compare-and-send holds a lock."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, name: str, sent: dict[str, Any]) -> None:
        self._request, self._ws, self._name = request, ws, name
        self._lock = asyncio.Lock()
        self.sequence, self.sent = 1, sent

    async def push_if_changed(self) -> None:
        async with self._lock:
            current = await queries.get_pool_by_name(self._request.config_dict[keys.STORE], self._name)
            if current is None:
                return
            shown = await _snapshot(self._request, current)
            if shown == self.sent:
                return
            self.sequence, self.sent = self.sequence + 1, shown
            with contextlib.suppress(ConnectionError):
                await self._ws.send_json(frame("work_pool.snapshot.v1", self._request.config_dict[keys.CLOCK](), {
                    "snapshot_sequence": self.sequence, "reason": "work_pool_updated", "work_pool": shown,
                }))


async def _follow_pool(
    request: web.Request, ws: web.WebSocketResponse, pool_id: UUID, after: int, snapshots: Snapshots
) -> None:
    """Push a snapshot as soon as the log shows the pool updated; close when it is deleted."""
    store = request.config_dict[keys.STORE]
    try:
        async for record in store.subscribe(after=after):
            if record.stream_id != streams.WORK_POOLS or record.type not in POOL_CHANGES:
                continue
            try:
                event = catalogue.decode(record.data)
            except msgspec.DecodeError:  # written by a newer runlog: nothing this one can show
                continue
            if getattr(event, "work_pool_id", None) != pool_id:
                continue
            if isinstance(event, catalogue.WorkPoolDeleted):
                await _close(ws, AUTHORIZATION_FAILED)
                return
            await snapshots.push_if_changed()
    except (StoreClosed, StorageUnavailable, SchemaError) as exc:
        # The heartbeats still bring changes; the receive loop reports a store that is gone.
        log.info("worker_channel_follow_stopped", pool_id=str(pool_id), reason=str(exc) or type(exc).__name__)


@routes.get("/work_pools/{name}/workers/connect")
@websocket("A worker's channel: hello, ready, heartbeats and pool snapshots (Prefect's worker channel)")
async def worker_channel(request: web.Request) -> web.StreamResponse:
    ws = await prefect_socket(request, failed_reason=AUTHENTICATION_FAILED)
    if ws.closed:
        return ws
    name = request.match_info["name"]
    store, clock = request.config_dict[keys.STORE], request.config_dict[keys.CLOCK]
    try:
        hello, pool, sent, head = await _setup(request, ws, name)
    except SetupFailed as exc:
        log.info("worker_channel_setup_failed", work_pool=name, reason=exc.reason[0], detail=str(exc))
        await _close(ws, exc.reason)
        return ws
    except (StorageUnavailable, SchemaError, StoreClosed):
        await _close(ws, TRANSIENT_SERVER_ERROR)
        return ws
    snapshots = Snapshots(request, ws, name, sent)
    follower = asyncio.create_task(_follow_pool(request, ws, pool.id, head, snapshots))
    heartbeats = 0
    try:
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                beat = _heartbeat.decode(message.data).payload
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                await _close(ws, PROTOCOL_ERROR)
                break
            if beat.consumer_id != hello.consumer_id or beat.worker_name != hello.worker_name:
                await _close(ws, PROTOCOL_ERROR)
                break
            try:
                await worker_commands.heartbeat(store, name, beat.worker_name, beat.heartbeat_interval_seconds, clock=clock)
            except (DomainError, StorageUnavailable, SchemaError, StoreClosed) as exc:
                log.warning("worker_channel_heartbeat_failed", work_pool=name, error=str(exc))
                await _close(ws, HEARTBEAT_PERSISTENCE_FAILED)
                break
            heartbeats += 1
            await snapshots.push_if_changed()  # what no pool record shows: its busy slots
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    log.info("worker_channel_closed", work_pool=name, worker=hello.worker_name, heartbeats=heartbeats, close_code=ws.close_code)
    return ws
