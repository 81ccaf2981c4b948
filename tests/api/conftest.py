"""Fixtures the API tests share: a served runlog (in-process, on a free port) on each backend,
whose "now" is a manual clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runlog.commands.clock import ManualClock

from ..servers import serve

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def server(env, clock):
    async with serve(env, clock=clock) as running:
        yield running
