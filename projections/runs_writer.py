"""Keeps the flow_runs and task_runs tables (and their tag tables) in step with the log, and
reads single runs back from them for commands and routes.

Runs inline, inside the append's transaction: for the runs a batch touches it loads their
current views, folds the batch's events into them (projections/runs.py) and returns the rows
that change; the store writes them (eventstore/tables.py). With them go the changes to
flow_run_counts, summed over the batch (see ``FLOW_RUN_COUNTS``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import msgspec

from runlog.schema import streams
from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.eventstore.planning import Row
from runlog.schema import events as catalogue
from runlog.schema.ids import id_text

from .cache import ViewCache
from .runs import FlowRunView, TaskRunView, evolve_flow_run, evolve_task_run
from .runs_batch import fold_flow_run, fold_task_run
from .tables import in_list, list_param, read_view, text, us


_FLOW_RUN_TYPES = frozenset(
    {"flow_run.created", "flow_run.state_changed", "flow_run.updated", "flow_run.deleted", "flow_run.work_queue_cleared"}
)
_TASK_RUN_TYPES = frozenset({"task_run.created", "task_run.state_changed", "task_run.updated", "task_run.deleted"})

FLOW_RUNS = Table(
    "flow_runs",
    ("id", "version", "flow_id", "name", "state_type", "state_name", "start_time", "end_time",
     "expected_start_time", "next_scheduled_start_time", "deployment_id", "parent_task_run_id",
     "work_queue_name", "flow_version", "idempotency_key", "created", "view", "work_queue_id", "created_by_id",
     "created_by_type"),
    key=("id",),
)
FLOW_RUN_TAGS = Table("flow_run_tags", ("run_id", "tag"), key=("run_id", "tag"))
FLOW_RUN_NAMES = Table("flow_run_names", ("run_id", "name", "created"), key=("run_id",), own=("id",))
"""Each flow run's name, for the name like_ filter (api/queries/run_filters.py): its trigram
index is here, not on flow_runs, whose every state change would rewrite it (migration 0030; on
SQLite an FTS5 table kept by triggers, keyed by the ``id`` only SQLite has, migration 0035).
Written only when a run is created, renamed or deleted."""
TASK_RUNS = Table(
    "task_runs",
    ("id", "version", "flow_run_id", "name", "task_key", "dynamic_key", "state_type", "state_name",
     "state_timestamp", "start_time", "end_time", "expected_start_time", "created", "view"),
    key=("id",),
)
TASK_RUN_TAGS = Table("task_run_tags", ("run_id", "tag"), key=("run_id", "tag"))
FLOW_RUN_COUNTS = Table(
    "flow_run_counts", ("dim", "key", "flow_id", "state_type", "state_name", "n"),
    key=("dim", "key", "flow_id", "state_type", "state_name"), adds="n", deltas="flow_run_count_deltas",
)
"""How many flow runs there are per flow and current state ('' for none): in all (dim 'run', key
''), per deployment and per work queue (key: the id; a run with none is under 'run' only), per
tag (once per distinct tag of the run) and per pair of its distinct tags ('tag_pair', key: the
two joined by ``tag_pair``, migration 0032), which /flow_runs/count sums (api/queries/run_counts.py:
the runs without a deployment are the 'run' count less the 'deployment' counts). A state change
of a run with neither deployment nor queue nor tags thus writes two rows, not six (migration 0029). Kept here, in the
transaction that writes flow_runs, so it is exact at every snapshot: each batch adds, per count,
the runs that entered it less those that left it, in one statement (migration 0028 dropped the
triggers on flow_runs that did it per written row). A count whose runs all left it stays, at 0.

On PostgreSQL the amounts are appended to flow_run_count_deltas instead (migration 0034): every
batch moved runs between the same few hot rows, updating each (a new row version, an index
probe, a dead version for the next batch to walk past). A count is then the sum of its row and
its deltas (the view flow_run_counts_totals, which readers read there); the writer folds the
deltas into the rows every so often (eventstore/postgres.py, ``compact_sql``)."""

_view_encoder = msgspec.json.Encoder()
_to_builtins = msgspec.to_builtins
decode_flow_run = msgspec.json.Decoder(FlowRunView).decode
decode_task_run = msgspec.json.Decoder(TaskRunView).decode


def _state_columns(view: FlowRunView | TaskRunView) -> tuple[Any, Any]:
    state = view.state
    # ``_value_``, not ``value``: the enum's property is two Python calls, and this runs per row.
    return (state.type._value_, state.name) if state is not None else (None, None)


def _flow_run_row(view: FlowRunView) -> tuple:
    state_type, state_name = _state_columns(view)
    # The five id columns made text in one C call (None stays None), not a call or three each.
    run_id, flow_id, deployment_id, parent_id, queue_id = _to_builtins(
        (view.id, view.flow_id, view.deployment_id, view.parent_task_run_id, view.work_queue_id)
    )
    return (
        run_id, view.version, flow_id, view.name, state_type, state_name,
        us(view.start_time), us(view.end_time), us(view.expected_start_time), us(view.next_scheduled_start_time),
        deployment_id, parent_id, view.work_queue_name, view.flow_version,
        view.idempotency_key, us(view.created), _view_encoder.encode(view), queue_id,
        *_creator(view.created_by),
    )


def _creator(created_by: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """The created_by_id and created_by_type columns (what the flow run filter on created_by reads)."""
    if not created_by:
        return None, None
    creator_id, kind = created_by.get("id"), created_by.get("type")
    return (None if creator_id is None else str(creator_id)), (None if kind is None else str(kind))


def _task_run_row(view: TaskRunView) -> tuple:
    state_type, state_name = _state_columns(view)
    return (
        id_text(view.id), view.version, text(view.flow_run_id), view.name, view.task_key, view.dynamic_key,
        state_type, state_name, us(view.state.timestamp if view.state else None), us(view.start_time),
        us(view.end_time), us(view.expected_start_time), us(view.created), _view_encoder.encode(view),
    )


# Per column of a runs table, the fields of the view it is made of (None: the view itself,
# which a new version always changes). A row whose stored view was folded into the new one is
# written with only the columns whose fields differ (RowChanges.upsert's ``changed``): on
# SQLite a state change then rewrites the entries of the indexes on state and times, not those
# on the flow, name, deployment, parent or key that it cannot change. The columns left out hold
# what the stored view makes of them: a change to how rows are made bumps VERSION, and the
# tables are rebuilt.
_FLOW_RUN_SOURCES: dict[str, tuple[str, ...] | None] = {
    "id": ("id",), "version": None, "flow_id": ("flow_id",), "name": ("name",), "state_type": ("state",),
    "state_name": ("state",), "start_time": ("start_time",), "end_time": ("end_time",),
    "expected_start_time": ("expected_start_time",), "next_scheduled_start_time": ("next_scheduled_start_time",),
    "deployment_id": ("deployment_id",), "parent_task_run_id": ("parent_task_run_id",),
    "work_queue_name": ("work_queue_name",), "flow_version": ("flow_version",),
    "idempotency_key": ("idempotency_key",), "created": ("created",), "view": None,
    "work_queue_id": ("work_queue_id",), "created_by_id": ("created_by",), "created_by_type": ("created_by",),
}
_TASK_RUN_SOURCES: dict[str, tuple[str, ...] | None] = {
    "id": ("id",), "version": None, "flow_run_id": ("flow_run_id",), "name": ("name",), "task_key": ("task_key",),
    "dynamic_key": ("dynamic_key",), "state_type": ("state",), "state_name": ("state",),
    "state_timestamp": ("state",), "start_time": ("start_time",), "end_time": ("end_time",),
    "expected_start_time": ("expected_start_time",), "created": ("created",), "view": None,
}


class _Sources:
    """A runs table's columns by the view fields they are made of, to tell which columns of a
    row two views of one run differ in."""

    def __init__(self, table: Table, sources: dict[str, tuple[str, ...] | None]) -> None:
        if tuple(sources) != table.columns:
            raise ValueError(f"table {table.name}: the sources name {tuple(sources)}, not its columns")
        self.always = frozenset(column for column, fields in sources.items() if fields is None)
        by_field: dict[str, list[str]] = {}
        for column, fields in sources.items():
            for field in fields or ():
                by_field.setdefault(field, []).append(column)
        self.columns = tuple(frozenset(columns) for columns in by_field.values())
        # All the fields in one C call per view, not a getattr per field (sixteen for a flow run).
        self._values = operator.attrgetter(*by_field)

    def changed(self, old: Any, new: Any) -> frozenset[str]:
        """The columns of ``new``'s row that may differ from ``old``'s."""
        changed = self.always
        for before, after, columns in zip(self._values(old), self._values(new), self.columns):
            # A fold keeps the objects of the fields it leaves alone: most are the same object.
            if before is not after and before != after:
                changed = changed | columns
        return changed


def cache_key(table: str, run_id: object) -> str:
    return f"{table}:{run_id}"


VERSION = 1
"""This fold's version: bump it whenever the rows it makes from the same events change; a
server that starts with a new version rebuilds the tables from the log (projections/rebuild.py)."""


class RunsProjection:
    """The inline projection of flow runs and task runs.

    ``cache`` (projections/cache.py) may hold committed views; a view found there at exactly
    the version before a batch's first event for that run saves reading it back.
    """

    name = "runs"
    version = VERSION
    reads_by_key_only = True  # it reads runs by id only: a rebuild's shadow needs no other index
    tables = (FLOW_RUNS, FLOW_RUN_TAGS, FLOW_RUN_NAMES, TASK_RUNS, TASK_RUN_TAGS, FLOW_RUN_COUNTS)

    def __init__(self, cache: ViewCache | None = None) -> None:
        self.cache = cache if cache is not None else ViewCache(0)

    async def changes(self, tx: Tx, events: Sequence[RecordedEvent]) -> RowChanges:
        changes = RowChanges()
        for kind in _KINDS:
            batch = [(e.stream_id, e.version, e.data, e.type) for e in events if e.type in kind.types]
            if not batch:
                continue
            views, missing = self._known_views(batch, kind)
            if missing:
                # The table name comes from this module's declarations, never from input.
                sql = f"SELECT id, view FROM {kind.table.name} WHERE {in_list(tx, 'id')}"
                rows = await tx.fetch(sql, list_param(tx, missing))
                views.update({row[0]: kind.decode(bytes(row[1])) for row in rows})
            _fold(kind, views, batch, changes, partial=True)
        return changes

    def prepare(self, rows: Sequence[Row]) -> RowChanges | None:
        """The batch's changes when every view it needs is cached, else None.

        The PostgreSQL writer sends these with the append in one statement; None makes it take
        the transaction path, where ``changes`` reads what is missing. It writes rows whole
        (PostgreSQL writes a whole new row version and compares index columns by value
        anyway), so these do not say which columns changed.
        """
        changes = RowChanges()
        for kind in _KINDS:
            batch = [(r.stream_id, r.version, r.event.data, r.event.type) for r in rows if r.event.type in kind.types]
            if not batch:
                continue
            views, missing = self._known_views(batch, kind)
            if missing:
                return None
            _fold(kind, views, batch, changes, partial=False)
        return changes

    def _known_views(self, batch: Sequence[tuple[str, int, bytes, str]], kind: _Kind) -> tuple[dict[str, Any], list[str]]:
        """Views cached at the version before the batch, and the runs whose view must be read.

        A run whose stream starts in this batch has no row yet: nothing to read for it.
        """
        first_version: dict[str, int] = {}
        for stream_id, version, _data, _type in batch:
            first_version.setdefault(stream_id.removeprefix(kind.prefix), version)
        views: dict[str, Any] = {}
        missing = []
        for run_id, version in first_version.items():
            cached = self.cache.at_version(cache_key(kind.table.name, run_id), version - 1)
            if cached is not None:
                views[run_id] = cached
            elif version > 1:
                missing.append(run_id)
        return views, missing


class _Kind(msgspec.Struct, frozen=True):
    """Flow runs or task runs: their table, tag table, stream prefix, fold and row."""

    table: Table
    tags: Table
    prefix: str
    types: frozenset[str]
    evolve: Callable[[Any, Any, int], Any]
    decode: Callable[[bytes], Any]
    to_row: Callable[[Any], tuple]
    sources: _Sources | None = None
    """Which columns of a row may change between two views (None: write rows whole)."""
    fold: Callable[[Any, Sequence[tuple[int, str, bytes]]], Any] | None = None
    """A run's events at once, as ``evolve`` one by one would fold them (None: there is none)."""
    counts: Table | None = None
    """The table counting these runs (``FLOW_RUN_COUNTS``), or None."""
    names: Table | None = None
    """The table of these runs' names (``FLOW_RUN_NAMES``), or None."""


def _fold(
    kind: _Kind, views: dict[str, Any], batch: Sequence[tuple[str, int, bytes, str]], changes: RowChanges, *,
    partial: bool,
) -> None:
    """Fold the batch's events into ``views`` (in place) and record the rows that change; with
    ``partial``, which columns of each stored row they change (see ``_Sources``)."""
    prior = dict(views)  # the views before the batch (a fold replaces them, never changes one)
    stored = prior if partial and kind.sources is not None else {}  # the views the stored rows were made of
    before = {run_id: dict.fromkeys(view.tags) for run_id, view in views.items() if view is not None}
    counted = {run_id: _counted(view) for run_id, view in views.items() if view is not None} if kind.counts else {}
    if kind.fold is not None and len(batch) > 1:
        # Each run's events at once (projections/runs_batch.py): a rebuild's batches hold runs
        # from their creation to their end, whose intermediate views nobody reads.
        streams_of: dict[str, list[tuple[int, str, bytes]]] = {}
        for stream_id, version, data, event_type in batch:
            streams_of.setdefault(stream_id.removeprefix(kind.prefix), []).append((version, event_type, data))
        for run_id, events in streams_of.items():
            views[run_id] = kind.fold(views.get(run_id), events)
    else:
        for stream_id, version, data, _type in batch:
            run_id = stream_id.removeprefix(kind.prefix)
            views[run_id] = kind.evolve(views.get(run_id), catalogue.decode(data), version)
    for run_id, view in views.items():
        old_tags = before.get(run_id, {})
        if view is None:
            if run_id in before:
                changes.delete(kind.table, run_id)
                if kind.names is not None:
                    changes.delete(kind.names, run_id)
            new_tags: dict[str, None] = {}
        else:
            old = stored.get(run_id)
            changed = kind.sources.changed(old, view) if old is not None and kind.sources is not None else None
            changes.upsert(kind.table, kind.to_row(view), changed=changed)
            new_tags = dict.fromkeys(view.tags)
            # A run's name and creation time (migrations 0030, 0033): written when a run is created,
            # renamed or deleted, never by a state change, so the newest runs are read off its index.
            was = prior.get(run_id)
            if kind.names is not None and (was is None or was.name != view.name or was.created != view.created):
                changes.upsert(kind.names, (id_text(view.id), view.name, us(view.created)))
        if old_tags != new_tags:  # most batches leave a run's tags alone
            for tag in old_tags.keys() - new_tags.keys():
                changes.delete(kind.tags, (run_id, tag))
            for tag in new_tags.keys() - old_tags.keys():
                changes.upsert(kind.tags, (run_id, tag))
        if kind.counts is not None:
            _count(kind.counts, counted.get(run_id), _counted(view) if view is not None else None, changes)


def _counted(view: FlowRunView) -> tuple[Any, ...]:
    """What a run's counts depend on: flow, deployment and queue (as text; None for none), state
    type and name, distinct tags."""
    state = view.state
    # The three ids made text in one C call (msgspec turns a UUID into its canonical text).
    flow, deployment, queue = _to_builtins((view.flow_id, view.deployment_id, view.work_queue_id))
    return (
        flow, deployment, queue, state.type._value_ if state is not None else "",
        (state.name or "") if state is not None else "", tuple(dict.fromkeys(view.tags)),
    )


def _count(table: Table, old: tuple | None, new: tuple | None, changes: RowChanges) -> None:
    """The run's move between counts: -1 under each it was in (if it was stored), +1 under each
    it is in now (if it still is). Most batches change none of it for most runs (a view, a time)."""
    if old == new:
        return
    for sign, counted in ((-1, old), (1, new)):
        if counted is None:
            continue
        flow, deployment, queue, state_type, state_name, tags = counted
        changes.add(table, ("run", "", flow, state_type, state_name), sign)
        # No rows for no deployment or no queue: they would repeat the run's own (migration 0029).
        if deployment is not None:
            changes.add(table, ("deployment", deployment, flow, state_type, state_name), sign)
        if queue is not None:
            changes.add(table, ("queue", queue, flow, state_type, state_name), sign)
        if not tags:
            continue
        for tag in tags:
            changes.add(table, ("tag", tag, flow, state_type, state_name), sign)
        if len(tags) > PAIRED_TAGS_AT_MOST:
            # Too many pairs to keep at every state change (n(n-1)/2): the run is counted
            # under each of its tags as unpaired instead, and a count of two tags that both
            # have unpaired runs is left to the query (api/queries/run_counts.py).
            for tag in tags:
                changes.add(table, ("tag_unpaired", tag, flow, state_type, state_name), sign)
        elif len(tags) > 1:
            # Each pair of distinct tags (migration 0032): a count of two tags, all_ or any_,
            # is then a sum of rows too (api/queries/run_counts.py).
            ordered = sorted(tags)
            for i, first in enumerate(ordered):
                for second in ordered[i + 1:]:
                    changes.add(table, ("tag_pair", tag_pair(first, second), flow, state_type, state_name), sign)


PAIRED_TAGS_AT_MOST = 8
"""A run with more distinct tags than this has no 'tag_pair' rows (28 at most: each state change
moves them all) but a 'tag_unpaired' row per tag; migration 0032 counts the same way."""

TAG_PAIR_SEPARATOR = "\x1f"
"""Between the two tags of a 'tag_pair' key (the unit separator: a tag holding it is counted
in pairs all the same, but a count naming it is left to the query, where its key could be
another pair's)."""


def tag_pair(first: str, second: str) -> str:
    """The 'tag_pair' key of two distinct tags, the lesser first (code point order, as SQL's
    binary / "C" collation orders their UTF-8)."""
    return f"{first}{TAG_PAIR_SEPARATOR}{second}" if first < second else f"{second}{TAG_PAIR_SEPARATOR}{first}"


_KINDS = (
    _Kind(FLOW_RUNS, FLOW_RUN_TAGS, streams.FLOW_RUN, _FLOW_RUN_TYPES, evolve_flow_run, decode_flow_run, _flow_run_row,
          _Sources(FLOW_RUNS, _FLOW_RUN_SOURCES), fold_flow_run, FLOW_RUN_COUNTS, FLOW_RUN_NAMES),
    _Kind(TASK_RUNS, TASK_RUN_TAGS, streams.TASK_RUN, _TASK_RUN_TYPES, evolve_task_run, decode_task_run, _task_run_row,
          _Sources(TASK_RUNS, _TASK_RUN_SOURCES), fold_task_run),
)


# -- reads of single runs -----------------------------------------------------------------------

SQL_FLOW_RUN = "SELECT view FROM flow_runs WHERE id = ?"
SQL_TASK_RUN = "SELECT view FROM task_runs WHERE id = ?"
# What creating a run must read, in one statement: whether the references it names exist, and
# the live run that already holds its key. A NULL parameter matches nothing.
SQL_FLOW_RUN_CREATE_READ = (
    "SELECT (SELECT 1 FROM flows WHERE id = ?), (SELECT 1 FROM task_runs WHERE id = ?), "
    "(SELECT view FROM flow_runs WHERE flow_id = ? AND idempotency_key = ?)"
)
SQL_FLOW_EXISTS = "SELECT 1 FROM flows WHERE id = ?"
SQL_TASK_RUN_CREATE_READ = "SELECT (SELECT 1 FROM flow_runs WHERE id = ?), (SELECT view FROM task_runs WHERE id = ?)"
SQL_TASK_RUN_IDS_OF_FLOW_RUN = "SELECT id FROM task_runs WHERE flow_run_id = ?"
SQL_FLOW_RUN_IDS_OF_FLOW = "SELECT id FROM flow_runs WHERE flow_id = ?"
SQL_FLOW_RUN_EXISTS = "SELECT id FROM flow_runs WHERE id = ?"
SQL_FLOW_RUN_IDS_OF_QUEUE = "SELECT id FROM flow_runs WHERE work_queue_id = ?"


async def get_flow_run(store: EventStore, run_id: UUID) -> FlowRunView | None:
    return await read_view(store, SQL_FLOW_RUN, str(run_id), decode_flow_run)


async def get_task_run(store: EventStore, run_id: UUID) -> TaskRunView | None:
    return await read_view(store, SQL_TASK_RUN, str(run_id), decode_task_run)


async def flow_run_create_read(
    store: EventStore, flow_id: UUID, parent_task_run_id: UUID | None, idempotency_key: str | None
) -> tuple[bool, bool, FlowRunView | None]:
    """Whether the flow exists, whether the parent task run exists (True when none is named),
    and the live flow run of that flow holding ``idempotency_key``."""
    async with store.reading() as tx:
        if parent_task_run_id is None and idempotency_key is None:
            # Most creations name neither: a statement of one index probe plans several times
            # faster than the three-part one, and creating runs is on the hot path.
            rows = await tx.fetch(SQL_FLOW_EXISTS, str(flow_id))
            return bool(rows), True, None
        rows = await tx.fetch(
            SQL_FLOW_RUN_CREATE_READ, str(flow_id), text(parent_task_run_id), str(flow_id), idempotency_key
        )
    flow, parent, view = rows[0]
    existing = decode_flow_run(bytes(view)) if view is not None else None
    return flow is not None, parent_task_run_id is None or parent is not None, existing


async def task_run_create_read(
    store: EventStore, flow_run_id: UUID | None, task_run_id: UUID
) -> tuple[bool, TaskRunView | None]:
    """Whether the flow run exists (True when none is named), and the task run with this id."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_TASK_RUN_CREATE_READ, text(flow_run_id), str(task_run_id))
    flow_run, view = rows[0]
    existing = decode_task_run(bytes(view)) if view is not None else None
    return flow_run_id is None or flow_run is not None, existing


async def _ids(store: EventStore, sql: str, key: UUID) -> list[UUID]:
    async with store.reading() as tx:
        rows = await tx.fetch(sql, str(key))
    return [UUID(row[0]) for row in rows]


async def task_run_ids_of_flow_run(store: EventStore, flow_run_id: UUID) -> list[UUID]:
    return await _ids(store, SQL_TASK_RUN_IDS_OF_FLOW_RUN, flow_run_id)


async def flow_run_ids_of_flow(store: EventStore, flow_id: UUID) -> list[UUID]:
    return await _ids(store, SQL_FLOW_RUN_IDS_OF_FLOW, flow_id)


async def flow_run_ids_of_queue(store: EventStore, queue_id: UUID) -> list[UUID]:
    """The runs whose work_queue_id is ``queue_id`` (the flow_runs_queue_scheduled index's range)."""
    return await _ids(store, SQL_FLOW_RUN_IDS_OF_QUEUE, queue_id)


async def flow_run_exists(store: EventStore, run_id: UUID) -> bool:
    return bool(await _ids(store, SQL_FLOW_RUN_EXISTS, run_id))
