"""Deciding a batch of appends: which events are new, which streams conflict, where each goes.

Pure: the backends hold their write lock, read the head position, the streams' versions and
the already-stored events for the batch's ids, then ask ``plan_batch`` what to insert. Keeping
this out of SQL means both backends follow one algorithm, tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from .base import NewEvent, RecordedEvent
from .errors import ConcurrencyError


@dataclass(slots=True)
class AppendRequest:
    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None
    group: object | None = None
    """Requests next to each other with the same group (a multi-stream append) are planned all
    or nothing: a conflict on any of them rejects every one, and none of their events is inserted."""


@dataclass(slots=True)
class Row:
    """One event to insert; ``recorded_at`` is filled in by the backend after the insert."""

    position: int
    stream_id: str
    version: int
    event: NewEvent
    recorded_at: datetime | None = None
    _record: RecordedEvent | None = None

    def recorded(self) -> RecordedEvent:
        if self._record is None:
            ev = self.event
            assert self.recorded_at is not None, "the backend fills recorded_at when it inserts"
            self._record = RecordedEvent(
                self.position, self.stream_id, self.version, ev.id, ev.type, ev.data, self.recorded_at
            )
        return self._record


@dataclass(slots=True)
class Outcome:
    """What one request of the batch got: per event, a stored record or a row to insert."""

    slots: list[RecordedEvent | Row] = field(default_factory=list)
    error: ConcurrencyError | None = None


@dataclass(slots=True)
class BatchPlan:
    rows: list[Row]
    outcomes: list[Outcome]


def plan_batch(
    requests: Sequence[AppendRequest],
    head: int,
    versions: Mapping[str, int],
    stored: Mapping[UUID, RecordedEvent],
) -> BatchPlan:
    """Plan a batch in request order, as if the requests had been appended one by one.

    - An event whose id is already stored (or planned earlier in this batch) is not inserted
      again; the request gets the stored record back.
    - A request with nothing new is an idempotent retry: it succeeds without a version check,
      since the stream has moved on by exactly the events it is retrying.
    - Otherwise expected_version must equal the stream's last version (0 when it has none).
    - A group (a multi-stream append: neighbouring requests with the same ``group``) is planned
      request by request as above, then kept whole or dropped whole: if any of its requests
      conflicts, all of them get that conflict and the batch goes on as if the group was not in it.
    """
    current = dict(versions)
    # Keyed by the ids' integers: a UUID hashes in Python code (``hash(self.int)``), an int in C,
    # and each event is looked up several times.
    stored_by: dict[int, RecordedEvent] = {event_id.int: record for event_id, record in stored.items()}
    planned: dict[int, Row] = {}
    rows: list[Row] = []
    outcomes: list[Outcome] = []
    index = 0
    while index < len(requests):
        group = requests[index].group
        end = index + 1
        if group is not None:
            while end < len(requests) and requests[end].group is group:
                end += 1
        # What to put back if the group is dropped (a lone request changes nothing when it conflicts).
        saved_head, saved_rows, saved_versions = head, len(rows), dict(current) if end - index > 1 else None
        mine: list[Outcome] = []
        error: ConcurrencyError | None = None
        for request in requests[index:end]:
            outcome = Outcome()
            mine.append(outcome)
            keys = [ev.id.int for ev in request.events]
            known = [stored_by.get(key) or planned.get(key) for key in keys]
            fresh = not all(known)  # a record or a row is always true
            version = current.get(request.stream_id, 0)
            if fresh and request.expected_version is not None and request.expected_version != version:
                outcome.error = error = ConcurrencyError(request.stream_id, request.expected_version, version)
                if group is not None:
                    break
                continue
            for ev, key, found in zip(request.events, keys, known, strict=True):
                if found is None:
                    found = planned.get(key)  # the same id earlier in this request
                if found is not None:
                    outcome.slots.append(found)
                    continue
                head += 1
                version += 1
                row = Row(position=head, stream_id=request.stream_id, version=version, event=ev)
                planned[key] = row
                rows.append(row)
                outcome.slots.append(row)
            current[request.stream_id] = version
        if group is not None and error is not None:
            for row in rows[saved_rows:]:
                del planned[row.event.id.int]
            del rows[saved_rows:]
            head = saved_head
            if saved_versions is not None:
                current = saved_versions
            mine = [Outcome(error=error) for _ in requests[index:end]]
        outcomes.extend(mine)
        index = end
    return BatchPlan(rows=rows, outcomes=outcomes)
