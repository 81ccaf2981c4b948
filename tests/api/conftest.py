"""Fixtures the API tests share: a served runlog (in-process, on a free port) on each backend,
whose "now" is a manual clock the test moves.

The time-based services (late runs, pause timeouts, cancellation cleanup) are off in the
``server`` fixture unless the test is marked ``@pytest.mark.services``, as Prefect's own test
suite disables its services: they step on real-time intervals but read the manual clock, so a
test that made a Scheduled run in the past, or moved the clock past a pause timeout, would see
the run change under it whenever its wall time crossed an interval."""

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


# What the ``server`` fixture adds to its environment unless the test asks for the services.
TIME_BASED_SERVICES_OFF = {
    "RUNLOG_SERVICES_LATE_RUNS_ENABLED": "false",
    "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
}


@pytest.fixture
async def server(request, env, clock):
    wanted = request.node.get_closest_marker("services") is not None
    async with serve(env if wanted else {**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as running:
        yield running
