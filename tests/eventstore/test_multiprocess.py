"""Several processes appending to one database while a subscriber tails the log.

This is the test that a plain BIGSERIAL log fails: a row numbered lower commits after a
higher one was read, and the tailing reader skips it forever. Here every committed event
must be seen exactly once, in increasing, contiguous positions.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from runlog.eventstore import open_store

ROOT = Path(__file__).resolve().parents[2]


async def run_appenders(url: str, processes: int, tasks: int, appends: int) -> list[str]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.eventstore.appender_process", url, f"p{i}", str(tasks), str(appends),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        for i in range(processes)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    return [out.decode().strip().splitlines()[-1] if out.strip() else f"rc={p.returncode}, no output"
            for p, (out, _) in zip(procs, outputs, strict=True)]


async def tail_while_appending(url: str, processes: int, tasks: int, appends: int):
    per_process = tasks * sum(1 + (i % 3) for i in range(appends))
    expected_total = processes * per_process
    async with open_store(url) as store:  # creates the schema before the writers start
        seen = []

        async def tail() -> None:
            async for event in store.subscribe():
                seen.append((event.position, event.id))
                if len(seen) >= expected_total:
                    return

        tailer = asyncio.create_task(tail())
        results = await run_appenders(url, processes, tasks, appends)
        assert results == [f"ok {per_process}"] * processes, results
        await asyncio.wait_for(tailer, 30)
        stored = [(e.position, e.id) async for e in store.read_all()]
    return seen, stored, expected_total


@pytest.mark.postgres
@pytest.mark.slow
async def test_tailing_postgres_while_four_processes_append_sees_every_event_once_in_order(pg_url):
    seen, stored, total = await tail_while_appending(pg_url, processes=4, tasks=8, appends=60)
    assert len(stored) == total
    assert [p for p, _ in seen] == list(range(1, total + 1))  # increasing and contiguous
    assert len({i for _, i in seen}) == total  # each event exactly once
    assert seen == stored  # and what the tailer saw is exactly what was committed


@pytest.mark.slow
async def test_two_processes_on_one_sqlite_file_both_make_progress_without_lock_errors(sqlite_url):
    seen, stored, total = await tail_while_appending(sqlite_url, processes=2, tasks=8, appends=40)
    assert len(stored) == total
    assert [p for p, _ in seen] == list(range(1, total + 1))
    assert seen == stored
