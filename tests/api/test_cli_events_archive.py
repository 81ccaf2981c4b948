"""``runlog events archive --before ... --to FILE``: the start of the log and the old log lines
go to a JSON-lines file, then what retention may prune of them leaves the database; the file
and a later export, imported into an empty database, give the whole log back."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from runlog.commands.clock import ManualClock
from runlog.commands.run_logs import LogLine, create_logs
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections
from runlog.projections.verify import verify

from . import isolate_runlog_env
from .cli_runner import run_cli
from ..commands.test_retention import _busy_pool, _rows

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def local(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


async def test_archive_writes_the_start_of_the_log_prunes_and_import_brings_it_all_back(local, tmp_path) -> None:
    # The cut is a position, and its time is when that event was recorded (the store's own
    # clock): the workers' times are long before it, the "new" log line's after it.
    clock = ManualClock(LONG_AGO)
    async with open_store(local, projections=inline_projections()) as store:
        await create_logs(store, [LogLine(name="x", level=20, message="old", timestamp=LONG_AGO, flow_run_id=uuid4())],
                          clock=clock)
        await _busy_pool(store, clock)
        cut = await store.head() - 1  # everything but w1's last heartbeat
        later = datetime.now(UTC) + timedelta(days=1)
        await create_logs(store, [LogLine(name="x", level=20, message="new", timestamp=later)], clock=clock)
        original = [(r.id, r.stream_id, r.type) async for r in store.read_all()]
        workers = await _rows(store, "SELECT * FROM workers")

    archive = tmp_path / "old.jsonl"
    done = await asyncio.to_thread(run_cli, "events", "archive", "--before", str(cut), "--to", str(archive))
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    events = [line for line in lines if line.get("record") != "log"]
    assert [e["position"] for e in events] == list(range(1, cut + 1))  # the whole start, in order
    assert [line["message"] for line in lines if line.get("record") == "log"] == ["old"]
    assert f"up to position {cut}" in done.stdout

    async with open_store(local) as store:
        kept = [r.id async for r in store.read_all()]
        assert 0 < len(kept) < len(original)
        assert [r[0] for r in await _rows(store, "SELECT message FROM logs")] == ["new"]
    assert (await verify(local)).equal  # every view equals a rebuild from what is left

    again = await asyncio.to_thread(run_cli, "events", "archive", "--before", str(cut), "--to", str(archive))
    assert again.exit_code == 1 and "exists" in again.output  # never written over

    rest = tmp_path / "rest.jsonl"
    exported = await asyncio.to_thread(run_cli, "events", "export", str(rest), "--after", str(cut))
    assert exported.exit_code == 0, exported.output
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    for part in (archive, rest):
        imported = await asyncio.to_thread(run_cli, "events", "import", str(part), env={"RUNLOG_DATABASE_URL": fresh})
        assert imported.exit_code == 0, imported.output
    async with open_store(fresh) as store:
        assert [(r.id, r.stream_id, r.type) async for r in store.read_all()] == original
        assert await _rows(store, "SELECT * FROM workers") == workers
        assert sorted(r[0] for r in await _rows(store, "SELECT message FROM logs")) == ["new", "old"]


async def test_a_bad_before_is_refused_and_nothing_is_written(local, tmp_path) -> None:
    async with open_store(local, projections=inline_projections()):
        pass
    refused = await asyncio.to_thread(run_cli, "events", "archive", "--before", "soon", "--to", str(tmp_path / "a.jsonl"))
    assert refused.exit_code == 1 and "--before must be a log position" in refused.output
