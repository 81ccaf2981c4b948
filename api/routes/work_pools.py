"""/work_pools, their queues and workers, get_scheduled_flow_runs, and /work_queues, with
Prefect 3.8's routes, shapes and status codes (prefect/server/api/workers.py, work_queues.py).

Workers heartbeat over POST .../workers/heartbeat: the 3.8 worker first tries the websocket
.../workers/connect, gets 404 here and falls back to it (prefect-wire.md section 4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from runlog.commands import work_pools as commands
from runlog.commands import workers as worker_commands
from runlog.commands.work_pool_status import queue_healthy, worker_view_status
from runlog.projections.time_travel import pool_at
from runlog.projections.work_pools import WorkerView, WorkPoolView, WorkQueueView

from .. import keys
from ..at import AT_QUERY, at_position, not_yet, requested_moment, shown_at
from ..http import NotFound, Unprocessable, decode_body, empty_response, json_response, no_content, page_limit, path_uuid, present, sent_fields
from ..openapi import documented
from ..queries import work_pools as queries
from ..queries.filtering import DEFAULT_LIMIT
from ..schemas.work_pools import (
    ScheduledRunsRequest, StorageConfiguration, WorkPool, WorkPoolCountRequest, WorkPoolCreate, WorkPoolFilterRequest,
    WorkPoolUpdate, WorkQueue, WorkQueueCreate, WorkQueueFilterRequest, WorkQueueHealthPolicy, WorkQueueRunsRequest,
    WorkQueueStatusDetail, WorkQueueUpdate, Worker, WorkerFilterRequest, WorkerFlowRun, WorkerHeartbeat,
)
from .flow_runs import to_flow_run

routes = web.RouteTableDef()

# A queue or worker name is any path segment but the fixed ones beside it (filter, heartbeat,
# connect), so that those fixed paths answer 405 with their own methods only.
QUEUE_PATH = "/work_pools/{name}/queues/{queue:(?!filter$)[^{}/]+}"
WORKER_PATH = "/work_pools/{name}/workers/{worker:(?!(?:filter|heartbeat|connect)$)[^{}/]+}"

DEFAULT_POOL = "default-agent-pool"
"""Prefect's pool for queues created without one (POST /work_queues/)."""


def _pool_missing(name: str) -> str:
    return f'Work pool "{name}" not found.'


def to_pool(view: WorkPoolView, active: dict[str, int] | None = None) -> WorkPool:
    return WorkPool(
        id=view.id, created=view.created, updated=view.updated, name=view.name, description=view.description,
        type=view.type, base_job_template=view.base_job_template, is_paused=view.is_paused,
        concurrency_limit=view.concurrency_limit, status=None if view.type == "prefect-agent" else view.status,  # type: ignore[arg-type]
        default_queue_id=view.default_queue_id,
        storage_configuration=msgspec.convert(view.storage_configuration, StorageConfiguration),
        active_slots=sum(active.values()) if active is not None and view.concurrency_limit is not None else None,
    )


def to_queue(view: WorkQueueView, pool_name: str | None, active: dict[str, int] | None = None) -> WorkQueue:
    return WorkQueue(
        id=view.id, created=view.created, updated=view.updated, name=view.name, description=view.description,
        is_paused=view.is_paused, concurrency_limit=view.concurrency_limit, priority=view.priority,
        work_pool_id=view.work_pool_id, last_polled=view.last_polled, work_pool_name=pool_name,
        status=view.status,  # type: ignore[arg-type]
        active_slots=(active or {}).get(str(view.id), 0) if view.concurrency_limit is not None else None,
    )


def to_worker(view: WorkerView, now: datetime) -> Worker:
    return Worker(
        id=view.id, created=view.created, updated=view.updated, name=view.name, work_pool_id=view.work_pool_id,
        last_heartbeat_time=view.last_heartbeat_time, heartbeat_interval_seconds=view.heartbeat_interval_seconds,
        status=worker_view_status(view, now),  # type: ignore[arg-type]
    )


def _store(request: web.Request) -> Any:
    return request.config_dict[keys.STORE]


def _clock(request: web.Request) -> Any:
    return request.config_dict[keys.CLOCK]


async def _pool(request: web.Request, key: str = "name") -> WorkPoolView:
    name = request.match_info[key]
    return present(await queries.get_pool_by_name(_store(request), name), _pool_missing(name))


async def _shown_pool(request: web.Request, view: WorkPoolView) -> WorkPool:
    active = await queries.active_slots(_store(request), view.id) if view.concurrency_limit is not None else None
    return to_pool(view, active)


# --- pools -------------------------------------------------------------------------------------

@routes.post("/work_pools/")
@documented(
    summary="Create a work pool", request=WorkPoolCreate, response=WorkPool, status=201,
    errors={403: "A reserved name (starting with 'prefect')", 409: "A work pool with that name exists", 422: "A bad body"},
)
async def create_work_pool(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkPoolCreate)
    if not body.name.strip("' \""):
        raise Unprocessable("name cannot be an empty string")
    new = commands.NewWorkPool(
        name=body.name, type=body.type, description=body.description, base_job_template=body.base_job_template,
        is_paused=body.is_paused, concurrency_limit=body.concurrency_limit,
        storage_configuration=msgspec.to_builtins(body.storage_configuration),
    )
    view = await commands.create_pool(_store(request), new, clock=_clock(request))
    return json_response(await _shown_pool(request, view), status=201)


@routes.get("/work_pools/{name}")
@documented(
    summary="Read a work pool by name (?at=: as it was at a log position or time, with its queues and workers)",
    response=WorkPool, errors={404: "No such work pool", 422: "A bad 'at'"}, query=AT_QUERY,
)
async def read_work_pool(request: web.Request) -> web.Response:
    moment = await requested_moment(request)
    if moment is None:
        return json_response(await _shown_pool(request, await _pool(request)))
    name = request.match_info["name"]
    then = present(await pool_at(_store(request), name, moment.position), not_yet(f'Work pool "{name}"', moment))
    now = shown_at(request, moment)
    # The pool's shape, with its queues and workers as they were: a past moment has no other
    # route to ask them from. active_slots is not folded from the log, so it is left out (null).
    answer = {
        **msgspec.to_builtins(to_pool(then.pool)),
        "queues": [to_queue(queue, then.pool.name) for queue in then.queues],
        "workers": [to_worker(worker, now) for worker in then.workers],
    }
    return at_position(json_response(answer), moment)


@routes.patch("/work_pools/{name}")
@documented(summary="Update a work pool", request=WorkPoolUpdate, status=204, errors={403: "A reserved pool", 404: "No such work pool"})
async def update_work_pool(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkPoolUpdate)
    changes = {k: v for k, v in sent_fields(body).items() if v is not None or k in ("description", "concurrency_limit")}
    if isinstance(changes.get("storage_configuration"), msgspec.Struct):
        changes["storage_configuration"] = msgspec.to_builtins(changes["storage_configuration"])
    name = request.match_info["name"]
    found = await commands.update_pool(_store(request), name, changes, clock=_clock(request))
    return no_content(found, _pool_missing(name))


@routes.delete("/work_pools/{name}")
@documented(summary="Delete a work pool, its queues and workers", status=204, errors={403: "A reserved pool", 404: "No such work pool"})
async def delete_work_pool(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return no_content(await commands.delete_pool(_store(request), name, clock=_clock(request)), _pool_missing(name))


@routes.post("/work_pools/filter")
@documented(summary="List work pools", request=WorkPoolFilterRequest, request_required=False, response=list[WorkPool])
async def filter_work_pools(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkPoolFilterRequest, default=WorkPoolFilterRequest())
    views = await queries.WORK_POOLS.page(
        _store(request), body, sort="NAME_ASC", limit=page_limit(body.limit, DEFAULT_LIMIT), offset=body.offset or 0
    )
    return json_response([await _shown_pool(request, v) for v in views])


@routes.post("/work_pools/count")
@documented(summary="Count work pools", request=WorkPoolCountRequest, request_required=False, response=int)
async def count_work_pools(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkPoolCountRequest, default=WorkPoolCountRequest())
    return json_response(await queries.WORK_POOLS.count(_store(request), body))


# --- a pool's queues ---------------------------------------------------------------------------

def _new_queue(body: WorkQueueCreate) -> commands.NewWorkQueue:
    return commands.NewWorkQueue(
        name=body.name, description=body.description, is_paused=body.is_paused,
        concurrency_limit=body.concurrency_limit, priority=body.priority,
    )


async def _shown_queue(request: web.Request, view: WorkQueueView, pool_name: str | None = None) -> WorkQueue:
    if pool_name is None:
        pool_name = (await queries.pool_names(_store(request), [view.work_pool_id])).get(view.work_pool_id)
    active = await queries.active_slots(_store(request), view.work_pool_id) if view.concurrency_limit is not None else None
    return to_queue(view, pool_name, active)


@routes.post("/work_pools/{name}/queues")
@documented(summary="Create a work queue in a pool", request=WorkQueueCreate, response=WorkQueue, status=201,
            errors={404: "No such work pool", 409: "The pool has a queue of that name"})
async def create_pool_queue(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkQueueCreate)
    pool, view = await commands.create_queue(_store(request), request.match_info["name"], _new_queue(body), clock=_clock(request))
    return json_response(await _shown_queue(request, view, pool.name), status=201)


def _queue_missing(request: web.Request) -> str:
    return f"Work pool queue '{request.match_info['name']}/{request.match_info['queue']}' not found."


@routes.get(QUEUE_PATH)
@documented(summary="Read a pool's queue by name", response=WorkQueue, errors={404: "No such pool or queue"})
async def read_pool_queue(request: web.Request) -> web.Response:
    pool = await _pool(request)
    view = await queries.get_queue_by_name(_store(request), pool.id, request.match_info["queue"])
    return json_response(await _shown_queue(request, present(view, _queue_missing(request)), pool.name))


def _queue_changes(body: WorkQueueUpdate) -> dict[str, Any]:
    changes = sent_fields(body)
    changes.pop("filter", None)
    if isinstance(changes.get("last_polled"), datetime):
        changes["last_polled"] = changes["last_polled"].isoformat()
    return changes


@routes.patch(QUEUE_PATH)
@documented(summary="Update a pool's queue", request=WorkQueueUpdate, status=204,
            errors={404: "No such pool or queue", 409: "Renamed to the name of another queue of the pool"})
async def update_pool_queue(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkQueueUpdate)
    lookup = commands.queue_by_name(request.match_info["name"], request.match_info["queue"])
    found = await commands.update_queue(_store(request), lookup, _queue_changes(body), clock=_clock(request))
    return no_content(found, _queue_missing(request))


@routes.delete(QUEUE_PATH)
@documented(summary="Delete a pool's queue", status=204, errors={404: "No such pool or queue", 422: "The pool's default queue"})
async def delete_pool_queue(request: web.Request) -> web.Response:
    lookup = commands.queue_by_name(request.match_info["name"], request.match_info["queue"])
    found = await commands.delete_queue(_store(request), lookup, clock=_clock(request))
    return no_content(found, _queue_missing(request))


@routes.post("/work_pools/{name}/queues/filter")
@documented(summary="List a pool's queues", request=WorkQueueFilterRequest, request_required=False, response=list[WorkQueue],
            errors={404: "No such work pool"})
async def filter_pool_queues(request: web.Request) -> web.Response:
    pool = await _pool(request)
    body = await decode_body(request, WorkQueueFilterRequest, default=WorkQueueFilterRequest())
    views = await queries.queues_page(
        _store(request), pool.id, body.work_queues, limit=page_limit(body.limit, DEFAULT_LIMIT), offset=body.offset or 0
    )
    active = await queries.active_slots(_store(request), pool.id)
    return json_response([to_queue(v, pool.name, active) for v in views])


# --- workers -----------------------------------------------------------------------------------

@routes.post("/work_pools/{name}/workers/heartbeat")
@documented(summary="A worker's heartbeat", request=WorkerHeartbeat, status=204, errors={404: "No such work pool"})
async def worker_heartbeat(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkerHeartbeat)
    # return_id (the worker's id in the answer) is what Prefect Cloud's workers ask for; the open
    # server, like this one, answers 204 without a body.
    await worker_commands.heartbeat(
        _store(request), request.match_info["name"], body.name, body.heartbeat_interval_seconds, clock=_clock(request)
    )
    return empty_response()


@routes.post("/work_pools/{name}/workers/filter")
@documented(summary="List a pool's workers", request=WorkerFilterRequest, request_required=False, response=list[Worker],
            errors={404: "No such work pool"})
async def filter_workers(request: web.Request) -> web.Response:
    pool = await _pool(request)
    body = await decode_body(request, WorkerFilterRequest, default=WorkerFilterRequest())
    views = await queries.workers_page(
        _store(request), pool.id, body.workers, limit=page_limit(body.limit, DEFAULT_LIMIT), offset=body.offset or 0
    )
    now = _clock(request)()
    return json_response([to_worker(v, now) for v in views])


@routes.delete(WORKER_PATH)
@documented(summary="Delete a worker", status=204, errors={404: "No such work pool or worker"})
async def delete_worker(request: web.Request) -> web.Response:
    found = await worker_commands.delete_worker(
        _store(request), request.match_info["name"], request.match_info["worker"], clock=_clock(request)
    )
    return no_content(found, "Worker not found.")


# --- runs for workers --------------------------------------------------------------------------

@routes.post("/work_pools/{name}/get_scheduled_flow_runs")
@documented(summary="The scheduled runs a worker of the pool may take", request=ScheduledRunsRequest,
            request_required=False, response=list[WorkerFlowRun], errors={404: "No such work pool or queue"})
async def get_scheduled_flow_runs(request: web.Request) -> web.Response:
    store, clock = _store(request), _clock(request)
    pool = await _pool(request)
    body = await decode_body(request, ScheduledRunsRequest, default=ScheduledRunsRequest())
    queues = await queries.get_queues_of_pool(store, pool.id)
    if body.work_queue_names:
        by_name = {q.name: q for q in queues}
        for name in body.work_queue_names:
            if name not in by_name:
                raise NotFound(f"Work pool queue '{pool.name}/{name}' not found.")
        queues = [by_name[name] for name in dict.fromkeys(body.work_queue_names)]
    runs = await queries.scheduled_runs(
        store, pool, queues, before=body.scheduled_before, after=body.scheduled_after,
        limit=page_limit(body.limit, DEFAULT_LIMIT),
    )
    await worker_commands.record_poll(store, pool, queues, clock=clock)
    now = clock()
    return json_response([
        WorkerFlowRun(work_pool_id=pool.id, work_queue_id=queue.id, flow_run=to_flow_run(run, now)) for queue, run in runs
    ])


# --- /work_queues ------------------------------------------------------------------------------

QUEUE_NOT_FOUND = "Work queue not found"


async def _queue(request: web.Request) -> WorkQueueView:
    return present(await queries.get_queue(_store(request), path_uuid(request)), QUEUE_NOT_FOUND)


@routes.post("/work_queues/")
@documented(summary="Create a work queue", request=WorkQueueCreate, response=WorkQueue, status=201,
            errors={404: "No such work pool", 409: "The pool has a queue of that name"})
async def create_work_queue(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkQueueCreate)
    pool_name = body.work_pool_name or DEFAULT_POOL
    store, clock = _store(request), _clock(request)
    if body.work_pool_name is None and await queries.get_pool_by_name(store, DEFAULT_POOL) is None:
        await commands.create_pool(store, commands.NewWorkPool(name=DEFAULT_POOL, type="prefect-agent"), clock=clock)
    pool, view = await commands.create_queue(store, pool_name, _new_queue(body), clock=clock)
    return json_response(await _shown_queue(request, view, pool.name), status=201)


@routes.get("/work_queues/{id}")
@documented(summary="Read a work queue", response=WorkQueue, errors={404: QUEUE_NOT_FOUND})
async def read_work_queue(request: web.Request) -> web.Response:
    return json_response(await _shown_queue(request, await _queue(request)))


@routes.get("/work_queues/name/{name}")
@documented(summary="Read a work queue of the default pool by name", response=WorkQueue, errors={404: QUEUE_NOT_FOUND})
async def read_work_queue_by_name(request: web.Request) -> web.Response:
    found = await queries.resolve_queue(_store(request), DEFAULT_POOL, request.match_info["name"])
    if found is None:
        raise NotFound(QUEUE_NOT_FOUND)
    pool, view = found
    return json_response(await _shown_queue(request, view, pool.name))


@routes.patch("/work_queues/{id}")
@documented(summary="Update a work queue", request=WorkQueueUpdate, status=204,
            errors={404: QUEUE_NOT_FOUND, 409: "Renamed to the name of another queue of the pool"})
async def update_work_queue(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkQueueUpdate)
    found = await commands.update_queue(
        _store(request), commands.queue_by_id(path_uuid(request)), _queue_changes(body), clock=_clock(request)
    )
    return no_content(found, QUEUE_NOT_FOUND)


@routes.delete("/work_queues/{id}")
@documented(summary="Delete a work queue", status=204, errors={404: QUEUE_NOT_FOUND, 422: "A pool's default queue"})
async def delete_work_queue(request: web.Request) -> web.Response:
    found = await commands.delete_queue(_store(request), commands.queue_by_id(path_uuid(request)), clock=_clock(request))
    return no_content(found, QUEUE_NOT_FOUND)


@routes.post("/work_queues/filter")
@documented(summary="List work queues", request=WorkQueueFilterRequest, request_required=False, response=list[WorkQueue])
async def filter_work_queues(request: web.Request) -> web.Response:
    body = await decode_body(request, WorkQueueFilterRequest, default=WorkQueueFilterRequest())
    views = await queries.queues_page(
        _store(request), None, body.work_queues, limit=page_limit(body.limit, DEFAULT_LIMIT), offset=body.offset or 0
    )
    names = await queries.pool_names(_store(request), list({v.work_pool_id for v in views}))
    return json_response([to_queue(v, names.get(v.work_pool_id)) for v in views])


@routes.post("/work_queues/{id}/get_runs")
@documented(summary="The scheduled runs of a work queue", request=WorkQueueRunsRequest, request_required=False,
            response=list[Any], errors={404: QUEUE_NOT_FOUND})
async def read_work_queue_runs(request: web.Request) -> web.Response:
    store, clock = _store(request), _clock(request)
    queue = await _queue(request)
    body = await decode_body(request, WorkQueueRunsRequest, default=WorkQueueRunsRequest())
    pool = present(await queries.get_pool(store, queue.work_pool_id), QUEUE_NOT_FOUND)
    runs = await queries.scheduled_runs(
        store, pool, [queue], before=body.scheduled_before or clock(), after=None,
        limit=page_limit(body.limit, DEFAULT_LIMIT),
    )
    await worker_commands.record_poll(store, pool, [queue], clock=clock)
    now = clock()
    return json_response([to_flow_run(run, now) for _queue_view, run in runs])


@routes.get("/work_queues/{id}/status")
@documented(summary="A work queue's health", response=WorkQueueStatusDetail, errors={404: QUEUE_NOT_FOUND})
async def read_work_queue_status(request: web.Request) -> web.Response:
    queue = await _queue(request)
    late = await queries.late_runs(_store(request), queue.id)
    healthy = queue_healthy(late, queue.last_polled, _clock(request)())
    return json_response(WorkQueueStatusDetail(
        healthy=healthy, late_runs_count=late, last_polled=queue.last_polled, health_check_policy=WorkQueueHealthPolicy(),
    ))
