"""The event feed is a projection too: `projections verify` rebuilds it up to its checkpoint."""

from __future__ import annotations

import asyncio
import re

import pytest

from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.projections.checkpoints import checkpoint

from . import isolate_runlog_env
from .cli_runner import run_cli
from .test_events_feed import START, failing_run, feed_holds
from ..servers import serve


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


async def runs_in_the_feed(url: str, home: str) -> None:
    clock = ManualClock(START)
    async with serve({"RUNLOG_HOME": home, "RUNLOG_DATABASE_URL": url}, clock=clock) as server:
        await server.request("POST", "/events", json=[{
            "occurred": "2026-03-01T11:00:00Z", "event": "my.event", "id": "5f0c5c43-8b3c-4a43-9b8b-1f9d0a0c0b7e",
            "resource": {"prefect.resource.id": "my.thing"}, "related": [{"prefect.resource.id": "x", "prefect.resource.role": "r"}],
        }])
        await failing_run(server, clock)
        await feed_holds(server, 4)


def test_verify_finds_the_feed_equal_to_its_rebuild_and_notices_a_changed_row(database, tmp_path):
    asyncio.run(runs_in_the_feed(database, str(tmp_path / "server")))
    result = run_cli("projections", "verify")
    assert result.exit_code == 0, result.output
    # A row per related resource: the client event's one, and each state change's flow and two tags.
    for table, rows in (("event_feed", 4), ("event_feed_resources", 1 + 3 * 3)):
        assert re.search(rf"{table} +│ \w+ +│ +{rows} │ +{rows} │ equal", result.output), (table, result.output)

    async def tamper() -> None:
        async with open_store(database) as store:
            assert await checkpoint(store, "event_feed") == await store.head()
            async with store.reading() as tx:
                await tx.execute("UPDATE event_feed SET event = 'prefect.flow-run.Completed' WHERE event = 'prefect.flow-run.Failed'")

    asyncio.run(tamper())
    result = run_cli("projections", "verify")
    assert result.exit_code == 1, result.output
    assert "event_feed: 1 row(s) only in the live table, 1 only in the rebuild" in result.output
