"""PostgreSQL service leadership: the leader's liveness round trip is made at most once a
LIVENESS_SECONDS, and a lead lost with its session is still seen at the next campaign."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from runlog.eventstore.postgres import LIVENESS_SECONDS, PostgresLeadership
from runlog.eventstore.urls import parse_database_url

pytestmark = pytest.mark.postgres


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """The leader's connection, noting the statements sent through it."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.sent: list[str] = []

    async def fetchval(self, query, *args, **kwargs):
        self.sent.append(query)
        return await self.conn.fetchval(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def counting(leadership: PostgresLeadership) -> list[str]:
    """The statements the leader's session is sent from here on."""
    assert leadership._conn is not None
    wrapped = Counting(leadership._conn)
    leadership._conn = wrapped  # type: ignore[assignment]
    return wrapped.sent


async def test_a_leader_checks_its_session_at_most_once_a_liveness_interval(pg_url) -> None:
    ticks = Ticks()
    leader = PostgresLeadership(parse_database_url(pg_url), "svc", monotonic=ticks)
    try:
        assert await leader.campaign()
        sent = counting(leader)
        for _ in range(5):
            assert await leader.campaign()
        assert sent == []  # just took the lock: its answer was the check
        ticks.now += LIVENESS_SECONDS
        assert await leader.campaign()
        assert await leader.campaign()
        assert sent == ["SELECT 1"]
    finally:
        await leader.resign()


async def test_a_lead_lost_with_its_session_is_seen_within_the_interval(pg_url) -> None:
    ticks = Ticks()
    db = parse_database_url(pg_url)
    first = PostgresLeadership(db, "svc", monotonic=ticks)
    second = PostgresLeadership(db, "svc", monotonic=ticks)
    try:
        assert await first.campaign()
        assert not await second.campaign()
        assert first._conn is not None
        pid = first._conn.get_server_pid()
        admin = await asyncpg.connect(db.postgres_dsn)
        try:
            await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        for _ in range(100):  # the client notices the closed socket
            if first._conn.is_closed():
                break
            await asyncio.sleep(0.05)
        # No time passed: the closed session is seen without the round trip, and the lock it
        # held is free for the other process.
        assert await second.campaign()
        assert not await first.campaign()
    finally:
        await first.resign()
        await second.resign()
