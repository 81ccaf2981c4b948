"""The suite's fallback when no PostgreSQL is running: a throwaway initdb cluster."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from . import pgserver
from .servers import unused_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.mark.postgres
@pytest.mark.slow
def test_ensure_postgres_starts_a_throwaway_cluster_when_nothing_answers(monkeypatch):
    if pgserver.find_pg_bin("initdb") is None or pgserver.find_pg_bin("pg_ctl") is None:
        if IN_CI:
            pytest.fail("CI=true but initdb/pg_ctl are not installed", pytrace=False)
        pytest.skip("initdb/pg_ctl not installed")
    monkeypatch.delenv("RUNLOG_TEST_POSTGRES_URL", raising=False)
    silent_port = unused_port()  # nothing listens here, and no cluster is configured on it

    url, problem = pgserver.ensure_postgres(port=silent_port)
    assert url is not None, problem
    try:
        server = next(s for s in pgserver._STARTED if s.url == url)
        assert os.path.isdir(server.datadir)

        async def select_one() -> int:
            conn = await asyncpg.connect(url, timeout=10)
            try:
                return await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        assert asyncio.run(select_one()) == 1
    finally:
        pgserver.stop_started_postgres(url)

    assert not os.path.exists(server.workdir)
    assert pgserver.reachable(url) is not None
