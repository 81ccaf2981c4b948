"""How the import appends a page (commands/import_prefect/importer.py): in multi-stream appends of
bounded size, records sharing a stream one after the other, each record counted once; both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from runlog.commands.import_prefect import importer as importer_module
from runlog.commands.import_prefect.importer import Importer, _chunks
from runlog.eventstore import NewEvent, StreamAppend
from runlog.schema import events as catalogue

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _flow_append(stream: str | None = None, events: int = 1):
    flow_id = uuid4()
    return (stream or f"flow-{flow_id}", [
        (uuid4(), catalogue.FlowCreated(flow_id=flow_id, name=f"f-{flow_id}", tags=[], labels={}, created=T0))
        for _ in range(events)
    ])


def test_chunks_keep_order_and_stay_within_the_size_unless_one_record_is_larger(monkeypatch):
    monkeypatch.setattr(importer_module, "GROUP_EVENTS", 4)
    parts = [StreamAppend(f"s{n}", [NewEvent(type="t", data=b"{}", id=uuid4()) for _ in range(size)])
             for n, size in enumerate([1, 2, 1, 6, 3, 1])]
    chunks = _chunks(parts)
    assert [part for chunk in chunks for part in chunk] == parts
    assert [[part.stream_id for part in chunk] for chunk in chunks] == [["s0", "s1", "s2"], ["s3"], ["s4", "s5"]]


async def test_a_page_in_several_appends_is_stored_once_and_counted_once(store, monkeypatch):
    monkeypatch.setattr(importer_module, "GROUP_EVENTS", 3)
    page = [_flow_append(events=2) for _ in range(4)]
    importer = Importer(source=None, store=store)  # type: ignore[arg-type]  (_append reads no source)
    await importer._append("flow", page)
    stored = [event async for event in store.read_all()]
    assert [event.id for event in stored] == [event_id for _, events in page for event_id, _ in events]
    assert importer.report.table("flow").imported == 4
    await importer._append("flow", page)  # again: nothing new
    assert await store.head() == len(stored)
    assert importer.report.table("flow").already == 4


async def test_records_sharing_a_stream_are_appended_one_after_the_other(store):
    shared = f"flow-{uuid4()}"
    page = [_flow_append(shared), _flow_append(shared), _flow_append()]
    importer = Importer(source=None, store=store)  # type: ignore[arg-type]
    await importer._append("flow", page)
    versions = [(event.stream_id, event.version) async for event in store.read_all()]
    assert versions == [(shared, 1), (shared, 2), (page[2][0], 1)]
    assert importer.report.table("flow").imported == 3


class _Counting:
    """A source that only counts its runs (what ``_defers`` asks it)."""

    def __init__(self, runs: int) -> None:
        self.runs = runs

    async def fetch(self, sql: str, *args):
        assert sql == "SELECT count(*) AS n FROM flow_run"
        return [{"n": self.runs}]


async def _hold_runs(store, count: int) -> None:
    async def insert(tx) -> None:
        await tx.executemany(
            "INSERT INTO flow_runs (id, version, flow_id, name, created, view) VALUES (?, 1, ?, ?, 0, ?)",
            [(str(uuid4()), str(uuid4()), f"run-{n}", b"{}") for n in range(count)],
        )
    await store.write_transaction(insert)


async def test_indexes_are_set_aside_when_the_source_has_at_least_as_many_runs_as_runlog(store):
    assert await Importer(source=_Counting(5), store=store)._defers()  # type: ignore[arg-type]
    assert not await Importer(source=_Counting(0), store=store)._defers()  # type: ignore[arg-type]
    await _hold_runs(store, 6)
    assert not await Importer(source=_Counting(5), store=store)._defers()  # type: ignore[arg-type]
    assert await Importer(source=_Counting(6), store=store)._defers()  # type: ignore[arg-type]
    assert not await Importer(source=_Counting(6), store=store, defer_indexes=False)._defers()  # type: ignore[arg-type]
