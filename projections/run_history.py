"""The pre-aggregated run history: counts and time sums per bucket and state, folded from the log.

An asynchronous projection (projections/checkpoints.py) behind ``/flow_runs/history`` and
``/task_runs/history`` when they are unfiltered and aligned to a grain: it keeps

- ``run_history_runs``: each run's part in the history (expected start, start and end times,
  total run time, current state), folded with the runs projection's own folds
  (projections/runs.py), so it is what the runs table said at the checkpoint;
- ``run_history_cells``: per kind, grain (1 minute, 1 hour, 1 day), bucket of expected start
  time and current state, the runs' count and their run time and lateness sums in whole
  microseconds (integers, so -1 from the old cell and +1 to the new one never drift, and a
  rebuild gives the same rows: `projections verify` compares them).

Figures that depend on "now" cannot be summed ahead, so two kinds of run are kept apart. A
Running run (its run time grows) stays out of the cells and is tallied at read time from its
``run_history_runs`` row (few: they are running). A run not started and not finished is late
by now - expected once due: its cells count it and sum its expected start's offset in the
cell, so a cell wholly in the past gives its lateness as waiting * (now - bucket) - offsets;
those due in now's own cell are added from their rows. Everything is read in one snapshot with
the checkpoint; the events after it are folded in at read time (``read_history``), so an answer
is exactly the per-request query's at the log's head.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from runlog.eventstore import EventStore, RecordedEvent, RowChanges, Table, Tx
from runlog.schema import events as catalogue
from runlog.schema import streams

from .history import RUNNING, TERMINAL_TYPES, RunPoint, StateTally, Window, lateness, merged, tally
from .runs import TaskRunView, _track_times, evolve_task_run
from .tables import from_us, us

NAME = "run_history"
FLOW_RUN, TASK_RUN = "flow_run", "task_run"
GRAINS = (86_400_000_000, 3_600_000_000, 60_000_000)
"""The bucket widths kept, coarsest first, in microseconds: a request is served at the coarsest
one that divides both its start and its interval (so 60 s, 300 s, 3600 s and 86400 s buckets
starting on a whole minute are served exactly)."""

RUNS = Table(
    "run_history_runs",
    ("kind", "id", "expected_start_time", "start_time", "end_time", "total_run_time", "state_type", "state_name",
     "state_timestamp", "volatile"),
    key=("kind", "id"),
)
CELLS = Table(
    "run_history_cells",
    ("kind", "grain", "bucket", "state_type", "state_name", "count_runs", "sum_run_time", "sum_lateness", "waiting",
     "sum_offset"),
    key=("kind", "grain", "bucket", "state_type", "state_name"),
)

_TYPES = {
    FLOW_RUN: frozenset({"flow_run.created", "flow_run.state_changed", "flow_run.deleted"}),
    TASK_RUN: frozenset({"task_run.created", "task_run.state_changed", "task_run.deleted"}),
}
SETTLED, RUNNING_NOW, WAITING = 0, 1, 2
_PREFIX = {FLOW_RUN: streams.FLOW_RUN, TASK_RUN: streams.TASK_RUN}
_NOBODY = UUID(int=0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Member(NamedTuple):
    """What the history needs of one run (times in microseconds since the epoch)."""

    expected_start_time: int | None
    start_time: int | None
    end_time: int | None
    total_run_time: float
    state_type: str | None
    state_name: str | None
    state_timestamp: int | None

    @property
    def counted(self) -> bool:
        """Whether the history shows the run at all (the query needs both)."""
        return self.state_type is not None and self.expected_start_time is not None

    @property
    def volatile(self) -> int:
        """SETTLED, or how its figures depend on "now" (projections/history.py): RUNNING_NOW
        (its run time) or WAITING (not started nor finished: late by now - expected once due)."""
        if self.state_type == RUNNING:
            return RUNNING_NOW
        if self.start_time is None and self.state_type not in TERMINAL_TYPES:
            return WAITING
        return SETTLED

    def point(self) -> RunPoint:
        return RunPoint(self.expected_start_time, self.start_time, self.state_type, self.state_name,  # type: ignore[arg-type]
                        self.total_run_time, self.state_timestamp)


class _Part(NamedTuple):
    state_type: str
    state_name: str
    run_time: int
    lateness: int  # a settled run's; 0 for a waiting one, whose lateness depends on "now"
    waiting: int  # 1 for a waiting run


def _part(member: Member | None) -> tuple[int, _Part] | None:
    """A run's expected start and its contribution to its cells; None if it has none (not
    shown, or Running). Its values are the query's: the total run time as is (whole
    microseconds), lateness as started - expected."""
    if member is None or not member.counted or member.volatile == RUNNING_NOW:
        return None
    late = max(member.start_time - member.expected_start_time, 0) if member.start_time is not None else 0  # type: ignore[operator]
    part = _Part(member.state_type, member.state_name or "", round(member.total_run_time * 1_000_000), late,  # type: ignore[arg-type]
                 int(member.volatile == WAITING))
    return member.expected_start_time, part  # type: ignore[return-value]


def _state(member: Member) -> catalogue.State | None:
    if member.state_type is None:
        return None
    return catalogue.State(
        id=_NOBODY, type=catalogue.StateType(member.state_type), name=member.state_name,
        timestamp=from_us(member.state_timestamp) or _EPOCH,
    )


class _FlowRunTimes:
    """What the runs projection's bookkeeping (runs._track_times) reads and writes of a flow
    run, which is all the history keeps of it: a flow run's view without the rest, which
    building and copying for every event cost most of this projection's time."""

    __slots__ = ("state", "start_time", "end_time", "total_run_time", "expected_start_time",
                 "next_scheduled_start_time")

    def __init__(self, state: catalogue.State | None, start_time: datetime | None, end_time: datetime | None,
                 total_run_time: float, expected_start_time: datetime | None,
                 next_scheduled_start_time: datetime | None = None) -> None:
        self.state, self.start_time, self.end_time = state, start_time, end_time
        self.total_run_time, self.expected_start_time = total_run_time, expected_start_time
        self.next_scheduled_start_time = next_scheduled_start_time


def _evolve_flow_run_times(view: _FlowRunTimes | None, event: Any, _version: int) -> _FlowRunTimes | None:
    """runs.evolve_flow_run for the fields the history reads (the history's flow run events:
    created, state changed, deleted), with the same bookkeeping function."""
    if not isinstance(event, catalogue.FlowRunStateChanged):  # nearly every event is one: tested first
        if isinstance(event, catalogue.FlowRunCreated):
            return _FlowRunTimes(None, None, None, 0.0, None)
        return None if view is None or isinstance(event, catalogue.FlowRunDeleted) else view
    if view is None:
        return None
    changes = _track_times(view, view.state, event.state)  # type: ignore[arg-type]
    return _FlowRunTimes(
        changes["state"], changes["start_time"], changes["end_time"],
        changes.get("total_run_time", view.total_run_time),
        changes.get("expected_start_time", view.expected_start_time), changes["next_scheduled_start_time"],
    )


def _view(kind: str, run_id: str, member: Member | None) -> Any:
    """A run view holding only what the folds read for the history's fields."""
    if member is None:
        return None
    state, start, end = _state(member), from_us(member.start_time), from_us(member.end_time)
    expected = from_us(member.expected_start_time)
    if kind == FLOW_RUN:
        # The next scheduled start is not kept: the bookkeeping sets it from the states alone.
        return _FlowRunTimes(state, start, end, member.total_run_time, expected)
    return TaskRunView(id=UUID(run_id), created=_EPOCH, updated=_EPOCH, state=state, start_time=start, end_time=end,
                       total_run_time=member.total_run_time, expected_start_time=expected)


def _member(view: Any) -> Member | None:
    if view is None:
        return None
    state = view.state
    return Member(
        us(view.expected_start_time), us(view.start_time), us(view.end_time), view.total_run_time,
        state.type._value_ if state is not None else None, state.name if state is not None else None,
        us(state.timestamp) if state is not None else None,
    )


def member_row(kind: str, run_id: str, member: Member) -> tuple[Any, ...]:
    return (kind, run_id, *member, member.volatile)


_FLOW_RUN_CREATED = "flow_run.created"


def fold_runs(kind: str, before: dict[str, Member], records: Sequence[RecordedEvent]) -> dict[str, Member | None]:
    """Each run the records (of ``kind``'s streams, in log order) touch, as it is after them;
    ``before`` holds those that existed (None: deleted, or never created)."""
    prefix, types = _PREFIX[kind], _TYPES[kind]
    evolve = _evolve_flow_run_times if kind == FLOW_RUN else evolve_task_run
    views: dict[str, Any] = {}
    for record in records:
        if record.type not in types:
            continue
        run_id = record.stream_id.removeprefix(prefix)
        if record.type == _FLOW_RUN_CREATED:
            # A new flow run has no state nor times yet (FlowRunCreated carries none of the
            # fields the history reads): no need to decode its parameters, labels and context.
            views[run_id] = _FlowRunTimes(None, None, None, 0.0, None)
            continue
        view = views[run_id] if run_id in views else _view(kind, run_id, before.get(run_id))
        views[run_id] = evolve(view, catalogue.decode(record.data), record.version)
    return {run_id: _member(view) for run_id, view in views.items()}


_PG_BY_ID = (
    "SELECT r.* FROM (SELECT ?::text AS kind) AS k, unnest(?::text[]) AS u(id), LATERAL "
    "(SELECT id, {cols} FROM run_history_runs WHERE kind = k.kind AND id = u.id LIMIT 1) AS r"
)
"""A page's runs by (kind, id) on PostgreSQL: one primary key probe per id, whatever the table's
statistics. Written as ``kind = $1 AND id = ANY($2)``, a table that has never been analyzed
(autovacuum off, or its first minute) has no statistics for ``kind``, which the planner then
takes to match 0.5 % of the rows: at a thousand rows or so it scanned every run of the kind and
filtered the ids (auto_explain during bench_server: 1-3 ms a call; pg_stat_statements 1.2-1.6 ms,
against 0.16-0.20 ms for the probes). The LIMIT keeps the subquery from being flattened into a join."""
_SQL_MEMBERS = {
    "sqlite": "SELECT id, {cols} FROM run_history_runs WHERE kind = ? AND id IN (SELECT value FROM json_each(?))",
    "postgres": _PG_BY_ID,
}
_SQL_CELLS = {
    "sqlite": "SELECT ? AS kind, ? AS grain, bucket, state_type, state_name, count_runs, sum_run_time, "
              "sum_lateness, waiting, sum_offset FROM run_history_cells WHERE kind = ? AND grain = ? "
              "AND bucket IN (SELECT value FROM json_each(?))",
    "postgres": "SELECT ?::text AS kind, ?::bigint AS grain, bucket, state_type, state_name, count_runs, sum_run_time, "
                "sum_lateness, waiting, sum_offset FROM run_history_cells WHERE kind = ? AND grain = ? "
                "AND bucket = ANY(?::bigint[])",
}
"""One (kind, grain)'s part of the cells a page touches; ``_cells`` reads every part in one
statement (UNION ALL), a round trip a page instead of one per grain."""


def _list(tx: Tx, values: Iterable[Any]) -> Any:
    values = list(values)
    return values if tx.dialect == "postgres" else json.dumps(values)


class RunHistoryProjection:
    """Folds the log into the history tables; it catches up through projections/catchup.py.

    It reads its own rows (each run's part, the cells it changes) before a page, in the
    transaction it is given (``reads_own_rows``: the catch-up's write transaction, or a
    rebuild's over its shadows), else from ``store``, so it must read where it writes
    (``writing_to`` gives one for another store). Its cells are read, added to and written
    back: read and written in one transaction whose checkpoint moves by compare-and-set
    (projections/catchup.py), so no page is ever added twice.
    """

    name = NAME
    version = 1
    """Bump it whenever the rows it makes from the same events change."""
    tables = (RUNS, CELLS)
    reads_own_rows = True  # catchup.py and a rebuild (its shadows) hand ``changes`` their write transaction

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def writing_to(self, store: EventStore) -> RunHistoryProjection:
        return RunHistoryProjection(store)

    async def changes(self, events: Sequence[RecordedEvent], tx: Tx | None = None) -> RowChanges:
        """The rows ``events`` change; their current values are read in ``tx`` when given (a
        rebuild's transaction over its own tables), else from the store."""
        changes = RowChanges()
        batches: dict[str, list[RecordedEvent]] = {FLOW_RUN: [], TASK_RUN: []}
        for record in events:
            for kind, types in _TYPES.items():
                if record.type in types:
                    batches[kind].append(record)
        if not any(batches.values()):
            return changes
        if tx is not None:
            await self._changes(tx, batches, changes)
        else:
            async with self.store.reading() as own:
                await self._changes(own, batches, changes)
        return changes

    async def _changes(self, tx: Tx, batches: dict[str, list[RecordedEvent]], changes: RowChanges) -> None:
        deltas: dict[tuple[str, int, int, str, str], list[int]] = {}
        for kind, batch in batches.items():
            if batch:
                await self._fold(tx, kind, batch, changes, deltas)
        await self._cells(tx, deltas, changes)

    async def _fold(
        self, tx: Tx, kind: str, batch: list[RecordedEvent], changes: RowChanges,
        deltas: dict[tuple[str, int, int, str, str], list[int]],
    ) -> None:
        ids = list(dict.fromkeys(record.stream_id.removeprefix(_PREFIX[kind]) for record in batch))
        rows = await tx.fetch(_SQL_MEMBERS[tx.dialect].format(cols=", ".join(RUNS.columns[2:9])), kind, _list(tx, ids))
        before = {row[0]: Member(*row[1:]) for row in rows}
        after = fold_runs(kind, before, batch)
        for run_id, new in after.items():
            old = before.get(run_id)
            if new is None:
                if old is not None:
                    changes.delete(RUNS, (kind, run_id))
            else:
                changes.upsert(RUNS, member_row(kind, run_id, new))
            for member, sign in ((old, -1), (new, 1)):
                placed = _part(member)
                if placed is None:
                    continue
                expected, part = placed
                for grain in GRAINS:
                    offset = expected % grain
                    cell = deltas.setdefault((kind, grain, expected - offset, part.state_type, part.state_name),
                                             [0, 0, 0, 0, 0])
                    cell[0] += sign
                    cell[1] += sign * part.run_time
                    cell[2] += sign * part.lateness
                    cell[3] += sign * part.waiting
                    cell[4] += sign * part.waiting * offset

    async def _cells(
        self, tx: Tx, deltas: dict[tuple[str, int, int, str, str], list[int]], changes: RowChanges,
    ) -> None:
        """Add the deltas to the cells they touch: read those cells, write their new values."""
        wanted: dict[tuple[str, int], set[int]] = {}
        for kind, grain, bucket, _type, _name in deltas:
            wanted.setdefault((kind, grain), set()).add(bucket)
        current: dict[tuple[str, int, int, str, str], tuple[int, ...]] = {}
        if wanted:
            parts, args = [], []
            for (kind, grain), buckets in wanted.items():
                parts.append(_SQL_CELLS[tx.dialect])
                args += (kind, grain, kind, grain, _list(tx, sorted(buckets)))
            for kind, grain, bucket, state_type, state_name, *values in await tx.fetch(" UNION ALL ".join(parts), *args):
                current[(kind, int(grain), int(bucket), state_type, state_name)] = tuple(int(v) for v in values)
        for key, delta in deltas.items():
            if not any(delta):
                continue
            total = [was + more for was, more in zip(current.get(key, (0, 0, 0, 0, 0)), delta, strict=True)]
            if total[0] == 0:
                changes.delete(CELLS, key)
            else:
                changes.upsert(CELLS, (*key, *total))


# -- reading ------------------------------------------------------------------------------------


def grain_for(win: Window) -> int | None:
    """The coarsest grain whose buckets tile every one of the window's, or None."""
    for grain in GRAINS:
        if win.start % grain == 0 and win.interval % grain == 0:
            return grain
    return None


# One statement, so its parts read one snapshot: the checkpoint (tag 0), the log's head (1), the
# cells' sums per window bucket and state (2), and one by one (3) the Running runs and the
# waiting runs due between the start of now's cell (``due``) and now. A waiting run's lateness
# is summed from its cell when the whole cell is before ``due``, else from its row. The first
# part's NULLs are typed: PostgreSQL would take two untyped ones for text.
_SQL_READ = (
    "SELECT 0, position, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS NUMERIC), "
    "CAST(NULL AS NUMERIC), CAST(NULL AS NUMERIC), CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS TEXT) "
    "FROM projection_checkpoints WHERE name = ? "
    "UNION ALL SELECT 1, (SELECT coalesce(max(position), 0) FROM events), NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL UNION ALL SELECT 2, (bucket - ?) / ?, NULL, state_type, state_name, SUM(count_runs), SUM(sum_run_time), "
    "SUM(sum_lateness + CASE WHEN bucket < ? THEN waiting * (? - bucket) - sum_offset ELSE 0 END), NULL, NULL "
    "FROM run_history_cells WHERE kind = ? AND grain = ? AND bucket >= ? AND bucket < ? GROUP BY 2, 4, 5 "
    "UNION ALL SELECT 3, expected_start_time, start_time, state_type, state_name, end_time, state_timestamp, "
    "volatile, total_run_time, id FROM run_history_runs WHERE kind = ? AND volatile = 1 "
    "AND expected_start_time >= ? AND expected_start_time < ? "
    "UNION ALL SELECT 3, expected_start_time, start_time, state_type, state_name, end_time, state_timestamp, "
    "volatile, total_run_time, id FROM run_history_runs WHERE kind = ? AND volatile = 2 "
    "AND expected_start_time >= ? AND expected_start_time < ?"
)
_SQL_TAIL_MEMBERS = {
    "sqlite": "SELECT NULL, position, NULL, NULL, NULL, NULL, NULL, NULL FROM projection_checkpoints WHERE name = ? "
              "UNION ALL SELECT id, {cols} FROM run_history_runs WHERE kind = ? "
              "AND id IN (SELECT value FROM json_each(?))",
    "postgres": "SELECT NULL, position, NULL, NULL, NULL, NULL, NULL, NULL FROM projection_checkpoints WHERE name = ? "
                "UNION ALL " + _PG_BY_ID,
}


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class Snapshot:
    """The aggregate over one window at one log position and one "now", before it becomes
    buckets: integer sums per (window bucket, state type, state name), lateness included, and
    the runs still to add one by one (``running``: everything; ``due``: their lateness only).
    ``advance`` moves it along the log, exactly, without writing anything."""

    def __init__(self, kind: str, win: Window, now: int, position: int, head: int) -> None:
        self.kind, self.win, self.now, self.position, self.head = kind, win, now, position, head
        self.sums: dict[tuple[int, str, str], list[int]] = {}
        self.running: dict[str, Member] = {}
        self.due: dict[str, Member] = {}

    def _add(self, run_id: str, member: Member | None, sign: int) -> None:
        if member is None or not member.counted:
            return
        index = self.win.index(member.expected_start_time)  # type: ignore[arg-type]
        if index is None:
            return
        if member.volatile == RUNNING_NOW:
            if sign > 0:
                self.running[run_id] = member
            else:
                self.running.pop(run_id, None)
            return
        placed = _part(member)
        assert placed is not None
        part = placed[1]
        late = part.lateness
        if part.waiting:
            late = lateness(member.expected_start_time, None, member.state_type, self.now)
            if sign < 0 and self.due.pop(run_id, None) is not None:
                late = 0  # its lateness was still to be added from its row
        cell = self.sums.setdefault((index, part.state_type, part.state_name), [0, 0, 0])
        cell[0] += sign
        cell[1] += sign * part.run_time
        cell[2] += sign * late

    def advance(self, before: dict[str, Member], records: Sequence[RecordedEvent], upto: int) -> None:
        """Fold ``records`` (the log after ``position`` up to ``upto``) in: ``before`` holds the
        runs they touch as the aggregate has them at ``position``."""
        for run_id, new in fold_runs(self.kind, before, records).items():
            self._add(run_id, before.get(run_id), -1)
            self._add(run_id, new, 1)
        self.position = upto

    def buckets(self) -> list[list[StateTally]]:
        """The answer, summed as the query sums: Running runs one by one in floats
        (projections/history.tally), every other run in whole microseconds."""
        sums = {key: list(values) for key, values in self.sums.items()}
        for member in self.due.values():
            index = self.win.index(member.expected_start_time)  # type: ignore[arg-type]
            cell = sums.setdefault((index, member.state_type, member.state_name or ""), [0, 0, 0])  # type: ignore[arg-type]
            cell[2] += lateness(member.expected_start_time, None, member.state_type, self.now)
        tallied = tally(self.win, (m.point() for m in self.running.values()), self.now)
        return merged(tallied, (
            (index, StateTally(state_type, state_name, count, run_time / 1e6, late / 1e6))
            for (index, state_type, state_name), (count, run_time, late) in sums.items() if count
        ))


async def read_snapshot(tx: Tx, kind: str, win: Window, grain: int, now: int) -> Snapshot:
    """The aggregate over ``win`` (whose start and interval ``grain`` divides) at ``now``, read
    in one statement: at its checkpoint, with the log's head then."""
    due = now - now % grain
    rows = await tx.fetch(
        _SQL_READ, NAME, win.start, win.interval, due, now, kind, grain, win.start, win.end,
        kind, win.start, win.end, kind, max(due, win.start), min(now, win.end),
    )
    parts: dict[int, list[Sequence[Any]]] = {0: [], 1: [], 2: [], 3: []}
    for row in rows:
        parts[int(row[0])].append(row)
    position = int(parts[0][0][1]) if parts[0] else 0
    snapshot = Snapshot(kind, win, now, position, int(parts[1][0][1]))
    for row in parts[2]:
        snapshot.sums[(int(row[1]), row[3], row[4])] = [int(row[5]), int(row[6]), int(row[7])]
    for row in parts[3]:
        member = Member(_int(row[1]), _int(row[2]), _int(row[5]), float(row[8]), row[3], row[4], _int(row[6]))
        (snapshot.running if int(row[7]) == RUNNING_NOW else snapshot.due)[row[9]] = member
    return snapshot


async def read_history(
    store: EventStore, kind: str, win: Window, grain: int, now: int, *, max_tail: int, attempts: int = 3,
) -> Snapshot | None:
    """The aggregate over ``win`` at ``now`` brought up to the log's head: the events after its
    checkpoint (at most ``max_tail`` of them) are folded in at read time against the runs' rows
    as the aggregate had them, so the answer is exact at the head, however far the service is
    behind. None when the tail is longer, or the projection moved on under every attempt."""
    for _ in range(attempts):
        async with store.reading() as tx:
            snapshot = await read_snapshot(tx, kind, win, grain, now)
        if snapshot.head == snapshot.position:
            return snapshot
        if snapshot.head - snapshot.position > max_tail:
            return None
        types = _TYPES[kind]
        tail = [r async for r in store.read_all(after=snapshot.position, limit=snapshot.head - snapshot.position)]
        # Bounded by position too: where retention left gaps the count reaches past the head.
        mine = [r for r in tail if r.type in types and r.position <= snapshot.head]
        ids = list(dict.fromkeys(r.stream_id.removeprefix(_PREFIX[kind]) for r in mine))
        async with store.reading() as tx:
            sql = _SQL_TAIL_MEMBERS[tx.dialect].format(cols=", ".join(RUNS.columns[2:9]))
            rows = await tx.fetch(sql, NAME, kind, _list(tx, ids))
        reached = [int(row[1]) for row in rows if row[0] is None]
        if (reached[0] if reached else 0) != snapshot.position:
            continue  # the projection wrote a page meanwhile: its rows are past the snapshot
        before = {row[0]: Member(_int(row[1]), _int(row[2]), _int(row[3]), float(row[4]), row[5], row[6], _int(row[7]))
                  for row in rows if row[0] is not None}
        snapshot.advance(before, mine, snapshot.head)
        return snapshot
    return None


__all__ = [
    "CELLS", "FLOW_RUN", "GRAINS", "NAME", "RUNS", "TASK_RUN", "Member", "Snapshot", "fold_runs", "read_snapshot", "RunHistoryProjection", "grain_for",
    "read_history",
]
