"""A server's store gives the planner statistics (ANALYZE) when it opens a database: on SQLite once
the log has reached eventstore/sqlite.py's ANALYZE_FROM_EVENTS (a smaller one is left without),
on PostgreSQL, once the log has reached eventstore/postgres.py's ANALYZE_FROM_EVENTS, for the
tables whose statistics are missing or stale by autovacuum's rule (which this machine's
PostgreSQL runs without)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from runlog.eventstore import NewEvent, open_store
from runlog.eventstore import postgres as postgres_store
from runlog.eventstore import sqlite as sqlite_store

from ..servers import until


async def statistics_of(url: str) -> set[str]:
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        if not await tx.fetch("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"):
            return set()
        return {row[0] for row in await tx.fetch("SELECT DISTINCT tbl FROM sqlite_stat1")}


async def test_statistics_are_taken_once_the_log_is_long_enough(sqlite_url, monkeypatch):
    monkeypatch.setattr(sqlite_store, "ANALYZE_FROM_EVENTS", 20)
    async with open_store(sqlite_url) as store:
        await store.append("s", [NewEvent(type="t", data=b"{}", id=uuid4()) for _ in range(19)])
    async with open_store(sqlite_url):
        pass
    assert await statistics_of(sqlite_url) == set()  # 19 events: none taken

    async with open_store(sqlite_url) as store:
        await store.append("s", [NewEvent(type="t", data=b"{}", id=uuid4())], expected_version=19)
    async with open_store(sqlite_url):
        pass
    assert "events" in await statistics_of(sqlite_url)


async def events_changed(url: str) -> int:
    """Rows of events changed since analyzed, as the statistics system has them so far (each
    backend reports its counts when it ends, a moment after its connection closes)."""
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        rows = await tx.fetch("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'events'")
    return int(rows[0][0])


async def analyzed(url: str) -> dict[str, bool]:
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        rows = await tx.fetch("SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables")
    return {name: bool(done) for name, done in rows}


@pytest.mark.postgres
async def test_postgres_tables_grown_since_their_statistics_are_analyzed(pg_url, monkeypatch):
    monkeypatch.setattr(postgres_store, "ANALYZE_FROM_EVENTS", 20)
    async with open_store(pg_url) as store:
        await store.append("s", [NewEvent(type="t", data=b"{}", id=uuid4()) for _ in range(19)])
    await until(lambda: events_changed(pg_url), what="the appends counted")
    async with open_store(pg_url):
        pass
    assert not (await analyzed(pg_url))["events"]  # a log of 19 events: none taken

    async with open_store(pg_url) as store:
        await store.append("s", [NewEvent(type="t", data=b"{}", id=uuid4()) for _ in range(41)], expected_version=19)

    async def all_counted() -> bool:
        return await events_changed(pg_url) >= 60

    await until(all_counted, what="the appends counted")
    async with open_store(pg_url):
        pass
    assert (await analyzed(pg_url))["events"]  # 60 rows changed: over autovacuum's 50 + 10%
