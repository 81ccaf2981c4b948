"""The service runner: rounds on an interval with the injected clock, backoff, clean stop, and
leader election across stores (processes) on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY

from runlog.commands.clock import ManualClock
from runlog.commands.runner import Service, ServiceRunner
from runlog.eventstore import open_store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


async def until(condition, *, timeout: float = 60.0) -> None:
    """Wait for a condition the test can observe (never a fixed sleep standing in for it)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_rounds_run_with_the_clocks_time_until_stopped(sqlite_url) -> None:
    clock = ManualClock(T0)
    seen: list[datetime] = []

    async def step(now: datetime) -> None:
        seen.append(now)
        clock.advance(1)

    async with open_store(sqlite_url) as store:
        runner = ServiceRunner(store, [Service("ticker", step, interval=0.001)], clock=clock)
        async with runner:
            await until(lambda: len(seen) >= 3)
            assert runner.leading == {"ticker": True}  # SQLite: always the leader
            assert runner.running
        # Stopped: every loop has ended, so no round can come after this one.
        assert not runner.running and runner.leading == {"ticker": False}
    assert seen[:3] == [T0, T0.replace(second=1), T0.replace(second=2)]


async def test_a_failing_round_is_retried_with_growing_waits_and_the_service_goes_on(sqlite_url) -> None:
    calls = 0

    async def step(_now: datetime) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError(f"round {calls} failed")

    async with open_store(sqlite_url) as store:
        with structlog.testing.capture_logs() as logs:
            async with ServiceRunner(store, [Service("flaky", step, interval=0.01)], max_backoff=0.05):
                await until(lambda: calls >= 5)
    failures = [entry for entry in logs if entry["event"] == "service_round_failed"]
    assert [entry["retry_in"] for entry in failures] == [0.02, 0.04, 0.05]  # doubled, then capped
    assert all(entry["service"] == "flaky" for entry in failures)


async def test_failed_rounds_the_last_good_rounds_time_and_leadership_are_metrics(sqlite_url) -> None:
    clock, calls = ManualClock(T0), 0

    async def step(_now: datetime) -> None:
        nonlocal calls
        calls += 1
        clock.advance(60)  # the next round runs a minute later by the clock
        if calls <= 2:
            raise RuntimeError(f"round {calls} failed")

    service = f"metered-{os.getpid()}-{id(clock)}"  # the instruments are the process's: a fresh name

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"service": service, **labels})

    pid = str(os.getpid())
    async with open_store(sqlite_url) as store:
        async with ServiceRunner(store, [Service(service, step, interval=0.01)], clock=clock, max_backoff=0.02):
            await until(lambda: calls >= 4)
            assert sample("runlog_service_leading", pid=pid) == 1
        assert sample("runlog_service_errors_total") == 2
        # The last good round (the fourth or a later one) began at the clock's time then.
        assert sample("runlog_service_last_run_timestamp_seconds") == (T0 + timedelta(minutes=calls - 1)).timestamp()
        assert sample("runlog_service_leading", pid=pid) == 0  # resigned when stopped


async def test_stop_lets_a_running_round_finish(sqlite_url) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished = []

    async def step(_now: datetime) -> None:
        started.set()
        await release.wait()
        finished.append(True)

    async with open_store(sqlite_url) as store:
        runner = ServiceRunner(store, [Service("slow", step, interval=60)])
        runner.start()
        await started.wait()
        stopping = asyncio.create_task(runner.stop())
        await asyncio.sleep(0)
        assert not stopping.done()
        release.set()
        await stopping
    assert finished == [True]


@pytest.mark.postgres
async def test_on_postgres_one_store_of_several_leads_and_another_takes_over_when_it_resigns(pg_url) -> None:
    rounds: dict[str, int] = {"a": 0, "b": 0}

    def counting(name: str):
        async def step(_now: datetime) -> None:
            rounds[name] += 1
        return step

    async with open_store(pg_url) as store_a, open_store(pg_url) as store_b:
        runner_a = ServiceRunner(store_a, [Service("singleton", counting("a"), interval=0.01)])
        runner_b = ServiceRunner(store_b, [Service("singleton", counting("b"), interval=0.01)])
        async with runner_a:
            await until(lambda: rounds["a"] >= 1)
            async with runner_b:
                await until(lambda: rounds["a"] >= 20)
                assert rounds["b"] == 0 and runner_b.leading == {"singleton": False}
                await runner_a.stop()  # resigns: closes its lock's session
                await until(lambda: rounds["b"] >= 5)
                assert runner_b.leading == {"singleton": True}


LEADER_SCRIPT = """
import asyncio, sys
from runlog.commands.runner import Service, ServiceRunner
from runlog.eventstore import open_store

async def main(url):
    async with open_store(url) as store:
        async def step(now):
            print("round", flush=True)
        async with ServiceRunner(store, [Service("singleton", step, interval=0.01)]):
            await asyncio.Event().wait()

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.postgres
async def test_on_postgres_a_killed_leader_process_is_replaced(pg_url) -> None:
    leader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEADER_SCRIPT, pg_url, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )
    assert leader.stdout is not None

    async def next_round() -> None:
        while (line := await leader.stdout.readline()) != b"round\n":  # skip its log lines
            assert line, "the leader process ended"

    try:
        async with asyncio.timeout(60):
            await next_round()  # it leads
        rounds = 0

        async def step(_now: datetime) -> None:
            nonlocal rounds
            rounds += 1

        async with open_store(pg_url) as store:
            async with ServiceRunner(store, [Service("singleton", step, interval=0.01)]) as runner:
                async with asyncio.timeout(60):  # the leader keeps leading while it lives
                    for _ in range(20):
                        await next_round()
                assert rounds == 0 and runner.leading == {"singleton": False}
                os.kill(leader.pid, signal.SIGKILL)  # no resign: its session just dies
                await leader.wait()
                await until(lambda: rounds >= 3)
                assert runner.leading == {"singleton": True}
    finally:
        if leader.returncode is None:
            leader.kill()
            await leader.wait()


async def test_a_wake_up_starts_the_next_round_before_the_interval_and_a_stop_ends_the_wait(sqlite_url) -> None:
    rounds = 0
    bell = asyncio.Event()

    async def step(_now: datetime) -> None:
        nonlocal rounds
        rounds += 1

    async def wake() -> None:
        await bell.wait()
        bell.clear()

    async with open_store(sqlite_url) as store:
        # An hour's interval: only the wake-up can bring the second round.
        runner = ServiceRunner(store, [Service("follower", step, interval=3600, wake=wake)])
        async with runner:
            await until(lambda: rounds == 1)
            bell.set()
            await until(lambda: rounds == 2)
        # The runner stopped while waiting on wake() and its hour: the stop ended both.
        assert not runner.running and rounds == 2


async def test_a_wakeup_starts_the_next_round_at_once_and_none_is_lost(sqlite_url) -> None:
    from runlog.commands.runner import Wakeup

    rounds = 0
    in_round, release = asyncio.Event(), asyncio.Event()

    async def step(_now: datetime) -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            in_round.set()
            await release.wait()

    wakeup = Wakeup()
    async with open_store(sqlite_url) as store:
        runner = ServiceRunner(store, [Service("woken", step, interval=3600, wake=wakeup.wait)])
        runner.start()
        await until(lambda: rounds == 1, timeout=5)  # the first round runs at start; the next is an hour away
        wakeup()
        await asyncio.wait_for(in_round.wait(), 5)  # woken: round 2 runs now
        wakeup()  # while round 2 runs: kept, so round 3 follows it at once
        release.set()
        await until(lambda: rounds == 3, timeout=5)
        async with asyncio.timeout(5):  # the stop ends the hour's wait at once
            await runner.stop()
    assert rounds == 3
