"""SQLite's write transactions hand their statements to aiosqlite's writer thread together
(eventstore/sqlite.py, SqliteBatchTx): few trips to the thread, the same transaction."""

from __future__ import annotations

from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, WriteRejected, open_store

SQL_CHECKPOINT = "INSERT INTO projection_checkpoints (name, position) VALUES (?, ?)"


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


async def test_a_write_transaction_sends_its_rows_with_its_commit(sqlite_url, monkeypatch):
    """A read takes the BEGIN along; the rows written after it go with the COMMIT, and the
    transaction's own read after a write sees that write."""
    async with open_store(sqlite_url) as store:
        trips = count_trips(store, monkeypatch)

        async def job(tx):
            before = await tx.fetch("SELECT count(*) FROM projection_checkpoints WHERE name LIKE 'trips.%'")
            await tx.executemany(SQL_CHECKPOINT, [("trips.a", 1), ("trips.b", 2)])
            seen = await tx.fetch("SELECT name FROM projection_checkpoints WHERE name LIKE 'trips.%' ORDER BY name")
            await tx.executemany(SQL_CHECKPOINT, [("trips.c", 3)])
            return before, seen

        before, seen = await store.write_transaction(job)
        assert trips == [3]  # the first read, the second read (with the first rows), the COMMIT
        async with store.reading() as tx:
            stored = await tx.fetch("SELECT name FROM projection_checkpoints WHERE name LIKE 'trips.%' ORDER BY name")
    assert [tuple(row) for row in before] == [(0,)]
    assert [tuple(row) for row in seen] == [("trips.a",), ("trips.b",)]
    assert [tuple(row) for row in stored] == [("trips.a",), ("trips.b",), ("trips.c",)]


async def test_a_statement_of_its_own_in_a_write_transaction_runs_at_once(sqlite_url, monkeypatch):
    """execute (DDL, a rebuild's swap, a pragma) goes to the thread before it returns, so its
    caller may time it."""
    async with open_store(sqlite_url) as store:
        trips = count_trips(store, monkeypatch)
        after_statement: list[int] = []

        async def job(tx):
            await tx.execute("CREATE TABLE trips_scratch (x INTEGER)")
            after_statement.append(trips[0])
            await tx.executemany("INSERT INTO trips_scratch (x) VALUES (?)", [(1,), (2,)])
            await tx.execute("DROP TABLE trips_scratch")

        await store.write_transaction(job)
        assert trips == [3]  # the CREATE (with the BEGIN), the DROP (with the rows), the COMMIT
    assert after_statement == [1]


async def test_a_refused_row_sent_with_the_commit_rolls_back_the_whole_transaction(sqlite_url):
    async with open_store(sqlite_url) as store:
        async def job(tx):
            await tx.fetch("SELECT 1")
            await tx.executemany(SQL_CHECKPOINT, [("trips.kept", 1)])
            await tx.executemany(SQL_CHECKPOINT, [("trips.twice", 1), ("trips.twice", 2)])

        with pytest.raises(WriteRejected):
            await store.write_transaction(job)
        async with store.reading() as tx:
            stored = await tx.fetch("SELECT name FROM projection_checkpoints WHERE name LIKE 'trips.%'")
        # The store goes on: the next transaction commits.
        await store.write_transaction(lambda tx: tx.executemany(SQL_CHECKPOINT, [("trips.after", 1)]))
        async with store.reading() as tx:
            after = await tx.fetch("SELECT name FROM projection_checkpoints WHERE name LIKE 'trips.%'")
    assert stored == []
    assert [tuple(row) for row in after] == [("trips.after",)]
