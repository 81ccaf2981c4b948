"""SQLite pages of the log and its head are read on the event loop's thread, never waiting there on a lock."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from uuid import uuid4

import structlog

from runlog.eventstore import NewEvent, open_store
from runlog.eventstore import sqlite as sqlite_store


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


async def test_committed_pages_reach_the_file_without_the_writer_checkpointing(sqlite_url, monkeypatch):
    """CHECKPOINT_EVERY: the store copies the WAL into the database file on a connection of its
    own, with no further commit; the writer alone would leave 4 MiB in the WAL (it checkpoints at
    WAL_AUTOCHECKPOINT = 10,000 pages, 40 MiB)."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.05)
    path = sqlite_url.removeprefix("sqlite:///")
    async with open_store(sqlite_url) as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None and not checkpointer.done()
        for _ in range(20):
            await store.append("s", [NewEvent(type="t", data=b"x" * 2048, id=uuid4()) for _ in range(100)])
        deadline = time.monotonic() + 30
        while os.path.getsize(path) < 4 * 1024 * 1024 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert os.path.getsize(path) >= 4 * 1024 * 1024
    assert checkpointer.done() and store._checkpoint_conn is None


async def test_a_failing_checkpoint_is_logged_once_and_tried_again(sqlite_url, monkeypatch):
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.01)
    async with open_store(sqlite_url) as store:
        conn = store._checkpoint_conn
        real = conn.execute_fetchall
        calls = 0
        recovered = asyncio.Event()

        async def failing(sql, *args):
            nonlocal calls
            calls += 1
            if calls <= 5:
                raise sqlite3.OperationalError("disk I/O error")
            recovered.set()
            return await real(sql, *args)

        monkeypatch.setattr(conn, "execute_fetchall", failing)
        with structlog.testing.capture_logs() as logs:
            await asyncio.wait_for(recovered.wait(), 30)
            await asyncio.sleep(0.05)
            await store.append("s", [NewEvent(type="t", data=b"x", id=uuid4())])
        assert store._checkpointer is not None and not store._checkpointer.done()
    events = [(entry["event"], entry["log_level"]) for entry in logs if entry["event"].startswith("wal_checkpoint")]
    assert events == [("wal_checkpoint_failed", "warning"), ("wal_checkpoint_recovered", "info")]
    assert all("disk I/O error" in entry.get("error", "") for entry in logs if entry["event"] == "wal_checkpoint_failed")
