"""A server's SQLite store gives the planner statistics (ANALYZE) when it opens a database whose
log has reached eventstore/sqlite.py's ANALYZE_FROM_EVENTS, and leaves a smaller one without."""

from __future__ import annotations

from uuid import uuid4

from runlog.eventstore import NewEvent, open_store
from runlog.eventstore import sqlite as sqlite_store


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
