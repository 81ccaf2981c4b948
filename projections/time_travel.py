"""Time travel: a run, a work pool or a concurrency limit as it was at a past log position.

Each view is rebuilt by folding its streams' events up to that position through the same
pure evolve functions the inline projections use (runs.py, work_pools.py, concurrency.py), so
there is no second fold to drift from the first. A moment in time resolves to the last
position recorded at or before it. Positions are never reused but may have gaps (retention
prunes some events, commands/retention.py), so every bound here is a position, never a count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, Tx
from runlog.schema import events as catalogue
from runlog.schema import streams

from .concurrency import LimitView, evolve as evolve_limit, limit_id_for, stream_of
from .runs import FlowRunView, evolve_flow_run
from .work_pools import WorkerView, WorkPoolView, WorkQueueView, evolve_pool, evolve_queue, evolve_worker

SQL_POSITION_AT = {
    "sqlite": "SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= ?",
    "postgres": "SELECT coalesce(max(position), 0) FROM events WHERE recorded_at <= ?::timestamptz",
}
SQL_RECORDED_AT = {
    "sqlite": "SELECT recorded_at FROM events WHERE position <= ? ORDER BY position DESC LIMIT 1",
    "postgres": "SELECT recorded_at::text FROM events WHERE position <= ? ORDER BY position DESC LIMIT 1",
}
SQL_HEAD = "SELECT coalesce(max(position), 0) FROM events"
# A stream's events up to a position, by the (stream_id, version) key: version order is
# position order within a stream.
SQL_STREAM_UPTO = (
    "SELECT position, stream_id, version, data FROM events "
    "WHERE stream_id = ? AND position <= ? ORDER BY version"
)
# A pool's worker streams ("worker-<pool id>-<name>"), stream by stream: a range in byte order
# ('.' follows '-'), on PostgreSQL in the "C" collation, since a linguistic one (en_US...) may
# not sort punctuation by its code and the range would miss streams.
SQL_WORKER_STREAMS = {
    "sqlite": "SELECT stream_id, type, data FROM events "
              "WHERE stream_id >= ? AND stream_id < ? AND position <= ? ORDER BY stream_id, version",
    "postgres": 'SELECT stream_id, type, data FROM events WHERE stream_id COLLATE "C" >= ? '
                'AND stream_id COLLATE "C" < ? AND position <= ? ORDER BY stream_id, version',
}


class BadMoment(ValueError):
    """An ``at`` that is neither a log position nor a timestamp, or lies past the log's head."""


class Moment(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved ``at``: the log position, and the time the views are shown at (the time asked
    for, or when the event at that position was recorded)."""

    position: int
    time: datetime | None


def parse_at(text: str) -> int | datetime:
    """``at`` as given: a non-negative position, or an ISO 8601 time (naive means UTC)."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadMoment(
            f"'at' must be a log position (a whole number >= 0) or an ISO 8601 time, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sqlite_time(moment: datetime) -> str:
    # The events table's recorded_at form on SQLite (eventstore/sqlite.py): text order is time order.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def resolve(store: EventStore, at: str) -> Moment:
    """The position and time ``at`` names; BadMoment for a bad one or a position past the head."""
    wanted = parse_at(at)
    async with store.reading() as tx:
        (head,) = (await tx.fetch(SQL_HEAD))[0]
        if isinstance(wanted, int):
            if wanted > head:
                raise BadMoment(f"'at' position {wanted} is past the end of the log (position {head})")
            rows = await tx.fetch(SQL_RECORDED_AT[tx.dialect], wanted)
            return Moment(position=wanted, time=_as_time(rows[0][0]) if rows else None)
        param = _sqlite_time(wanted) if tx.dialect == "sqlite" else wanted.astimezone(UTC)
        (position,) = (await tx.fetch(SQL_POSITION_AT[tx.dialect], param))[0]
        return Moment(position=int(position), time=wanted)


def _decoded(rows: Iterable[Sequence[Any]]) -> list[tuple[int, str, int, Any]]:
    """(position, stream, version, event) for stored rows; a payload this runlog cannot read
    (written by a newer one) is skipped, as the live projections' readers would fail on it."""
    out = []
    for position, stream_id, version, data in rows:
        try:
            event = catalogue.decode(bytes(data))
        except msgspec.DecodeError:
            continue
        out.append((int(position), stream_id, int(version), event))
    return out


async def _stream(tx: Tx, stream_id: str, upto: int) -> list[tuple[int, str, int, Any]]:
    return _decoded(await tx.fetch(SQL_STREAM_UPTO, stream_id, upto))


async def flow_run_at(store: EventStore, run_id: UUID, position: int) -> FlowRunView | None:
    """The run's view after the events of its stream up to ``position`` (None: not yet, or deleted)."""
    view: FlowRunView | None = None
    async with store.reading() as tx:
        for _, _, version, event in await _stream(tx, streams.flow_run(run_id), position):
            view = evolve_flow_run(view, event, version)
    return view


async def limit_at(store: EventStore, limit_id: UUID, position: int) -> LimitView | None:
    """A concurrency limit after its stream's events up to ``position`` (None: not yet, or deleted)."""
    view: LimitView | None = None
    async with store.reading() as tx:
        for _, _, version, event in await _stream(tx, stream_of(limit_id), position):
            view = evolve_limit(view, event, version)
    return None if view is None or view.deleted else view


async def limit_by_name_at(store: EventStore, name: str, position: int) -> LimitView | None:
    return await limit_at(store, limit_id_for(name), position)


class PoolAt(msgspec.Struct, kw_only=True):
    """A work pool with its queues and workers, as the log made them up to a position."""

    pool: WorkPoolView
    queues: list[WorkQueueView]
    workers: list[WorkerView]


async def pool_at(store: EventStore, name: str, position: int) -> PoolAt | None:
    """The pool named ``name`` at ``position``, folded as WorkPoolsProjection folds: pool and
    queue events from the "work-pools" stream, polls from the pool's polls stream (merged in
    position order, since a queue update may set last_polled too), workers from their streams."""
    async with store.reading() as tx:
        shared = await _stream(tx, streams.WORK_POOLS, position)
        # Pool names are unique among live pools; the one called ``name`` at that position is the answer.
        pool_id = _pool_id_named(shared, name)
        if pool_id is None:
            return None
        pool: WorkPoolView | None = None
        queues: dict[UUID, WorkQueueView] = {}
        polls = await _stream(tx, streams.work_pool_polls(pool_id), position)
        for _, _, _, event in sorted([*shared, *polls], key=lambda item: item[0]):
            if getattr(event, "work_pool_id", None) == pool_id and isinstance(event, _POOL_EVENTS):
                pool = evolve_pool(pool, event)
                if pool is None:
                    queues.clear()
            elif isinstance(event, catalogue.WorkQueueCreated):
                if event.work_pool_id == pool_id:
                    queues[event.work_queue_id] = evolve_queue(None, event)  # type: ignore[assignment]
            elif isinstance(event, _QUEUE_ONLY):
                if event.work_queue_id in queues:
                    queue = evolve_queue(queues[event.work_queue_id], event)
                    if queue is None:
                        del queues[event.work_queue_id]
                    else:
                        queues[event.work_queue_id] = queue
            elif isinstance(event, catalogue.WorkQueuesPolled):
                for queue_id in event.work_queue_ids:
                    if queue_id in queues:
                        queues[queue_id] = evolve_queue(queues[queue_id], event)  # type: ignore[assignment]
        if pool is None:
            return None
        workers: dict[str, WorkerView] = {}
        for event in await _worker_events(tx, pool_id, position):
            if getattr(event, "work_pool_id", None) != pool_id:
                continue
            worker = evolve_worker(workers.get(event.name), event)
            if worker is None:
                workers.pop(event.name, None)
            else:
                workers[event.name] = worker
    return PoolAt(
        pool=pool, queues=sorted(queues.values(), key=lambda q: (q.priority, q.name)),
        workers=sorted(workers.values(), key=lambda w: w.name),
    )


async def _worker_events(tx: Tx, pool_id: UUID, upto: int) -> list[Any]:
    """The pool's workers' events up to ``upto`` that their views depend on, stream by stream.

    A heartbeat only overwrites what the one before it wrote (work_pools.evolve_worker), so of
    each life of a worker (between deletions) only its first heartbeat (its ``created``) and its
    last are decoded, and every other event: a busy pool's heartbeats are most of its log.
    """
    prefix = streams.worker(pool_id, "")
    rows = await tx.fetch(SQL_WORKER_STREAMS[tx.dialect], prefix, prefix[:-1] + ".", upto)
    needed: list[Sequence[Any]] = []
    stream: list[Sequence[Any]] = []
    for row in [*rows, None]:
        if stream and (row is None or row[0] != stream[0][0]):
            needed += _needed_of(stream)
            stream = []
        if row is not None:
            stream.append(row)
    return [event for _, _, _, event in _decoded((0, r[0], 0, r[2]) for r in needed)]


def _needed_of(stream: list[Sequence[Any]]) -> list[Sequence[Any]]:
    """Of one worker stream's (stream_id, type, data) rows in version order, those a fold needs."""
    needed: list[Sequence[Any]] = []
    life: list[Sequence[Any]] = []
    for row in [*stream, None]:
        if row is None or row[1] == "worker.deleted":
            beats = [i for i, r in enumerate(life) if r[1] == "worker.heartbeat"]
            skipped = set(beats[1:-1])
            needed += [r for i, r in enumerate(life) if i not in skipped]
            life = []
            if row is not None:
                needed.append(row)
        else:
            life.append(row)
    return needed


_POOL_EVENTS = (catalogue.WorkPoolCreated, catalogue.WorkPoolUpdated, catalogue.WorkPoolStatusChanged, catalogue.WorkPoolDeleted)
_QUEUE_ONLY = (catalogue.WorkQueueUpdated, catalogue.WorkQueueStatusChanged, catalogue.WorkQueueDeleted)


def _pool_id_named(events: Sequence[tuple[int, str, int, Any]], name: str) -> UUID | None:
    """The id of the pool called ``name`` after these events, if one was then."""
    names: dict[UUID, str] = {}
    for _, _, _, event in events:
        if isinstance(event, catalogue.WorkPoolCreated):
            names[event.work_pool_id] = event.name
        elif isinstance(event, catalogue.WorkPoolDeleted):
            names.pop(event.work_pool_id, None)
    return next((pool_id for pool_id, named in names.items() if named == name), None)


__all__ = [
    "BadMoment", "Moment", "PoolAt", "flow_run_at", "limit_at", "limit_by_name_at", "parse_at", "pool_at", "resolve",
]
