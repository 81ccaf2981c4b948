"""Flow run counts from flow_run_counts (migration 0025, api/queries/run_counts.py) answer what the
query over flow_runs answers, on both backends: randomized runs (flows, deployments, pools and
queues, tags, states) made through a real server, then every count filter the fast path takes
and a few it must leave to the query (which skips the flow check while no run lacks its flow)
compared with the plain query, again after state changes,
retagging, deletes of runs, a queue, a deployment and a flow; the table itself equals a count of
flow_runs by dimension at each step, and the migration's backfill of an existing database makes
the same rows the triggers made.
"""

from __future__ import annotations

import random
from collections import Counter
from uuid import uuid4
from typing import Any

import msgspec

from runlog.api.queries import run_counts
from runlog.api.queries.filtering import fetch_count
from runlog.api.queries.run_filters import FLOW_RUN_QUERY
from runlog.api.schemas import filters as f
from runlog.eventstore import NewEvent, migrate, migration_connection, open_store
from runlog.projections.registry import inline_projections
from runlog.schema import events as ev
from runlog.schema import streams

from ..servers import Server, serve
from .conftest import START, TIME_BASED_SERVICES_OFF

TAGS = ["red", "green", "blue", "gray"]
STATES = [
    ("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late"), ("PENDING", "Pending"), ("RUNNING", "Running"),
    ("COMPLETED", "Completed"), ("FAILED", "Failed"), ("CRASHED", "Crashed"), ("CANCELLED", "Cancelled"),
]


async def call(server: Server, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
    status, answer = await server.request(method, path, json=body)
    assert status in expect, (method, path, body, status, answer)
    return answer


class World:
    def __init__(self, server: Server, rng: random.Random) -> None:
        self.server, self.rng = server, rng
        self.flows: dict[str, str] = {}
        self.deployments: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.runs: list[str] = []

    async def seed(self, runs: int) -> None:
        for name in ("etl", "report", "idle"):
            self.flows[name] = (await call(self.server, "POST", "/flows/", {"name": name}))["id"]
        for name, flow in (("nightly", "etl"), ("hourly", "report")):
            body = {"name": name, "flow_id": self.flows[flow]}
            self.deployments[name] = (await call(self.server, "POST", "/deployments/", body))["id"]
        pool = await call(self.server, "POST", "/work_pools/", {"name": "p", "type": "process"})
        self.queues["default"] = pool["default_queue_id"]
        self.queues["fast"] = (await call(self.server, "POST", "/work_pools/p/queues", {"name": "fast"}))["id"]
        for index in range(runs):
            await self.make_run(index)

    async def make_run(self, index: int) -> None:
        rng = self.rng
        flow = rng.choice(["etl", "etl", "report"] if "report" in self.flows else ["etl"])
        body: dict[str, Any] = {"flow_id": self.flows[flow], "name": f"run-{index}"}
        # tags: none, some, or one given twice (a run's distinct tags are what counts)
        body["tags"] = rng.choice([[], rng.sample(TAGS, rng.randint(1, 3)), ["red", "red"]])
        if rng.random() < 0.5:
            body["deployment_id"] = self.deployments["nightly" if flow == "etl" else "hourly"]
        if rng.random() < 0.6:
            body["work_pool_name"] = "p"
            body["work_queue_name"] = rng.choice(["default", "fast"])
        if rng.random() < 0.9:
            kind, name = rng.choice(STATES)
            body["state"] = {"type": kind, "name": name}
        self.runs.append((await call(self.server, "POST", "/flow_runs/", body))["id"])

    async def change(self) -> None:
        """State changes, retagging and deletes of runs, a queue, a deployment and a flow."""
        rng = self.rng
        for run_id in rng.sample(self.runs, 12):
            kind, name = rng.choice(STATES)
            await call(self.server, "POST", f"/flow_runs/{run_id}/set_state",
                       {"state": {"type": kind, "name": name}, "force": True})
        for run_id in rng.sample(self.runs, 6):
            await call(self.server, "PATCH", f"/flow_runs/{run_id}", {"tags": rng.sample(TAGS, rng.randint(0, 2))})
        for run_id in rng.sample(self.runs, 5):
            await call(self.server, "DELETE", f"/flow_runs/{run_id}")
            self.runs.remove(run_id)
        await call(self.server, "DELETE", "/work_pools/p/queues/fast")
        await call(self.server, "DELETE", f"/deployments/{self.deployments['hourly']}")
        await call(self.server, "DELETE", f"/flows/{self.flows.pop('report')}")


def bodies(world: World) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(filters the counts answer, filters left to the query)."""
    etl, nightly, hourly = world.flows["etl"], world.deployments["nightly"], world.deployments["hourly"]
    report = world.flows.get("report", hourly)  # once deleted, an id that names no flow
    fast = [
        {},
        {"flow_runs": {}},
        {"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}},
        {"flow_runs": {"state": {"type": {"not_any_": ["COMPLETED", "SCHEDULED"]}}}},
        {"flow_runs": {"state": {"name": {"any_": ["Failed", "Crashed", "Late"]}}}},
        {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}, "name": {"any_": ["Late"]}}}},
        {"flow_runs": {"state": {"type": {"any_": ["FAILED"], "not_any_": ["FAILED"]}}}},  # dropped, as Prefect does
        {"flow_runs": {"tags": {"all_": ["red"]}}},
        {"flow_runs": {"tags": {"any_": ["blue"]}}},
        {"flow_runs": {"tags": {"all_": ["green", "green"]}, "state": {"type": {"any_": ["RUNNING", "FAILED"]}}}},
        {"flow_runs": {"tags": {"all_": []}}},
        {"flows": {"id": {"any_": [etl]}}},
        {"flows": {"name": {"any_": ["report", "idle"]}}, "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}},
        {"flows": {}},
        {"flow_runs": {"deployment_id": {"any_": [nightly, hourly]}}},
        {"flow_runs": {"deployment_id": {"is_null_": True}}},
        {"flow_runs": {"deployment_id": {"is_null_": False}, "state": {"name": {"any_": ["Running"]}}}},
        {"deployments": {"id": {"any_": [hourly]}}},
        {"deployments": {"name": {"any_": ["nightly"]}}, "flows": {"id": {"any_": [etl, report]}}},
        {"deployments": {}},
        {"work_pools": {"name": {"any_": ["p"]}}},
        {"work_pools": {}},
        {"work_pool_queues": {"name": {"any_": ["fast"]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}},
        {"work_pool_queues": {"id": {"any_": [world.queues["default"]]}}, "work_pools": {"name": {"any_": ["p"]}}},
        {"flow_runs": {"operator": "or_", "tags": {"any_": ["gray"]}}},
    ]
    slow = [
        {"flow_runs": {"tags": {"all_": ["red", "blue"]}}},
        {"flow_runs": {"tags": {"any_": ["red", "blue"]}}},
        {"flow_runs": {"tags": {"is_null_": True}}},
        {"flow_runs": {"tags": {"any_": []}}},
        {"flow_runs": {"tags": {"any_": ["red"]}, "deployment_id": {"any_": [nightly]}}},
        {"flow_runs": {"operator": "or_", "tags": {"any_": ["red"]}, "state": {"type": {"any_": ["FAILED"]}}}},
        {"flow_runs": {"name": {"like_": "run-1"}}},
        {"deployments": {"id": {"any_": [nightly]}}, "work_pools": {"name": {"any_": ["p"]}}},
        {"flow_runs": {"tags": {"any_": ["red"]}}, "work_pool_queues": {"name": {"any_": ["default"]}}},
        {"task_runs": {}},
        {"flow_runs": {"operator": "or_", "name": {}, "tags": {"any_": ["gray"]}}},  # TRUE OR ...: every run
    ]
    return fast, slow


async def assert_counts_agree(world: World, store_url: str) -> None:
    fast, slow = bodies(world)
    async with open_store(store_url, migrate=False) as store:
        for body in fast + slow:
            decoded = msgspec.convert(body, f.FlowRunCountRequest)
            assert (run_counts.plan(decoded) is not None) == (body in fast), body
            answered = await call(world.server, "POST", "/flow_runs/count", body, expect=(200,))
            async with store.reading() as tx:
                counted = await fetch_count(tx, "flow_runs fr", FLOW_RUN_QUERY.where(tx, decoded))
            assert answered == counted, body
            listed = await call(world.server, "POST", "/flow_runs/filter", body, expect=(200,))
            assert answered == len(listed), body  # under 200 runs: the whole list
        await assert_table_counts_runs(store)


async def assert_table_counts_runs(store) -> None:
    """flow_run_counts, zeros aside, is flow_runs counted per dimension, flow and state."""
    async with store.reading() as tx:
        runs = await tx.fetch("SELECT id, flow_id, state_type, state_name, deployment_id, work_queue_id FROM flow_runs")
        tags = await tx.fetch("SELECT run_id, tag FROM flow_run_tags")
        table = await tx.fetch("SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts WHERE n <> 0")
    expected: Counter[tuple[str, ...]] = Counter()
    by_id = {}
    for run_id, flow_id, state_type, state_name, deployment_id, queue_id in runs:
        state = (state_type or "", state_name or "")
        by_id[run_id] = (flow_id, *state)
        expected["run", "", flow_id, *state] += 1
        expected["deployment", deployment_id or "", flow_id, *state] += 1
        expected["queue", queue_id or "", flow_id, *state] += 1
    for run_id, tag in tags:
        if run_id in by_id:  # a tag row whose run is not (yet) there counts nowhere
            expected["tag", tag, *by_id[run_id]] += 1
    assert {tuple(row[:5]): int(row[5]) for row in table} == dict(expected)


async def runs_of_no_flow(store_url: str, runs: int) -> None:
    """Runs whose flow does not exist, appended around the API (as an old log may hold them)."""
    missing = uuid4()
    async with open_store(store_url, migrate=False, projections=inline_projections()) as store:
        for index in range(runs):
            run_id = uuid4()
            created = ev.FlowRunCreated(
                flow_run_id=run_id, flow_id=missing, name=f"orphan-{index}", tags=["red"], created=START,
            )
            await store.append(streams.flow_run(run_id), [NewEvent(type=ev.event_type(created), data=ev.encode(created), id=uuid4())])


async def orphans(store_url: str) -> int:
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        rows = await tx.fetch("SELECT COUNT(*) FROM flow_runs fr WHERE NOT EXISTS (SELECT 1 FROM flows f WHERE f.id = fr.flow_id)")
    return int(rows[0][0])


async def test_counts_from_the_count_table_equal_the_query_through_changes(env, clock, store_url):
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(12))
        await world.seed(60)
        assert await orphans(store_url) == 0  # the query's counts skip the flow check
        await assert_counts_agree(world, store_url)
        await world.change()
        await runs_of_no_flow(store_url, 3)
        assert await orphans(store_url) == 3  # now the query's counts make the check
        for index in range(60, 70):  # new runs after the deletes, some in the queue that is gone
            await world.make_run(index)
        await assert_counts_agree(world, store_url)


async def test_the_migration_counts_the_runs_already_stored(env, clock, store_url, backend):
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(3))
        await world.seed(40)
        await world.change()
    revision = next(m.revision for m in migrate.load_migrations(backend) if m.name == "flow_run_counts")
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        kept = sorted(tuple(r) for r in await tx.fetch("SELECT * FROM flow_run_counts WHERE n <> 0"))
    assert kept
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, revision - 1)
        await migrate.upgrade(conn, backend)
    async with open_store(store_url, migrate=False) as store:
        async with store.reading() as tx:
            rebuilt = sorted(tuple(r) for r in await tx.fetch("SELECT * FROM flow_run_counts"))
        assert rebuilt == kept
        await assert_table_counts_runs(store)


async def test_sqlite_tag_counts_follow_either_table_written_first(env, clock, store_url, backend):
    """SQLite counts a run's tags from flow_run_tags (migration flow_run_counts_tags_by_row):
    a tag row and its run's row written in either order, in one transaction, leave the table
    equal to flow_runs and flow_run_tags counted, after every statement."""
    if backend != "sqlite":
        return  # PostgreSQL's statement-level triggers count the views' tags (tested above)
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(5))
        await world.seed(12)
    a, b, c, d, e = world.runs[:5]
    copy = str(uuid4())
    steps = [
        # a tag added before the run's state changes, another removed after
        ("INSERT INTO flow_run_tags (run_id, tag) VALUES (?, 'new')", a),
        ("UPDATE flow_runs SET state_type = 'FAILED', state_name = 'Failed' WHERE id = ?", a),
        ("UPDATE flow_runs SET state_type = 'CRASHED', state_name = 'Crashed', deployment_id = NULL WHERE id = ?", b),
        ("INSERT INTO flow_run_tags (run_id, tag) VALUES (?, 'other')", b),
        ("DELETE FROM flow_run_tags WHERE run_id = ? AND tag = 'other'", b),
        # a run deleted after its tags, another before them
        ("DELETE FROM flow_run_tags WHERE run_id = ?", c),
        ("DELETE FROM flow_runs WHERE id = ?", c),
        ("DELETE FROM flow_runs WHERE id = ?", d),
        ("DELETE FROM flow_run_tags WHERE run_id = ?", d),
        # a new run whose tags come first, and a tag row renamed
        ("INSERT INTO flow_run_tags (run_id, tag) VALUES (?, 'early')", copy),
        ("CREATE TEMP TABLE copied AS SELECT * FROM flow_runs WHERE id = ?", e),
        ("UPDATE copied SET id = ?", copy),
        ("INSERT INTO flow_runs SELECT * FROM copied WHERE ? IS NOT NULL", copy),
        ("UPDATE flow_run_tags SET tag = 'renamed' WHERE run_id = ? AND tag = 'early'", copy),
    ]
    async with open_store(store_url, migrate=False) as store:
        for sql, run_id in steps:
            async def step(tx, sql=sql, run_id=run_id):
                await tx.execute(sql, run_id)
            await store.write_transaction(step)
            await assert_table_counts_runs(store)
        async with store.reading() as tx:
            tags = {tuple(r) for r in await tx.fetch("SELECT run_id, tag FROM flow_run_tags WHERE run_id IN (?, ?)", a, copy)}
        assert {(a, "new"), (copy, "renamed")} <= tags  # the steps did what they say
