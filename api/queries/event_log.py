"""Reading the event log itself for runlog's pages: a page of stored events, newest first, by
stream and type, and a stream's positions (what a time-travel slider moves over).

Pages are keyed by position (``before``), never by offset: positions are never reused, so a
page stays the same while the log grows, and retention's gaps cost nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from runlog.eventstore import EventStore
from runlog.schema import events as catalogue

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STREAM_POSITIONS_LIMIT = 1000
"""A time-travel slider's stops at most: the stream's latest events."""

_COLUMNS = "position, stream_id, version, id, type, data, recorded_at"
# Each filter is a fixed condition; only its values travel as parameters.
_BY_STREAM = "stream_id = ?"
_BY_TYPE = "type = ?"
_BEFORE = "position < ?"
SQL_STREAM_POSITIONS = (
    "SELECT position, type, recorded_at, data FROM events WHERE stream_id = ? ORDER BY version DESC LIMIT ?"
)
SQL_EVENT = f"SELECT {_COLUMNS} FROM events WHERE position = ?"  # noqa: S608 - fixed columns


class LoggedEvent(msgspec.Struct, kw_only=True):
    """An event of the log as the pages show it: the record, its payload as JSON (None when this
    runlog cannot read it) and a one-line summary."""

    position: int
    stream_id: str
    version: int
    id: str
    type: str
    recorded_at: datetime
    payload: Any
    summary: str


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(str(value).replace(" ", "T"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _summary_of(data: bytes) -> str:
    try:
        return summarize(msgspec.json.decode(catalogue.to_json(bytes(data))))
    except msgspec.DecodeError:
        return ""


def logged(position: int, stream_id: str, version: int, event_id: Any, type_: str, data: bytes,
           recorded_at: Any) -> LoggedEvent:
    try:
        payload = msgspec.json.decode(catalogue.to_json(bytes(data)))
    except msgspec.DecodeError:  # written by a newer runlog: shown without its payload
        payload = None
    return LoggedEvent(
        position=int(position), stream_id=stream_id, version=int(version), id=str(event_id), type=type_,
        recorded_at=_time(recorded_at), payload=payload, summary=summarize(payload),
    )


async def page(store: EventStore, *, stream: str | None = None, type_: str | None = None,
               before: int | None = None, limit: int = DEFAULT_LIMIT) -> list[LoggedEvent]:
    """Up to ``limit`` events below position ``before`` (the newest when None), newest first."""
    conditions: list[str] = []
    params: list[object] = []
    for condition, value in ((_BY_STREAM, stream), (_BY_TYPE, type_), (_BEFORE, before)):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = f"SELECT {_COLUMNS} FROM events {where}ORDER BY position DESC LIMIT ?"  # noqa: S608 - fixed parts
    async with store.reading() as tx:
        rows = await tx.fetch(sql, *params, limit)
    return [logged(*row) for row in rows]


async def event_at(store: EventStore, position: int) -> LoggedEvent | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_EVENT, position)
    return logged(*rows[0]) if rows else None


class Stop(msgspec.Struct, kw_only=True):
    """One stop of a time-travel slider: an event of the stream."""

    position: int
    type: str
    recorded_at: datetime
    summary: str = ""


async def stream_positions(store: EventStore, stream_id: str, limit: int = STREAM_POSITIONS_LIMIT) -> list[Stop]:
    """The stream's latest ``limit`` events, oldest first."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_STREAM_POSITIONS, stream_id, limit)
    return [Stop(position=int(p), type=t, recorded_at=_time(r), summary=_summary_of(d)) for p, t, r, d in reversed(rows)]


def event_types() -> list[str]:
    """Every type the catalogue stores, for the log page's type filter."""
    return sorted(kind.__struct_config__.tag for kind in catalogue.AnyEvent.__args__)  # type: ignore[attr-defined]


_NAMED = ("name", "event", "slug", "key", "status", "outcome", "reason")
_MAX_SUMMARY = 140


def summarize(payload: Any) -> str:
    """One line a person reads at a glance: the state entered, the names and statuses the event
    carries, else its first short fields."""
    if not isinstance(payload, dict):
        return ""
    parts: list[str] = []
    state = payload.get("state")
    if isinstance(state, dict):
        parts.append(f"→ {state.get('name') or state.get('type') or '?'}")
    for key in _NAMED:
        value = payload.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            parts.append(f"{key} {value}")
    if not parts:
        for key, value in payload.items():
            if key in ("kind", "type") or key.endswith("id") or isinstance(value, (dict, list)) or value is None:
                continue
            parts.append(f"{key} {value}")
            if len(parts) == 3:
                break
    text = ", ".join(parts)
    return text if len(text) <= _MAX_SUMMARY else text[: _MAX_SUMMARY - 1] + "…"


__all__ = ["LoggedEvent", "Stop", "event_at", "event_types", "logged", "page", "stream_positions", "summarize"]


# What the index page offers to travel through: the newest runs, every pool and limit. The
# newest runs are walked off flow_run_names_created (migration 0033) backwards, each joined to
# its run by key; ordering flow_runs by `created` read and sorted every run.
SQL_RECENT_RUNS = (
    "SELECT r.id, r.name, r.state_name FROM flow_run_names n JOIN flow_runs r ON r.id = n.run_id "
    "ORDER BY n.created DESC, n.run_id DESC LIMIT ?"
)
SQL_POOLS = "SELECT name, status FROM work_pools ORDER BY name"
SQL_LIMITS = "SELECT id, name, slot_limit FROM concurrency_limits WHERE deleted = ? ORDER BY name"


class Travels(msgspec.Struct, kw_only=True):
    runs: list[tuple[str, str, str | None]]
    pools: list[tuple[str, str]]
    limits: list[tuple[str, str, int]]


async def travels(store: EventStore, runs: int = 20) -> Travels:
    async with store.reading() as tx:
        found_runs = await tx.fetch(SQL_RECENT_RUNS, runs)
        pools = await tx.fetch(SQL_POOLS)
        limits = await tx.fetch(SQL_LIMITS, 0)
    return Travels(
        runs=[(str(i), n, s) for i, n, s in found_runs], pools=[(n, s) for n, s in pools],
        limits=[(str(i), n, int(s)) for i, n, s in limits],
    )


SQL_STREAM_EVENTS = "SELECT position, type, recorded_at, data FROM events WHERE stream_id = ? ORDER BY version"
# A pool's workers' streams ("worker-<pool id>-<name>") by a byte-order range, as
# projections/time_travel.py reads them; heartbeats (most of a busy pool's log) are no stops.
SQL_WORKER_STOPS = {
    "sqlite": "SELECT position, type, recorded_at, data FROM events WHERE stream_id >= ? AND stream_id < ? "
              "AND type <> 'worker.heartbeat'",
    "postgres": 'SELECT position, type, recorded_at, data FROM events WHERE stream_id COLLATE "C" >= ? '
                "AND stream_id COLLATE \"C\" < ? AND type <> 'worker.heartbeat'",
}


async def pool_stops(store: EventStore, name: str, limit: int = STREAM_POSITIONS_LIMIT) -> list[Stop]:
    """The events that changed the pool last called ``name`` (it, its queues, its workers'
    statuses), oldest first, the latest ``limit`` of them; none when no pool was so called."""
    from runlog.schema import streams  # noqa: PLC0415 - only this reader needs stream names

    async with store.reading() as tx:
        rows = await tx.fetch(SQL_STREAM_EVENTS, streams.WORK_POOLS)
        decoded = []
        for position, type_, recorded_at, data in rows:
            try:
                decoded.append((int(position), type_, recorded_at, data, catalogue.decode(bytes(data))))
            except msgspec.DecodeError:
                continue
        pool_id = None
        for *_, event in decoded:
            if isinstance(event, catalogue.WorkPoolCreated) and event.name == name:
                pool_id = event.work_pool_id
        if pool_id is None:
            return []
        queues = {e.work_queue_id for *_, e in decoded
                  if isinstance(e, catalogue.WorkQueueCreated) and e.work_pool_id == pool_id}
        stops = [
            Stop(position=p, type=t, recorded_at=_time(r), summary=_summary_of(d)) for p, t, r, d, e in decoded
            if getattr(e, "work_pool_id", None) == pool_id or getattr(e, "work_queue_id", None) in queues
        ]
        prefix = streams.worker(pool_id, "")
        workers = await tx.fetch(SQL_WORKER_STOPS[tx.dialect], prefix, prefix[:-1] + ".")
    stops += [Stop(position=int(p), type=t, recorded_at=_time(r), summary=_summary_of(d)) for p, t, r, d in workers]
    return sorted(stops, key=lambda s: s.position)[-limit:]
