"""A database that goes away: clear errors while it is gone, and recovery without a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from urllib.parse import urlsplit
from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, StorageMisconfigured, StorageUnavailable, open_store, parse_database_url
from runlog.eventstore.sqlite import SqliteStore

from ..tcpproxy import TcpProxy
from .head_reads import counting_head_reads


def new() -> NewEvent:
    return NewEvent(type="t", data=b"{}", id=uuid4())


@pytest.mark.postgres
async def test_postgres_going_away_raises_storage_unavailable_and_recovers(pg_url):
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname, parts.port or 5432)
    await proxy.start()
    proxied = pg_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}")
    async with open_store(proxied) as store:
        await store.append("s", [new()])
        seen = []
        got_new = asyncio.Event()

        async def tail() -> None:
            async for event in store.subscribe():
                seen.append(event.position)
                if event.position == 2:
                    got_new.set()

        tailer = asyncio.create_task(tail())
        await proxy.cut()
        kept = new()
        with pytest.raises(StorageUnavailable, match="is unavailable") as info:
            await store.append("s", [kept])
        assert "127.0.0.1" in str(info.value)
        with pytest.raises(StorageUnavailable):
            await store.head()

        await proxy.start()
        # The client retries the unacknowledged append with the same id: stored once.
        recorded = await store.append("s", [kept])
        assert recorded[0].position == 2
        assert await store.head() == 2
        await asyncio.wait_for(got_new.wait(), 15)
        assert seen == [1, 2]
        assert not tailer.done()  # the subscriber rode out the outage
        tailer.cancel()
        await asyncio.gather(tailer, return_exceptions=True)
    await proxy.cut()


@pytest.mark.postgres
async def test_opening_an_unreachable_postgres_says_so_without_the_password():
    url = "postgresql://runlog:hunter2@127.0.0.1:1/runlog"
    with pytest.raises(StorageUnavailable) as info:
        async with open_store(url):
            pass
    assert "unavailable" in str(info.value)
    assert "hunter2" not in str(info.value) and "********" in str(info.value)


async def test_sqlite_locked_by_another_process_too_long_is_unavailable_then_recovers(sqlite_url):
    async with open_store(sqlite_url):
        pass  # create the schema
    store = SqliteStore(parse_database_url(sqlite_url), busy_timeout=0.2)
    async with store:
        other = sqlite3.connect(parse_database_url(sqlite_url).sqlite_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageUnavailable, match="locked"):
                await store.append("s", [new()])
        finally:
            other.execute("ROLLBACK")
            other.close()
        recorded = await store.append("s", [new()])
        assert recorded[0].position == 1


async def test_sqlite_in_an_unwritable_place_is_unavailable_with_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageUnavailable, match="cannot create the folder"):
        async with open_store(f"sqlite:///{blocker}/sub/runlog.db"):
            pass


async def _listening(store, database: str) -> bool:
    async with store.reading() as tx:
        rows = await tx.fetch(
            # Its last statement is the LISTEN, or the keep-alive ping that only follows it.
            "SELECT 1 FROM pg_stat_activity WHERE datname = ? AND application_name = 'runlog-listener'"
            " AND (query LIKE 'LISTEN %' OR query = 'SELECT 1')",
            database,
        )
    return bool(rows)


@pytest.mark.postgres
async def test_postgres_subscriber_is_woken_by_another_process_append_through_notify(pg_url):
    """Two stores are two sets of connections: only LISTEN/NOTIFY can carry the wake-up."""
    async with open_store(pg_url) as watcher, open_store(pg_url) as writer:
        watcher.poll_interval = 60  # the fallback poll must not be what delivers it
        database = urlsplit(pg_url).path.lstrip("/")
        async with asyncio.timeout(30):
            # Only once the watcher's listener connection has sent LISTEN can a NOTIFY reach it.
            while not await _listening(writer, database):
                await asyncio.sleep(0.02)
            first = asyncio.create_task(anext(watcher.subscribe()))
            while watcher.subscribers_waiting == 0:  # read the empty log, now waits
                await asyncio.sleep(0.01)
        await writer.append("s", [new()])
        event = await asyncio.wait_for(first, 10)
        assert event.position == 1


@pytest.mark.postgres
async def test_a_postgres_follower_waits_on_the_announcements_without_reading_the_head(pg_url, monkeypatch):
    """While LISTEN is up and the head was read since it connected, every append is announced
    with its last position, so waiting reads no head: another process's append ends the wait
    by its NOTIFY alone, and this process's own appends by the writer's wake-up."""
    async with open_store(pg_url) as watcher, open_store(pg_url) as writer:
        watcher.poll_interval = 60  # the fallback poll (which reads the head) must not come
        async with asyncio.timeout(30):
            # The watcher's own listener, as the watcher knows it: a head read before it listens
            # would not count (pg_stat_activity's row could be the writer's listener).
            while not watcher._listening:
                await asyncio.sleep(0.02)
        reads = counting_head_reads(watcher, monkeypatch)
        first = asyncio.create_task(watcher.grown(0))
        async with asyncio.timeout(10):
            while watcher.subscribers_waiting == 0:
                await asyncio.sleep(0.01)
        assert reads == [0]  # the one read since LISTEN connected: every append after it is heard
        await writer.append("s", [new(), new()])
        await asyncio.wait_for(first, 10)

        second = asyncio.create_task(watcher.grown(2))
        async with asyncio.timeout(10):
            while watcher.subscribers_waiting == 0:
                await asyncio.sleep(0.01)
        await watcher.append("t", [new()])  # its own: the writer wakes the wait
        await asyncio.wait_for(second, 10)
        async with asyncio.timeout(10):
            await watcher.grown(2)  # past what it committed: at once
        assert reads == [0]


@pytest.mark.postgres
async def test_a_postgres_append_that_nobody_announced_is_found_by_the_poll(pg_url, monkeypatch):
    async with open_store(pg_url) as store:
        async with asyncio.timeout(30):
            while not store._listening:
                await asyncio.sleep(0.02)
        await store.head()  # from here on every announced append would wake a waiting follower
        store.poll_interval = 0.05
        waiting = asyncio.create_task(store.grown(0))
        async with asyncio.timeout(10):
            while store.subscribers_waiting == 0:
                await asyncio.sleep(0.01)
        # Inserted beside runlog_insert, so no NOTIFY: only reading the head at the poll sees it.
        async with store.reading() as tx:
            await tx.execute(
                "INSERT INTO events (position, stream_id, version, id, type, data) VALUES (1, 's', 1, ?, 't', ?)",
                uuid4(), b"{}",
            )
        await asyncio.wait_for(waiting, 10)


@pytest.mark.postgres
async def test_a_missing_postgres_database_is_a_permanent_error_naming_what_to_do(postgres_admin_url):
    missing = postgres_admin_url.rsplit("/", 1)[0] + f"/runlog_missing_{uuid4().hex[:12]}"
    with pytest.raises(StorageMisconfigured, match="does not exist.*createdb") as caught:
        async with open_store(missing):
            pass
    assert not isinstance(caught.value, StorageUnavailable)


@pytest.mark.postgres
async def test_an_unknown_postgres_user_is_a_permanent_error_naming_the_credentials(postgres_admin_url):
    parts = urlsplit(postgres_admin_url)
    stranger = postgres_admin_url.replace(f"{parts.username}@", f"nobody_{uuid4().hex[:8]}@", 1)
    with pytest.raises(StorageMisconfigured, match="refused the user or password"):
        async with open_store(stranger):
            pass
