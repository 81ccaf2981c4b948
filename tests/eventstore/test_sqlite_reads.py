"""SQLite pages of the log and its head are read on the event loop's thread, never waiting there on a lock."""

from __future__ import annotations

import sqlite3
from uuid import uuid4

from runlog.eventstore import NewEvent, open_store


async def test_the_loop_thread_connection_never_waits_for_a_lock(sqlite_url):
    async with open_store(sqlite_url) as store:
        scan = store._scan_conn
        assert scan is not None
        assert scan.execute("PRAGMA busy_timeout").fetchone() == (0,)
        assert scan.execute("PRAGMA query_only").fetchone() == (1,)


async def test_the_head_is_read_without_the_reader_thread(sqlite_url, monkeypatch):
    async with open_store(sqlite_url) as store:
        for _ in range(3):
            await store.append("s", [NewEvent(type="t", data=b"x", id=uuid4())])

        async def no_thread(*_args):
            raise AssertionError("read through the reader thread")

        monkeypatch.setattr(store._reader_conn, "execute_fetchall", no_thread)
        assert await store.head() == 3


async def test_a_page_answered_busy_on_the_loop_thread_is_read_on_the_reader_thread(sqlite_url, tmp_path):
    async with open_store(sqlite_url) as store:
        ids = [uuid4() for _ in range(30)]
        for event_id in ids:
            await store.append("s", [NewEvent(type="t", data=b"x", id=event_id)])

        # Point the loop-thread connection at a file another connection holds exclusively, so
        # SQLite really answers it "database is locked" (a live store's own connections keep
        # an exclusive lock off its file, so the lock cannot be taken on the store's file).
        locked = tmp_path / "locked.db"
        holder = sqlite3.connect(locked, isolation_level=None)
        holder.execute("CREATE TABLE events (position, stream_id, version, id, type, data, recorded_at)")
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        real_scan = store._scan_conn
        store._scan_conn = sqlite3.connect(locked, isolation_level=None, timeout=0)
        try:
            read = [event.id async for event in store.read_all()]
            head = await store.head()
        finally:
            store._scan_conn.close()
            store._scan_conn = real_scan
            holder.close()

    assert read == ids
    assert head == 30


async def test_the_stores_connections_checkpoint_the_wal_every_10000_pages(sqlite_url):
    """WAL_AUTOCHECKPOINT: the writer's commits (and the reader's, which writes run logs) copy the
    WAL into the file every 10,000 pages, not SQLite's 1,000."""
    async with open_store(sqlite_url) as store:
        written = await store.write_transaction(lambda tx: tx.fetch("PRAGMA wal_autocheckpoint"))
        async with store.reading() as tx:
            read = await tx.fetch("PRAGMA wal_autocheckpoint")
    assert [tuple(row) for row in written] == [(10_000,)] == [tuple(row) for row in read]
