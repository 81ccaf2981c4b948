"""The pre-aggregated run history (projections/run_history.py) answers exactly what the per-request
query answers: randomized flow and task runs seeded through a real server on each backend, then
both paths compared bucket by bucket over aligned windows, with the projection caught up, part
way behind (the rest folded in at read time) and rebuilt; `projections verify` agrees with it;
an unaligned window is not served by it; the answer's headers say which path and log position;
its checkpoint and lag are on /metrics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlog.api import keys
from runlog.api.queries import history as queries
from runlog.api.queries.run_filters import FLOW_RUN_QUERY, TASK_RUN_QUERY
from runlog.api.schemas import filters as f
from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.projections import run_history
from runlog.projections.catchup import catch_up
from runlog.projections.checkpoints import checkpoint
from runlog.projections.history import Window, window
from runlog.projections.tables import us
from runlog.projections.verify import verify

from ..servers import serve, until
from .conftest import START, TIME_BASED_SERVICES_OFF
from .test_metrics import scrape

DAY = datetime(2026, 3, 1, tzinfo=UTC)
NOW = START  # 12:00, the server's manual clock


def iso(moment: datetime) -> str:
    return moment.isoformat()


def state(kind: str, at: datetime, scheduled: datetime | None = None, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "timestamp": iso(at)}
    if scheduled is not None:
        body["state_details"] = {"scheduled_time": iso(scheduled)}
    if name is not None:
        body["name"] = name
    return body


def story(rng: random.Random) -> list[dict[str, Any]]:
    """One run's states: a random one of the shapes the history must count (all before NOW)."""
    expected = NOW + timedelta(minutes=rng.randrange(-600, 180), seconds=rng.randrange(60), microseconds=rng.randrange(10**6))
    created = min(expected, NOW) - timedelta(minutes=rng.randrange(1, 30))
    begin = min(expected + timedelta(seconds=rng.randrange(0, 300)), NOW - timedelta(seconds=30))
    shape = rng.choice(["scheduled", "late", "pending", "running", "completed", "failed", "crashed", "cancelled",
                        "retried", "paused", "completed_late"])
    scheduled = [state("SCHEDULED", created, scheduled=expected)]
    if shape == "scheduled":
        return scheduled
    if shape == "late":
        return [state("SCHEDULED", created, scheduled=expected, name="Late")]
    if shape == "cancelled":
        return [*scheduled, state("CANCELLED", max(created, begin - timedelta(seconds=20)))]
    if shape == "pending":
        return [*scheduled, state("PENDING", begin)]
    running = [*scheduled, state("PENDING", begin), state("RUNNING", begin + timedelta(seconds=1))]
    end = begin + timedelta(seconds=1 + rng.randrange(1, 25), microseconds=rng.randrange(10**6))
    if shape == "running":
        return running
    if shape == "paused":
        return [*running, state("PAUSED", end)]
    if shape == "retried":
        again = end + timedelta(seconds=2)
        return [*running, state("SCHEDULED", end, scheduled=again, name="AwaitingRetry"), state("RUNNING", again),
                state("COMPLETED", again + timedelta(seconds=3))]
    final = {"completed": "COMPLETED", "completed_late": "COMPLETED", "failed": "FAILED", "crashed": "CRASHED"}[shape]
    return [*running, state(final, end)]


async def post(server, path: str, body: Any, expect: int) -> Any:
    status, answer = await server.request("POST", path, json=body)
    assert status == expect, (path, body, status, answer)
    return answer


async def seed(server, rng: random.Random, runs: int) -> None:
    flow_id = (await post(server, "/flows/", {"name": "etl"}, 201))["id"]
    made: list[str] = []
    for number in range(runs):
        states = story(rng)
        run = await post(server, "/flow_runs/", {"flow_id": flow_id, "name": f"r{number}", "state": states[0]}, 201)
        for later in states[1:]:
            await post(server, f"/flow_runs/{run['id']}/set_state", {"state": later, "force": True}, 201)
        made.append(run["id"])
        if rng.random() < 0.3:
            task_states = story(rng)
            task = await post(server, "/task_runs/", {
                "task_key": f"t{number}", "dynamic_key": "0", "flow_run_id": run["id"], "state": task_states[0],
            }, 201)
            for later in task_states[1:]:
                await post(server, f"/task_runs/{task['id']}/set_state", {"state": later, "force": True}, 201)
    for run_id in rng.sample(made, runs // 10):
        status, _ = await server.request("DELETE", f"/flow_runs/{run_id}")
        assert status == 204


def windows() -> list[Window]:
    """Aligned windows at every grain (some with the last bucket's overhang)."""
    hour, minute = 3_600_000_000, 60_000_000
    six = us(DAY + timedelta(hours=2))
    return [
        window(six, us(NOW + timedelta(hours=3)), minute),  # type: ignore[arg-type]
        window(six, us(NOW + timedelta(hours=3, minutes=7)), 5 * minute),  # type: ignore[arg-type]
        window(us(DAY), us(DAY + timedelta(hours=23, minutes=30)), hour),  # type: ignore[arg-type]
        window(us(DAY - timedelta(days=2)), us(DAY + timedelta(days=2)), 24 * hour),  # type: ignore[arg-type]
        window(six + 15 * minute, us(NOW), 15 * minute),  # type: ignore[arg-type]
    ]


def assert_same(aggregated: list, queried: list, where: str) -> None:
    assert len(aggregated) == len(queried), where
    for index, (mine, theirs) in enumerate(zip(aggregated, queried, strict=True)):
        assert [(t.state_type, t.state_name, t.count_runs) for t in mine] == \
            [(t.state_type, t.state_name, t.count_runs) for t in theirs], (where, index)
        for a, b in zip(mine, theirs, strict=True):
            # Lateness is summed in whole microseconds on both paths; run time is a float sum
            # in the query (in whatever order the database adds) and whole microseconds here.
            assert a.sum_estimated_lateness == b.sum_estimated_lateness, (where, index, a, b)
            assert a.sum_estimated_run_time == pytest.approx(b.sum_estimated_run_time, rel=1e-12, abs=1e-6), \
                (where, index, a, b)


# "Now" at the server's clock (aligned to every grain but the day's) and later, mid-minute: the
# waiting runs due in now's own cell are then summed from their rows, the others from cells.
READ_AT = (NOW, NOW + timedelta(minutes=37, seconds=21, microseconds=123457))


async def compare_all(store, *, must_be_caught_up: bool = False) -> int:
    """Compare both paths over every window for flow and task runs; how many runs were seen."""
    seen = 0
    kinds = (
        ("flow_runs", "fr", FLOW_RUN_QUERY, f.FlowRunCountRequest()),
        ("task_runs", "tr", TASK_RUN_QUERY, f.TaskRunCountRequest()),
    )
    for table, alias, query, body in kinds:
        for now in READ_AT:
            for win in windows():
                aggregated = await queries.aggregated_history(store, table, win, now)
                queried = await queries.queried_history(store, table, alias, query, body, win, now)
                assert aggregated is not None and aggregated.source == "aggregate"
                assert aggregated.position == queried.position == await store.head()
                if must_be_caught_up:
                    assert await checkpoint(store, run_history.NAME) == await store.head()
                assert_same(aggregated.buckets, queried.buckets, f"{table} {win} at {now}")
                seen += sum(t.count_runs for bucket in queried.buckets for t in bucket)
    return seen


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url, **TIME_BASED_SERVICES_OFF}


async def test_aggregate_answers_equal_the_query_caught_up_behind_and_rebuilt(env, store_url, tmp_path):
    seed_value = random.randrange(10**6)
    rng = random.Random(seed_value)
    async with serve(env, clock=ManualClock(START)) as server:
        await seed(server, rng, 70)
        store = server.app[keys.STORE]
        await until(lambda: checkpoint_is_head(store))
        assert await compare_all(store) > 50, seed_value

    async with open_store(store_url) as store:
        # Rebuilt from nothing, stopped halfway: the rest of the log is folded in at read time.
        async with store.reading() as tx:
            await tx.execute("DELETE FROM run_history_cells")
            await tx.execute("DELETE FROM run_history_runs")
            await tx.execute("DELETE FROM projection_checkpoints WHERE name = 'run_history'")
        head = await store.head()
        projection = run_history.RunHistoryProjection(store)
        await catch_up(store, projection, upto=head // 2)
        assert await checkpoint(store, run_history.NAME) == head // 2
        await compare_all(store)
        # Further behind than it may fold at read time: no answer from it (the query answers).
        win, behind = windows()[0], head - head // 2
        assert await run_history.read_history(store, run_history.FLOW_RUN, win, 60_000_000, us(NOW),
                                              max_tail=behind - 1) is None
        assert await run_history.read_history(store, run_history.FLOW_RUN, win, 60_000_000, us(NOW),
                                              max_tail=behind) is not None
        await catch_up(store, projection)
        await compare_all(store, must_be_caught_up=True)

    result = await verify(store_url)
    checks = {c.table: c for c in result.tables}
    for table in ("run_history_cells", "run_history_runs"):
        assert checks[table].equal and checks[table].live > 0, (table, checks[table], seed_value)


async def checkpoint_is_head(store) -> bool:
    return await checkpoint(store, run_history.NAME) == await store.head()


async def test_unaligned_windows_are_not_served_by_the_aggregate(env):
    async with serve(env, clock=ManualClock(START)) as server:
        await seed(server, random.Random(7), 5)
        store = server.app[keys.STORE]
        minute = 60_000_000
        for win in (window(us(DAY) + 30_000_000, us(NOW), minute), window(us(DAY), us(NOW), 90_000_000)):  # type: ignore[arg-type]
            assert await queries.aggregated_history(store, "flow_runs", win, NOW) is None
            answer = await queries.flow_run_history(store, f.FlowRunCountRequest(), win, NOW)
            assert answer.source == "query"
        aligned = window(us(DAY), us(NOW), 5 * minute)  # type: ignore[arg-type]
        assert (await queries.flow_run_history(store, f.FlowRunCountRequest(), aligned, NOW)).source == "aggregate"


async def test_history_answers_say_their_log_position_and_source(env):
    async with serve(env, clock=ManualClock(START)) as server:
        await seed(server, random.Random(11), 5)
        store = server.app[keys.STORE]
        body = {"history_start": iso(DAY), "history_end": iso(NOW), "history_interval_seconds": 3600}
        async with server.session.post(server.base + "/flow_runs/history", json=body) as response:
            assert response.status == 200
            assert response.headers["X-Runlog-History-Source"] == "aggregate"
            assert int(response.headers["X-Runlog-Log-Position"]) == await store.head()
        filtered = {**body, "flow_runs": {"tags": {"all_": ["x"]}}}
        async with server.session.post(server.base + "/flow_runs/history", json=filtered) as response:
            assert response.status == 200
            assert response.headers["X-Runlog-History-Source"] == "query"
            assert int(response.headers["X-Runlog-Log-Position"]) == await store.head()


async def test_the_history_projection_reports_its_checkpoint_and_lag_in_metrics(env):
    async with serve(env, clock=ManualClock(START)) as server:
        await seed(server, random.Random(3), 5)
        store = server.app[keys.STORE]
        await until(lambda: checkpoint_is_head(store))
        samples = await scrape(server)
        labels = frozenset({("projection", run_history.NAME)})
        assert samples[("runlog_projection_checkpoint_position", labels)] == await store.head()
        assert samples[("runlog_projection_lag_events", labels)] == 0
