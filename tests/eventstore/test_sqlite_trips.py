"""SQLite's append batches hand their statements to aiosqlite's writer thread together
(eventstore/sqlite.py, SqliteBatchTx): few trips to the thread, the same transaction."""

from __future__ import annotations

from uuid import uuid4

from runlog.eventstore import NewEvent, open_store

def count_trips(store, monkeypatch) -> list[int]:
    """A one-item list counting the writer connection's trips to its thread from here on."""
    conn = store._writer_conn
    real = conn._execute
    trips = [0]

    async def counted(fn, *args, **kwargs):
        trips[0] += 1
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(conn, "_execute", counted)
    return trips


async def test_an_append_batch_is_two_trips_to_the_writer_thread(sqlite_url, monkeypatch):
    """BEGIN with the head, the streams' versions and the stored ids; then the events, the
    inline projections' rows and the COMMIT."""
    async with open_store(sqlite_url) as store:
        await store.append("s", [NewEvent(type="t", data=b"x", id=uuid4())])
        trips = count_trips(store, monkeypatch)
        recorded = await store.append("s", [NewEvent(type="t", data=b"y", id=uuid4())], expected_version=1)
        assert trips == [2]
    assert [(r.position, r.version) for r in recorded] == [(2, 2)]
