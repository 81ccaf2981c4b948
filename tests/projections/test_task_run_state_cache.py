"""The task run state cache: which states it files, how newer entries supersede older ones, and
the inline projection on both backends (read right after the write, rebuilt from the log)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from runlog.eventstore import NewEvent, open_store
from runlog.projections.task_run_state_cache import (
    MAX_CACHE_KEY_LENGTH,
    CacheEntry,
    TaskRunStateCacheProjection,
    _may_change,
    add_entry,
    all_entries,
    cache_entry,
    forget_task_run,
    lookup,
    newest_unexpired,
    supersedes,
)
from runlog.schema import events as catalogue

S = catalogue.StateType
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
OTHER_RUN = uuid.UUID("00000000-0000-4000-8000-0000000000a2")


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def changed(type_: catalogue.StateType = S.COMPLETED, *, key: str | None = "k", expiration: datetime | None = None,
            run: uuid.UUID = RUN, forced: bool = False, deferred: bool | None = None,
            snapshot: dict[str, Any] | None = None, data: Any = None) -> catalogue.TaskRunStateChanged:
    details = catalogue.StateDetails(cache_key=key, cache_expiration=expiration, deferred=deferred, task_run_id=run)
    state = catalogue.State(id=uuid.uuid4(), type=type_, name=type_.value.title(), timestamp=T0,
                            state_details=details, data=data)
    return catalogue.TaskRunStateChanged(task_run_id=run, state=state, forced=forced, task_run=snapshot or {})


def entry(position: int, expiration: datetime | None, key: str = "k", run: uuid.UUID = RUN) -> CacheEntry:
    return CacheEntry(cache_key=key, cache_expiration=expiration, task_run_id=run, position=position,
                      state=changed(key=key, expiration=expiration, run=run).state)


# Which states are filed ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "filed"),
    [
        pytest.param(changed(), True, id="a_decided_completed_state_with_a_key"),
        pytest.param(changed(expiration=minutes(5)), True, id="with_an_expiration"),
        pytest.param(changed(key="k" * MAX_CACHE_KEY_LENGTH), True, id="a_key_of_the_maximum_length"),
        pytest.param(changed(key="k" * (MAX_CACHE_KEY_LENGTH + 1)), False, id="an_overlong_key"),
        pytest.param(changed(key=None), False, id="no_key"),
        pytest.param(changed(key=""), False, id="an_empty_key"),
        pytest.param(changed(S.RUNNING), False, id="not_completed"),
        pytest.param(changed(S.FAILED), False, id="failed"),
        pytest.param(changed(forced=True), False, id="forced_past_the_rules"),
        pytest.param(changed(forced=True, deferred=True), True, id="forced_background_tasks_keep_their_rules"),
        pytest.param(changed(snapshot={"task_key": "t"}), False, id="reported_by_the_client"),
        pytest.param(catalogue.TaskRunDeleted(task_run_id=RUN), False, id="not_a_state_change"),
    ],
)
def test_which_states_are_filed(event: catalogue.Event, filed: bool) -> None:
    found = cache_entry(event, 9)
    assert (found is not None) is filed
    if found is not None:
        assert isinstance(event, catalogue.TaskRunStateChanged)
        assert found == CacheEntry(cache_key=event.state.state_details.cache_key or "", task_run_id=RUN, position=9,
                                   cache_expiration=event.state.state_details.cache_expiration, state=event.state)


@pytest.mark.parametrize("encode", [catalogue.encode, msgspec.json.encode], ids=["msgpack", "json"])
@pytest.mark.parametrize(
    "event",
    [
        changed(), changed(expiration=minutes(5)), changed(key="k" * (MAX_CACHE_KEY_LENGTH + 1)), changed(key=None),
        changed(key=""), changed(S.RUNNING), changed(forced=True), changed(forced=True, deferred=True),
        changed(snapshot={"task_key": "t"}), changed(snapshot={"task_key": "t", "cache_key": None}),
        changed(key=None, snapshot={"cache_key": "k"}), catalogue.TaskRunDeleted(task_run_id=RUN),
    ],
)
def test_the_payload_probe_passes_every_event_that_files_or_forgets(event: catalogue.Event, encode: Any) -> None:
    """The probe that spares decoding (``_may_change``) never skips an event that files an entry
    or deletes a task run, and skips a client's report whose snapshot names a cache_key."""
    kind = catalogue.event_type(event)
    if cache_entry(event, 1) is not None or isinstance(event, catalogue.TaskRunDeleted):
        assert _may_change(kind, encode(event))
    if isinstance(event, catalogue.TaskRunStateChanged) and event.task_run:
        assert not _may_change(kind, encode(event))


# Superseding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("newer", "older", "expected"),
    [
        pytest.param(entry(2, None), entry(1, None), True, id="never_expiring_over_never_expiring"),
        pytest.param(entry(2, None), entry(1, minutes(5)), True, id="never_expiring_over_expiring"),
        pytest.param(entry(2, minutes(5)), entry(1, minutes(5)), True, id="same_expiration"),
        pytest.param(entry(2, minutes(9)), entry(1, minutes(5)), True, id="later_expiration"),
        pytest.param(entry(2, minutes(5)), entry(1, minutes(9)), False, id="older_outlives_it"),
        pytest.param(entry(2, minutes(5)), entry(1, None), False, id="older_never_expires"),
        pytest.param(entry(2, None, key="j"), entry(1, None), False, id="another_key"),
        pytest.param(entry(1, None), entry(2, None), False, id="not_newer"),
    ],
)
def test_a_newer_entry_supersedes_the_older_ones_it_always_outlives(
    newer: CacheEntry, older: CacheEntry, expected: bool
) -> None:
    assert supersedes(newer, older) is expected


def test_dropping_superseded_entries_never_changes_a_lookup() -> None:
    """Random histories: the pruned entries answer every moment as keeping them all would."""
    rng = random.Random(20260101)
    for _history in range(200):
        kept: list[CacheEntry] = []
        everything: list[CacheEntry] = []
        for position in range(1, rng.randint(2, 12)):
            expiration = None if rng.random() < 0.2 else minutes(rng.randint(0, 20))
            new = entry(position, expiration, key=rng.choice("ab"))
            kept = add_entry(kept, new)
            everything.append(new)
        for moment in range(-1, 22):
            for key in "ab":
                at = minutes(moment)
                assert newest_unexpired(kept, key, at) == newest_unexpired(everything, key, at)


@pytest.mark.parametrize(
    ("entries", "now", "expected"),
    [
        pytest.param([entry(1, None), entry(2, minutes(5))], minutes(1), 2, id="newest_wins"),
        pytest.param([entry(1, None), entry(2, minutes(5))], minutes(5), 1, id="an_expired_newest_falls_back"),
        pytest.param([entry(1, minutes(5))], minutes(6), None, id="all_expired"),
        pytest.param([entry(1, None, key="j")], minutes(1), None, id="another_key"),
    ],
)
def test_a_lookup_answers_the_newest_unexpired_entry(entries: list[CacheEntry], now: datetime,
                                                     expected: int | None) -> None:
    found = newest_unexpired(entries, "k", now)
    assert (found.position if found else None) == expected


def test_a_deleted_task_runs_entry_hides_older_ones_as_in_prefect() -> None:
    entries = forget_task_run([entry(1, None, run=OTHER_RUN), entry(2, minutes(5))], RUN)
    hidden = newest_unexpired(entries, "k", minutes(1))
    assert hidden is not None and (hidden.position, hidden.state) == (2, None)
    after = newest_unexpired(entries, "k", minutes(6))
    assert after is not None and after.position == 1 and after.state is not None


# The projection, on both backends ------------------------------------------------------------------


def record(event: catalogue.Event) -> NewEvent:
    event_id = event.state.id if isinstance(event, catalogue.TaskRunStateChanged) else uuid.uuid4()
    return NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=event_id)


def stream(run: uuid.UUID) -> str:
    return f"task-run-{run}"


def fold(events: list[tuple[int, catalogue.Event]]) -> list[CacheEntry]:
    entries: list[CacheEntry] = []
    for position, event in events:
        if isinstance(event, catalogue.TaskRunDeleted):
            entries = forget_task_run(entries, event.task_run_id)
        elif (new := cache_entry(event, position)) is not None:
            entries = add_entry(entries, new)
    return entries


async def test_the_projection_files_states_inline_and_equals_the_fold(store_url: str, tmp_path) -> None:
    euro_key = "€" * MAX_CACHE_KEY_LENGTH  # 6,000 bytes: past what PostgreSQL can index as text
    third = uuid.uuid4()
    events: list[catalogue.Event] = [
        changed(expiration=None, data={"type": "reference", "storage_key": "one"}),
        changed(S.RUNNING, run=OTHER_RUN),
        changed(key="j", expiration=minutes(5), run=OTHER_RUN),
        changed(key="j", expiration=minutes(3), run=OTHER_RUN),  # outlived by the one before: both stay
        changed(key=euro_key, run=third),
        changed(key="nul\x00key", run=third),
        changed(expiration=minutes(10), run=OTHER_RUN),  # "k": the first entry never expires, so it stays
        changed(key="j", expiration=None),  # supersedes both older "j" entries
        changed(key="k" * (MAX_CACHE_KEY_LENGTH + 1)),
        catalogue.TaskRunDeleted(task_run_id=third),
    ]
    positions: list[tuple[int, catalogue.Event]] = []
    async with open_store(store_url, projections=[TaskRunStateCacheProjection()]) as store:
        for event in events:
            run = event.task_run_id
            recorded = await store.append(stream(run), [record(event)])
            positions.append((recorded[0].position, event))
            async with store.reading() as tx:  # read-your-writes: the projection ran in the append
                assert await all_entries(tx) == fold(positions)
        async with store.reading() as tx:
            live = await all_entries(tx)
            for key in ("k", "j", euro_key, "nul\x00key", "missing"):
                for moment in (-1, 0, 4, 9, 11):
                    assert await lookup(tx, key, minutes(moment)) == newest_unexpired(live, key, minutes(moment))
            one = await lookup(tx, "k", minutes(11))
            assert one is not None and one.state is not None
            assert one.state.data == {"type": "reference", "storage_key": "one"}
            gone = await lookup(tx, euro_key, minutes(0))
            assert gone is not None and gone.state is None  # its task run was deleted
        at = [position for position, _event in positions]
        assert [(e.cache_key, e.position) for e in live] == [
            ("k", at[0]), (euro_key, at[4]), ("nul\x00key", at[5]), ("k", at[6]), ("j", at[7]),
        ]
        records = [r async for r in store.read_all()]

    # Rebuild: replaying the log into an empty store gives the same table.
    async with open_store(f"sqlite:///{tmp_path}/replay.db", projections=[TaskRunStateCacheProjection()]) as replay:
        for r in records:
            await replay.append(r.stream_id, [NewEvent(type=r.type, data=r.data, id=r.id)])
        async with replay.reading() as tx:
            assert await all_entries(tx) == live


async def test_several_states_in_one_append_are_filed_in_log_order(store_url: str) -> None:
    first, second = changed(expiration=minutes(5)), changed(expiration=minutes(9))
    async with open_store(store_url, projections=[TaskRunStateCacheProjection()]) as store:
        recorded = await store.append(stream(RUN), [record(first), record(second)])
        async with store.reading() as tx:
            entries = await all_entries(tx)
    assert [e.position for e in entries] == [recorded[1].position]  # the second superseded the first
    assert entries[0].state == second.state
