"""The task run state cache: COMPLETED task run states filed under their cache keys, kept inline.

This is Prefect's ``task_run_state_cache`` table (what its CacheInsertion rule writes and its
CacheRetrieval rule reads), folded from the log. A state enters when it is written COMPLETED
with a ``state_details.cache_key`` by a transition that went through the task rules; a lookup
answers the newest entry for a key that is unexpired at a given moment, as Prefect's does.

Entries are ordered by the log position of the state's event, so a rebuild orders them the way
the live table did. An entry is dropped once a newer entry for its key *supersedes* it, that is
when the older one can never again be the answer: whenever the older one is unexpired, the newer
one is too (it never expires, or it expires no earlier). Lookups answer exactly what they would
with every entry kept; the table just stops growing for keys that are cached again and again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue

from .tables import from_us, in_list, list_param, us

__all__ = [
    "MAX_CACHE_KEY_LENGTH",
    "CacheEntry",
    "TaskRunStateCacheProjection",
    "add_entry",
    "all_entries",
    "cache_entry",
    "forget_task_run",
    "key_hash",
    "lookup",
    "newest_unexpired",
    "supersedes",
]

MAX_CACHE_KEY_LENGTH = 2000
"""Prefect's default PREFECT_SERVER_TASKS_MAX_CACHE_KEY_LENGTH: a longer key is never cached.

A constant, not a setting: the projection must file the same states on every rebuild."""


class CacheEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One cached state. ``state`` is None once its task run was deleted (see forget_task_run)."""

    cache_key: str
    cache_expiration: datetime | None
    task_run_id: UUID
    position: int  # the log position of the event that wrote the state: newer entries are higher
    state: catalogue.State | None

    def unexpired(self, now: datetime) -> bool:
        return self.cache_expiration is None or _aware(self.cache_expiration) > now


def _aware(moment: datetime) -> datetime:
    """A client's naive datetime is taken as UTC, as Prefect does."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- the fold, pure ---------------------------------------------------------------------------


def cache_entry(event: object, position: int) -> CacheEntry | None:
    """The entry a recorded event files, if any.

    Only a COMPLETED state with a cache key within MAX_CACHE_KEY_LENGTH, written by a
    transition that ran the task rules. In Prefect the cache is filled by the CacheInsertion
    rule, so a forced transition (no rules, except for background tasks, which keep their
    policy under ``force``) and a state the client reported as an event (Prefect's task run
    recorder does not touch the cache) file nothing.

    The copy CacheRetrieval writes for a cache hit (named "Cached") is filed as well, where
    Prefect files nothing: the log does not tell it from a COMPLETED state the client proposed.
    Lookups answer the same: the copy is newer than the entry it copied and has its key,
    expiration, data and message, and the rule makes a fresh copy of whichever it finds. Only a
    deleted task run (see forget_task_run) can tell the two apart.
    """
    if not isinstance(event, catalogue.TaskRunStateChanged):
        return None
    state = event.state
    key = state.state_details.cache_key
    if state.type is not catalogue.StateType.COMPLETED or not key or len(key) > MAX_CACHE_KEY_LENGTH:
        return None
    if event.task_run:  # reported by the client (it carries its own snapshot of the task run)
        return None
    if event.forced and not state.state_details.deferred:
        return None
    return CacheEntry(cache_key=key, cache_expiration=state.state_details.cache_expiration,
                      task_run_id=event.task_run_id, position=position, state=state)


def supersedes(newer: CacheEntry, older: CacheEntry) -> bool:
    """Whether ``older`` can never again be the answer for its key once ``newer`` exists."""
    if newer.cache_key != older.cache_key or newer.position <= older.position:
        return False
    if newer.cache_expiration is None:
        return True
    return older.cache_expiration is not None and _aware(older.cache_expiration) <= _aware(newer.cache_expiration)


def add_entry(entries: Iterable[CacheEntry], new: CacheEntry) -> list[CacheEntry]:
    """The entries after filing ``new``: the ones it supersedes go."""
    return [entry for entry in entries if not supersedes(new, entry)] + [new]


def forget_task_run(entries: Iterable[CacheEntry], task_run_id: UUID) -> list[CacheEntry]:
    """The entries after a task run is deleted: its entries stay, without their states.

    In Prefect deleting a task run deletes its states, and a cache row then points at no
    state: if it is the newest unexpired row for its key, the lookup finds nothing, rather
    than falling back to an older row. Keeping the entry as a tombstone answers the same.
    """
    return [msgspec.structs.replace(e, state=None) if e.task_run_id == task_run_id else e for e in entries]


def newest_unexpired(entries: Iterable[CacheEntry], cache_key: str, now: datetime) -> CacheEntry | None:
    """Prefect's lookup: the newest entry for ``cache_key`` unexpired at ``now`` (maybe a tombstone)."""
    found = [e for e in entries if e.cache_key == cache_key and e.unexpired(now)]
    return max(found, key=lambda e: e.position) if found else None


# -- storage ----------------------------------------------------------------------------------

# Rows are found by a digest of the key: a PostgreSQL btree entry holds at most about 2.7 kB,
# and a 2,000-character key may take up to 8 kB in UTF-8, which would fail the append. The key
# itself is kept as UTF-8 bytes, which hold any string the client may send (text cannot hold NUL).
CACHE = Table(
    "task_run_state_cache",
    ("state_id", "key_hash", "cache_key", "cache_expiration", "task_run_id", "position", "state"),
    key=("state_id",),
)
_ROW_COLUMNS = "state_id, cache_key, cache_expiration, task_run_id, position, state"
SQL_LOOKUP = (
    "SELECT cache_key, cache_expiration, task_run_id, position, state FROM task_run_state_cache "
    "WHERE key_hash = ? AND cache_key = ? AND (cache_expiration IS NULL OR cache_expiration > ?) "
    "ORDER BY position DESC LIMIT 1"
)
SQL_ALL = (
    "SELECT cache_key, cache_expiration, task_run_id, position, state FROM task_run_state_cache "
    "ORDER BY position"
)

_STATE_CHANGED = "task_run.state_changed"
_DELETED = "task_run.deleted"
_KEY_FIELD = b"cache_key"
_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(catalogue.State)


def key_hash(cache_key: str) -> str:
    return hashlib.sha256(cache_key.encode()).hexdigest()


def _entry(row: Sequence[Any]) -> CacheEntry:
    expiration, state = row[1], row[4]
    return CacheEntry(
        cache_key=bytes(row[0]).decode(), cache_expiration=None if expiration is None else _from_us(expiration),
        task_run_id=UUID(row[2]), position=row[3],
        state=None if state is None else _state_decoder.decode(bytes(state)),
    )


def _row(state_id: str, entry: CacheEntry) -> tuple[Any, ...]:
    # Rows are found by a digest of the key (see above); the key itself is kept as UTF-8 bytes.
    state = None if entry.state is None else _state_encoder.encode(entry.state)
    return (
        state_id, key_hash(entry.cache_key), entry.cache_key.encode(), us(entry.cache_expiration),
        str(entry.task_run_id), entry.position, state,
    )


def _from_us(value: int) -> datetime:
    moment = from_us(value)
    assert moment is not None
    return moment


async def lookup(tx: Tx, cache_key: str, now: datetime) -> CacheEntry | None:
    """The newest entry for ``cache_key`` unexpired at ``now``, tombstone or not (Prefect's query)."""
    rows = await tx.fetch(SQL_LOOKUP, key_hash(cache_key), cache_key.encode(), us(now))
    return _entry(rows[0]) if rows else None


async def all_entries(tx: Tx) -> list[CacheEntry]:
    """Every entry, oldest first (for tests and inspection)."""
    return [_entry(row) for row in await tx.fetch(SQL_ALL)]


class _ProbeDetails(msgspec.Struct, gc=False):
    cache_key: str | None = None


class _ProbeState(msgspec.Struct, gc=False):
    type: str
    state_details: _ProbeDetails = msgspec.field(default_factory=_ProbeDetails)


class _Probe(msgspec.Struct, gc=False):
    """What ``cache_entry`` looks at first, read without the rest of the payload (skipped)."""

    state: _ProbeState
    task_run: msgspec.Raw = msgspec.Raw()  # empty when absent


_json_probe = msgspec.json.Decoder(_Probe).decode
_msgpack_probe = msgspec.msgpack.Decoder(_Probe).decode
_EMPTY_MAPS = (b"{}", b"\x80")
"""An empty snapshot as JSON and as MessagePack."""


def _may_change(event_type: str, data: bytes) -> bool:
    """Whether an event may file or forget an entry, without decoding it whole.

    Most state changes carry no cache key, and the runs projection decodes them already. The
    field's name is in the payload, in MessagePack and in JSON alike, whenever the key is set.
    But it is also there in every client-reported state, whose snapshot of the task run names
    its cache_key (null, mostly): an import's every last task state. Those file nothing
    (``cache_entry``), so a state naming the field is probed for what ``cache_entry`` needs
    first (COMPLETED, a key, no snapshot) before it counts: else every batch holding one would
    be decoded whole here, and on PostgreSQL could not be prepared (``prepare``), taking the
    probed path with the runs folded twice.
    """
    if event_type == _DELETED:
        return True
    if event_type != _STATE_CHANGED or _KEY_FIELD not in data:
        return False
    try:
        probe = (_json_probe if data[:1] == b"{" else _msgpack_probe)(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return True  # let the full decode say what it is
    if probe.state.type != "COMPLETED" or not probe.state.state_details.cache_key:
        return False
    return len(probe.task_run) == 0 or bytes(probe.task_run) in _EMPTY_MAPS


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class TaskRunStateCacheProjection:
    """The inline projection of the task run state cache (``task_run_state_cache``)."""

    name = "task_run_state_cache"
    version = VERSION
    tables = (CACHE,)

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """Nothing to write unless the batch may file or forget an entry; then ``changes`` reads."""
        return None if any(_may_change(row.event.type, row.event.data) for row in rows) else RowChanges()

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        steps: list[CacheEntry | UUID] = []  # an entry to file, or a deleted task run's id
        for record in events:
            if not _may_change(record.type, record.data):
                continue
            event = catalogue.decode(record.data)
            if record.type == _STATE_CHANGED:
                entry = cache_entry(event, record.position)
                if entry is not None:
                    steps.append(entry)
            elif isinstance(event, catalogue.TaskRunDeleted):
                steps.append(event.task_run_id)
        if not steps:
            return changes
        # The entries the steps can touch: those under the keys filed (an entry prunes only
        # entries of its own key) and those of the deleted task runs.
        hashes = sorted({key_hash(s.cache_key) for s in steps if isinstance(s, CacheEntry)})
        task_runs = sorted({str(s) for s in steps if isinstance(s, UUID)})
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM task_run_state_cache "  # noqa: S608 - our own column names
            f"WHERE {in_list(tx, 'key_hash')} OR {in_list(tx, 'task_run_id')}"
        )
        rows = await tx.fetch(sql, list_param(tx, hashes), list_param(tx, task_runs))
        state_ids = {row[4]: row[0] for row in rows}  # entries are told apart by their position
        before = {entry.position: entry for entry in (_entry(row[1:]) for row in rows)}
        # Events are folded one by one, in log order: an entry prunes only what came before it.
        entries = list(before.values())
        for step in steps:
            if isinstance(step, CacheEntry):
                assert step.state is not None
                state_ids[step.position] = str(step.state.id)
                entries = add_entry(entries, step)
            else:
                entries = forget_task_run(entries, step)
        after = {entry.position: entry for entry in entries}
        for position in before.keys() - after.keys():
            changes.delete(CACHE, state_ids[position])
        for position, entry in after.items():
            if before.get(position) != entry:
                changes.upsert(CACHE, _row(state_ids[position], entry))
        return changes
