"""What both backends share: argument checks, the group-commit writer, paging and subscriptions.

One writer task per store drains every append request queued while the previous batch was
committing and commits them together in one transaction (group commit). Under load a batch
grows to match the offered rate, so a transaction's fixed cost is paid once for many appends;
alone, an append waits for nobody. Positions are assigned inside that transaction under the
backend's write lock, so they follow commit order and a reader never sees a gap fill later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

import structlog

from . import metrics
from .base import InlineProjection, NewEvent, RecordedEvent, StreamAppend, Tx
from .errors import EventStoreError, InvalidEvent, SchemaError, StorageMisconfigured, StorageUnavailable, StoreClosed
from .planning import AppendRequest, BatchPlan
from .tables import RowChanges, persist

log = structlog.get_logger("runlog.eventstore")

MAX_BATCH_EVENTS = 4096
"""A batch stops growing here; one larger request still goes through on its own."""

PAGE_SIZE = 1000
"""Rows per read page: large enough to amortise a round trip, small enough to bound memory."""

POLL_INTERVAL = 1.0
"""A subscriber re-reads at least this often even when no wake-up arrives."""

HEAD_KNOWN_FOR = 0.1
"""How long after a batch found the log's head under the append lock a follower starting to
wait reads no head of its own (``grown``): another process's append is found by this writer's
next batch or by the poll, as one made while the follower waits always was."""

TAIL_KEPT = 2048
"""How many of the events this process appended last it keeps for its followers (``read_next``)."""

MAX_NAME_LENGTH = 1000


class Wakeup:
    """A broadcast 'the log may have grown' signal that cannot be missed.

    A reader takes ``current()`` *before* it reads the table and waits on it afterwards; any
    notify() in between has already set that very event, so the wait returns at once.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()


def check_name(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidEvent(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidEvent(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidEvent(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if "\x00" in value:
        raise InvalidEvent(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEvent(f"{what} is not valid Unicode text: {exc.reason}") from None
    return value


_TYPES_CHECKED: set[str] = set()
"""Event types check_name accepted: a process appends a few dozen kinds, each checked once."""
MAX_TYPES_CHECKED = 10_000


def check_append(stream_id: object, events: object, expected_version: object, seen: set[int] | None = None) -> None:
    """Reject a malformed append; ``seen``: the ids (their integers) of the other appends made
    together with this one, to which this one's are added (an id may appear once in all)."""
    check_name("stream id", stream_id)
    if expected_version is not None and (
        not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 0
    ):
        raise InvalidEvent(f"expected_version must be None or an integer >= 0, not {expected_version!r}")
    # A list or tuple first: isinstance against collections.abc.Sequence runs Python code.
    if not isinstance(events, (list, tuple)) and not isinstance(events, Sequence):
        raise InvalidEvent("events must be a sequence of NewEvent")
    seen = set() if seen is None else seen
    for event in events:
        if not isinstance(event, NewEvent):
            raise InvalidEvent(f"events must be NewEvent instances, not {type(event).__name__}")
        if not (isinstance(event.type, str) and event.type in _TYPES_CHECKED):
            check_name("event type", event.type)
            if len(_TYPES_CHECKED) >= MAX_TYPES_CHECKED:
                _TYPES_CHECKED.clear()
            _TYPES_CHECKED.add(event.type)
        if not isinstance(event.data, bytes):
            raise InvalidEvent(f"event data must be bytes, not {type(event.data).__name__}")
        if not isinstance(event.id, UUID):
            raise InvalidEvent(f"event id must be a UUID, not {type(event.id).__name__}")
        key = event.id.int  # an int hashes in C, a UUID in Python code
        if key in seen:
            raise InvalidEvent(f"event id {event.id} appears twice in one append")
        seen.add(key)


class _TableWrite:
    """Rows an asynchronous projection writes, queued to the writer like an append."""

    __slots__ = ("changes", "future")

    def __init__(self, changes: RowChanges, future: asyncio.Future[Any]) -> None:
        self.changes = changes
        self.future = future


class _Job:
    """A function to run in a write transaction of the writer's own, queued like an append."""

    __slots__ = ("fn", "lock_appends", "future")

    def __init__(self, fn: Callable[[Tx], Awaitable[Any]], lock_appends: bool, future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.lock_appends = lock_appends
        self.future = future


class _Pending:
    """One caller's append: one request, or a multi-stream append's requests (one group)."""

    __slots__ = ("requests", "future", "size")

    def __init__(self, requests: list[AppendRequest], future: asyncio.Future[Any]) -> None:
        self.requests = requests
        self.future = future
        self.size = sum(len(request.events) for request in requests)

    @property
    def several(self) -> bool:
        return self.requests[0].group is not None


_STOP = object()


SQL_STREAM_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?"
HEAD_WITH_LOOKS_AT_MOST = 10_000
"""How many events past its ``after`` head_with looks at the types of (a range scan of the
log's primary key); past that it says "maybe" without looking."""


def first_or_maybe(after: int, head: int, first: int | None, looked_at: int) -> int | None:
    """head_with's answer from what it read: the first event found, else ``after + 1`` when
    there were events past the ``looked_at`` it looked at."""
    if first is not None:
        return int(first)
    return after + 1 if head - after > looked_at else None


class SoleLeader:
    """Leadership where only one process can write (SQLite): this process always leads."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def campaign(self) -> bool:
        return True

    async def resign(self) -> None:
        return None


class BatchingStore:
    """Base of both backends. Subclasses implement the ``_``-prefixed storage hooks."""

    url: str

    def __init__(self, url: str, projections: Sequence[InlineProjection] = ()) -> None:
        self.url = url
        self._projections = tuple(projections)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._opened = False
        self._closed = False
        self._wakeup = Wakeup()
        self.poll_interval = POLL_INTERVAL
        self.subscribers_waiting = 0
        """How many subscribers have read everything and wait for the log to grow."""
        self._head_seen = -1
        """The head this writer's last batch left the log at (-1: unknown, as after opening or a
        failed batch). Each batch finds the head under the append lock (``_found_head``): if it
        is not this, another process appended in between."""
        self._tail: list[RecordedEvent] = []
        """The events this writer committed last, at consecutive positions (``read_next``)."""
        self._head_heard = 0
        """The highest position known to be in the log from outside this writer: a head read, or
        another process's append announced (PostgreSQL's NOTIFY carries its last position)."""
        self.head_known_for = HEAD_KNOWN_FOR
        self._head_found_at = float("-inf")
        """When (time.monotonic) a batch last found the head under the append lock."""

    # -- lifetime -------------------------------------------------------------------------

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def stream_version(self, stream_id: str) -> int:
        """The stream's last version; 0 when it has no events (the expected version for a new one)."""
        async with self.reading() as tx:
            rows = await tx.fetch(SQL_STREAM_VERSION, stream_id)
        return int(rows[0][0])

    def leadership(self, name: str) -> SoleLeader:
        """See base.Leadership; PostgreSQL overrides this, since several processes share it."""
        return SoleLeader(name)

    async def open(self) -> BatchingStore:
        if self._closed:
            raise StoreClosed()
        if not self._opened:
            await self._open()
            self._opened = True
            try:
                await self._check_declared_tables()
            except BaseException:
                await self.aclose()
                raise
            self._writer = asyncio.create_task(self._write_loop(), name="runlog-eventstore-writer")
        return self

    async def aclose(self) -> None:
        """Commit what is queued, then release every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put_nowait(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self._opened:
            await self._close()
        self._wakeup.notify()

    async def __aenter__(self) -> BatchingStore:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.open().__await__()

    def _check_usable(self) -> None:
        if self._closed:
            raise StoreClosed()
        if not self._opened:
            raise EventStoreError("the event store is not open; use 'async with open_store(url)'")

    # -- writing --------------------------------------------------------------------------

    async def append(
        self, stream_id: str, events: Sequence[NewEvent], expected_version: int | None = None
    ) -> list[RecordedEvent]:
        """Append events to a stream atomically; see planning.plan_batch for the rules."""
        self._check_usable()
        check_append(stream_id, events, expected_version)
        if not events:
            return []
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending([AppendRequest(stream_id, events, expected_version)], future))
        # shield: a caller that gives up must not cancel a commit other callers share.
        return await asyncio.shield(future)

    async def append_streams(self, appends: Sequence[StreamAppend]) -> list[list[RecordedEvent]]:
        """Append to several streams atomically; each stream's records, in ``appends``' order.

        The appends are planned one after another as if made by ``append`` (the same
        idempotency by id and expected-version rule), but kept or dropped together: a conflict
        on any stream raises its ConcurrencyError and stores nothing of the others. They share
        the group commit with every other append, and their positions follow one another in
        the order given. A stream may appear once, an event id once.
        """
        self._check_usable()
        if not isinstance(appends, Sequence) or not all(isinstance(a, StreamAppend) for a in appends):
            raise InvalidEvent("appends must be a sequence of StreamAppend")
        streams: set[str] = set()
        ids: set[int] = set()
        for item in appends:
            check_append(item.stream_id, item.events, item.expected_version, ids)
            if item.stream_id in streams:
                raise InvalidEvent(f"stream {item.stream_id} appears twice in one multi-stream append")
            streams.add(item.stream_id)
        parts = [a for a in appends if a.events]
        if not parts:
            return [[] for _ in appends]
        group = object()
        future: asyncio.Future[list[list[RecordedEvent]]] = asyncio.get_running_loop().create_future()
        requests = [AppendRequest(a.stream_id, a.events, a.expected_version, group) for a in parts]
        self._queue.put_nowait(_Pending(requests, future))
        recorded = iter(await asyncio.shield(future))
        return [next(recorded) if a.events else [] for a in appends]

    async def compact_counts(self) -> None:
        """Fold the deltas of the tables of counts into their rows, where a backend keeps deltas
        (PostgreSQL, tables.Table.deltas: it also does so by itself every second); else nothing."""

    async def write_tables(self, changes: RowChanges) -> None:
        """Persist an asynchronous projection's rows (its checkpoint among them) in one transaction.

        The rows go to the writer task, between two append batches, so that on SQLite (one
        writing connection) they never contend with appends for the write lock; a backend
        with a pool of connections may write them beside the appends instead (PostgreSQL).
        """
        self._check_usable()
        if not changes:
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_TableWrite(changes, future))
        await asyncio.shield(future)

    async def _write_tables(self, changes: RowChanges) -> None:
        """In one transaction of its own: persist ``changes``."""
        raise NotImplementedError

    async def write_transaction(self, fn: Callable[[Tx], Awaitable[Any]], *, lock_appends: bool = False) -> Any:
        """Run ``fn(tx)`` in one write transaction of its own and commit it; its result.

        With ``lock_appends`` the transaction holds the append lock from its start: no append
        of any process commits while it runs, so the log's head stays put (a projection's
        final catch-up and swap, projections/rebuild.py). It runs on the writer task, between
        two append batches. Without it, a backend with a pool of connections may run it beside
        the appends (PostgreSQL); SQLite's one writing connection runs it on the writer task.
        """
        self._check_usable()
        if not lock_appends and self._writes_beside_appends():
            return await self._run_job(fn, lock_appends=False)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(fn, lock_appends, future))
        return await asyncio.shield(future)

    def _writes_beside_appends(self) -> bool:
        """Whether a transaction that takes no append lock may run beside the writer's."""
        return False

    async def _run_job(self, fn: Callable[[Tx], Awaitable[Any]], *, lock_appends: bool) -> Any:
        """In one write transaction (holding the append lock if asked): ``fn(tx)``, committed."""
        raise NotImplementedError

    async def _write_batch(self, requests: list[AppendRequest]) -> BatchPlan:
        """In one transaction under the write lock: plan, insert, fill rows' recorded_at,
        then ``_apply_inline`` before committing. Under the lock, before planning, it reports
        the head it finds to ``_found_head`` (a backend that plans on ``_head_seen`` without
        reading the head must have the database check it, as PostgreSQL's runlog_append does)."""
        raise NotImplementedError

    async def _append_batch(self, requests: list[AppendRequest]) -> BatchPlan:
        """``_write_batch``, keeping ``_head_seen`` where the committed batch left the log."""
        try:
            plan = await self._write_batch(requests)
        except BaseException:
            # The batch's outcome is unknown (a commit may fail after the database made it), and
            # what the projections saw of it may be rolled back: know nothing, forget it all.
            self._head_seen = -1
            self._head_found_at = float("-inf")
            self._tell_projections("forget", failed=True)
            raise
        # Set after the commit only: a head seen is one that is in the log.
        if plan.rows:
            self._head_seen = plan.rows[-1].position
            self._keep_tail(plan)
        return plan

    def _keep_tail(self, plan: BatchPlan) -> None:
        """Keep a committed batch's events for ``read_next``. The kept events stay at
        consecutive positions: a batch that does not follow on from them (another process or
        a bulk job appended in between) replaces them."""
        tail = self._tail
        if tail and tail[-1].position + 1 != plan.rows[0].position:
            tail.clear()
        tail.extend(row.recorded() for row in plan.rows)
        if len(tail) > 2 * TAIL_KEPT:
            del tail[:-TAIL_KEPT]

    def _found_head(self, head: int) -> None:
        """Under the append lock, the log's head as a batch found it. If it is not where this
        writer's last batch left it, another process appended in between (or nothing was
        known): the inline projections forget what no stream version checks (base.py)."""
        self._head_found_at = time.monotonic()
        if head != self._head_seen:
            self._tell_projections("forget", failed=False)
            moved = head > max(self._head_seen, self._head_heard)
            self._head_seen = head
            self._head_heard = min(self._head_heard, head)  # lower only when the log was reset
            if moved:
                # Another process's append, whose announcement this process may have taken
                # for its own (``_hears_every_append``): followers waiting read it now.
                self._wakeup.notify()

    async def _apply_inline(self, tx: Tx, plan: BatchPlan) -> None:
        """Run the inline projections over the batch's new events and persist what they change,
        inside the batch's transaction (each projection's writes before the next one reads)."""
        if self._projections and plan.rows:
            records = [row.recorded() for row in plan.rows]
            present = {record.type for record in records}
            for projection in self._projections:
                # Only the events it folds (see base.py): most projections fold a few kinds of
                # event, and a run's batch, the common one, holds none of theirs (told from the
                # batch's kinds, without looking at each of its events again).
                types = getattr(projection, "event_types", None)
                if types is not None and present.isdisjoint(types):
                    continue
                mine = records if types is None else [record for record in records if record.type in types]
                if not mine:
                    continue
                if getattr(projection, "per_event", False):
                    # It reads rows that earlier events of this batch may change (see base.py).
                    for record in mine:
                        await persist(tx, await projection.changes(tx, [record]))
                else:
                    await persist(tx, await projection.changes(tx, mine))

    def _tell_projections(self, hook: str, **what: Any) -> None:
        """Call the optional ``hook`` (``forget`` or ``prepared_stored``, base.py) of every inline
        projection that has it."""
        for projection in self._projections:
            told = getattr(projection, hook, None)
            if told is not None:
                told(**what)

    async def _check_declared_tables(self) -> None:
        """Every projection table has exactly its declared columns, in order (see tables.py),
        and after them, on a backend that keeps them, its ``own`` columns."""
        if not self._projections:
            return
        async with self.reading() as tx:
            columns = await self._table_columns(tx)  # one read at open, for every table
        for projection in self._projections:
            for table in projection.tables:
                found = columns.get(table.name, ())
                if found != table.columns and found != table.columns + table.own:
                    raise SchemaError(
                        f"projection {projection.name!r} declares table {table.name} with columns "
                        f"{', '.join(table.columns)}, but the database has "
                        f"{', '.join(found) if found else 'no such table'}"
                    )

    async def _table_columns(self, tx: Tx) -> dict[str, tuple[str, ...]]:
        """Every table's columns, in table order."""
        raise NotImplementedError

    def reading(self) -> contextlib.AbstractAsyncContextManager[Tx]:
        """A read handle for querying projections (outside any write transaction)."""
        raise NotImplementedError

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is _STOP:
                break
            if isinstance(item, (_TableWrite, _Job)):
                await self._commit_tables(item)
                continue
            batch = [item]
            size = item.size
            while size < MAX_BATCH_EVENTS and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, (_TableWrite, _Job)):
                    # Keep order: the appends queued before it are committed first.
                    await self._commit(batch)
                    batch = []
                    await self._commit_tables(item)
                    break
                batch.append(item)
                size += item.size
            if batch:
                await self._commit(batch)

    async def _commit_tables(self, item: _TableWrite | _Job) -> None:
        try:
            if isinstance(item, _Job):
                result = await self._run_job(item.fn, lock_appends=item.lock_appends)
            else:
                result = await self._write_tables(item.changes)
        except Exception as exc:  # noqa: BLE001 - the caller hears it; the writer goes on
            _resolve(item.future, exc)
        else:
            _resolve(item.future, result)

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            plan = await self._append_batch([request for p in batch for request in p.requests])
        except (StorageUnavailable, StorageMisconfigured) as exc:
            # The database, not one request, is the problem: every request of the batch hears it.
            metrics.FAILED.inc(len(batch))
            for pending in batch:
                _resolve(pending.future, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the request that broke the batch
            if len(batch) == 1:
                log.warning("append_failed", stream_id=batch[0].requests[0].stream_id, error=str(exc))
                metrics.REJECTED.inc()
                _resolve(batch[0].future, exc)
                return
            # One bad request must not fail its neighbours: decide each on its own.
            for pending in batch:
                await self._commit([pending])
            return
        self._wakeup.notify()
        rejected = 0
        outcomes = iter(plan.outcomes)
        for pending in batch:
            mine = [next(outcomes) for _ in pending.requests]
            error = next((outcome.error for outcome in mine if outcome.error is not None), None)
            if error is not None:
                rejected += 1
                _resolve(pending.future, error)
                continue
            records = [[s if isinstance(s, RecordedEvent) else s.recorded() for s in o.slots] for o in mine]
            _resolve(pending.future, records if pending.several else records[0])
        assert next(outcomes, None) is None, "one outcome per request"
        metrics.batch_committed(len(batch), len(plan.rows), rejected)

    # -- reading --------------------------------------------------------------------------

    async def _read_page(self, after: int, limit: int) -> list[RecordedEvent]:
        raise NotImplementedError

    async def _read_stream_page(self, stream_id: str, after_version: int, limit: int) -> list[RecordedEvent]:
        raise NotImplementedError

    async def head(self) -> int:
        raise NotImplementedError

    async def head_with(self, after: int, type_prefix: str) -> tuple[int, int | None]:
        """See EventStore.head_with."""
        raise NotImplementedError

    async def read_event(self, event_id: UUID) -> RecordedEvent | None:
        """The stored event with this id, or None."""
        raise NotImplementedError

    async def read_stream(self, stream_id: str, *, after_version: int = 0) -> AsyncIterator[RecordedEvent]:
        """A stream's events in version order; empty for an unknown stream."""
        self._check_usable()
        while True:
            page = await self._read_stream_page(stream_id, after_version, PAGE_SIZE)
            for event in page:
                yield event
            if len(page) < PAGE_SIZE:
                return
            after_version = page[-1].version

    async def read_all(self, *, after: int = 0, limit: int | None = None) -> AsyncIterator[RecordedEvent]:
        """Every event with position > after, in position order, read in pages.

        Where a page is fetched elsewhere (PostgreSQL's server, SQLite's reader thread), the
        next page is requested before the caller works through the current one, so the two
        overlap. Where it is read on this thread (``_pages_read_here``), prefetching only
        keeps two pages in memory, so the next page is read when it is needed.
        """
        self._check_usable()
        remaining = limit

        def fetch(start: int) -> asyncio.Task[list[RecordedEvent]] | None:
            if remaining is not None and remaining <= 0:
                return None
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            return asyncio.ensure_future(self._read_page(start, size))

        pending = fetch(after)
        try:
            while pending is not None:
                page = await pending
                full = len(page) == (PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining))
                if remaining is not None:
                    remaining -= len(page)
                more = full and bool(page)
                pending = None
                if more and not self._pages_read_here():
                    pending = fetch(page[-1].position)
                    # Let the fetch start (send its query) before the caller works through
                    # this page; otherwise it only starts at the caller's next await.
                    await asyncio.sleep(0)
                for event in page:
                    yield event
                if more and pending is None:
                    pending = fetch(page[-1].position)
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, EventStoreError):
                    await pending

    async def read_next(self, after: int, limit: int) -> list[RecordedEvent]:
        """For a follower: up to ``limit`` events past ``after``, in position order, served
        from what this process committed last when that holds the event at ``after + 1``,
        else read (one page). Served, the page may end at this process's last append although
        another process appended past it: a follower reads on after its next wake-up
        (``grown`` returns at once for what it knows of). Positions are given out under the
        append lock and kept consecutive, so a batch of this process's that follows on from
        the last leaves nobody's event between them. The notifier's matcher runs a round per
        group commit of the server, and each read the page it had just committed."""
        self._check_usable()
        tail = self._tail
        if tail and tail[0].position <= after + 1 <= tail[-1].position:
            start = after + 1 - tail[0].position
            return tail[start:start + limit]
        return await self._read_page(after, limit)

    def _pages_read_here(self) -> bool:
        """Whether _read_page does its work on the event loop's thread (no overlap to gain)."""
        return False

    async def subscribe(self, *, after: int = 0) -> AsyncIterator[RecordedEvent]:
        """Catch up from ``after``, then follow new events; ends only when cancelled.

        Wake-ups are hints: the table is always re-read, and a poll every ``poll_interval``
        seconds covers a lost notification or a writer in another process.
        """
        self._check_usable()
        backoff = self.poll_interval
        while not self._closed:
            signal = self._wakeup.current()
            try:
                page = await self._read_page(after, PAGE_SIZE)
            except StorageUnavailable as exc:
                log.warning("subscription_read_failed", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.poll_interval
            for event in page:
                yield event
            if page:
                after = page[-1].position
            if len(page) < PAGE_SIZE:
                await self._wait_for(signal)
        raise StoreClosed()

    async def grown(self, after: int) -> None:
        """Returns once the log holds an event past ``after``: what ``subscribe`` waits for,
        without reading the events (a follower reads them itself, page by page).

        A position this writer committed is in the log (``_head_seen`` is set after the
        commit), and so is one another process announced (``_head_heard``): past either, no
        read is needed. Otherwise the head is read, unless every other process's append is
        announced to this one (``_hears_every_append``: PostgreSQL while it listens); then the
        announcement wakes the wait. The poll after ``poll_interval`` reads the head whatever
        the backend, for a writer that announces nothing. A busy server's followers (the
        projections' and the notifier matcher's catch-ups) wake once per group commit, mostly
        at what this process appended, and each wake-up read the head, twice on PostgreSQL
        (once more at the NOTIFY of the commit it had read).

        Nor is the head read when this writer's last batch found it less than
        ``head_known_for`` seconds ago (SQLite's matcher read it some 180 times a second on the
        event loop, under load): what another process appended since is found by the next
        batch (which wakes the waiting followers) or by the poll, within ``poll_interval`` as
        before; only an append made in the moment before the wait began could have been seen
        sooner."""
        self._check_usable()
        polled = False
        while not self._closed:
            signal = self._wakeup.current()
            if max(self._head_seen, self._head_heard) > after:
                return
            if (polled or not (self._hears_every_append() or self._head_found_lately())) and await self.head() > after:
                return
            polled = not await self._wait_for(signal)
        raise StoreClosed()

    def _head_found_lately(self) -> bool:
        return time.monotonic() - self._head_found_at < self.head_known_for

    def _hears_every_append(self) -> bool:
        """Whether another process's append reaches ``_head_heard`` with a wake-up, from a
        moment before which the head was read: then waiting needs no read of the head."""
        return False

    def _heard(self, head: int) -> None:
        """``head`` is in the log (a head read or another process's announcement)."""
        if head > self._head_heard:
            self._head_heard = head

    async def _wait_for(self, signal: asyncio.Event) -> bool:
        """Until ``signal`` (the log may have grown) or the poll interval, as a waiting
        subscriber; whether the signal came."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races
        # with the wake-up, and the subscriber would never end.
        self.subscribers_waiting += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await signal.wait()
        finally:
            self.subscribers_waiting -= 1
        return signal.is_set()


def _resolve(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
