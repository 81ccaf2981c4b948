"""Flow run counts from flow_run_counts (migration 0025, api/queries/run_counts.py) answer what the
query over flow_runs answers, on both backends: randomized runs (flows, deployments, pools and
queues, tags, states) made through a real server, then every count filter the fast path takes
and a few it must leave to the query (which skips the flow check while no run lacks its flow)
compared with the plain query, again after state changes,
retagging, deletes of runs, a queue, a deployment and a flow; the table itself equals a count of
flow_runs by dimension at each step, and the migration's backfill of an existing database makes
the same rows the runs projection kept. Randomized rounds of concurrent writes (so that group
commit batches several changes of one run and of many), retention's pruning and rebuilds of the
runs projection leave the table equal to flow_runs counted by GROUP BY after each round.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from uuid import uuid4
from typing import Any

import msgspec

from runlog.api.queries import run_counts
from runlog.api.queries.filtering import Dialect, fetch_count, fetch_page
from runlog.api.queries.run_filters import FLOW_RUN_ORDER, FLOW_RUN_QUERY
from runlog.api.schemas import filters as f
from runlog.commands.retention import apply_retention
from runlog.eventstore import NewEvent, migrate, migration_connection, open_store, postgres
from runlog.projections.rebuild import rebuild
from runlog.projections.registry import inline_projections
from runlog.projections.runs_writer import PAIRED_TAGS_AT_MOST
from runlog.projections.verify import verify
from runlog.schema import events as ev
from runlog.schema import streams

from ..servers import Server, serve
from .conftest import START, TIME_BASED_SERVICES_OFF

TAGS = ["red", "green", "blue", "gray"]
# A run with more distinct tags than PAIRED_TAGS_AT_MOST (8) is in no pair's rows: these give
# red and green unpaired runs (a count of those two is left to the query) but not blue or gray
# (a pair of red and blue is still answered from its rows, exactly).
MANY_TAGS = ["red", "green", *(f"t{n}" for n in range(8))]
STATES = [
    ("SCHEDULED", "Scheduled"), ("SCHEDULED", "Late"), ("PENDING", "Pending"), ("RUNNING", "Running"),
    ("COMPLETED", "Completed"), ("FAILED", "Failed"), ("CRASHED", "Crashed"), ("CANCELLED", "Cancelled"),
]


async def call(server: Server, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
    status, answer = await server.request(method, path, json=body)
    assert status in expect, (method, path, body, status, answer)
    return answer


class World:
    def __init__(self, server: Server, rng: random.Random, many_tags: bool = False) -> None:
        self.server, self.rng = server, rng
        self.tag_sets = [[], None, ["red", "red"], *([MANY_TAGS] if many_tags else [])]  # None: 1-3 of TAGS
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
        tags = rng.choice(self.tag_sets)
        body["tags"] = rng.sample(TAGS, rng.randint(1, 3)) if tags is None else tags
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
            many = MANY_TAGS in self.tag_sets and rng.random() < 0.3
            tags = rng.sample(MANY_TAGS, rng.randint(8, 10)) if many else rng.sample(TAGS, rng.randint(0, 2))
            await call(self.server, "PATCH", f"/flow_runs/{run_id}", {"tags": tags})
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
        # the runs without a deployment: the 'run' rows less the 'deployment' rows (0029)
        {"flow_runs": {"deployment_id": {"is_null_": True}, "state": {"type": {"any_": ["FAILED", "SCHEDULED"]}}}},
        {"flow_runs": {"deployment_id": {"is_null_": True}, "state": {"name": {"any_": ["Late"]}}},
         "flows": {"name": {"any_": ["etl", "report"]}}},
        {"flow_runs": {"operator": "or_", "deployment_id": {"operator": "or_", "is_null_": True}}},
        {"flow_runs": {"deployment_id": {"is_null_": False}, "state": {"name": {"any_": ["Running"]}}}},
        {"deployments": {"id": {"any_": [hourly]}}},
        {"deployments": {"name": {"any_": ["nightly"]}}, "flows": {"id": {"any_": [etl, report]}}},
        {"deployments": {}},
        {"work_pools": {"name": {"any_": ["p"]}}},
        {"work_pools": {}},
        {"work_pool_queues": {"name": {"any_": ["fast"]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}},
        {"work_pool_queues": {"id": {"any_": [world.queues["default"]]}}, "work_pools": {"name": {"any_": ["p"]}}},
        {"flow_runs": {"operator": "or_", "tags": {"any_": ["gray"]}}},
        # two tags: the pair's rows (migration 0032), and for any_ each tag's less the pair's
        {"flow_runs": {"tags": {"all_": ["red", "blue"]}}},
        {"flow_runs": {"tags": {"all_": ["blue", "red", "blue"]}}},
        {"flow_runs": {"tags": {"any_": ["red", "blue"]}}},
        {"flow_runs": {"tags": {"any_": ["gray", "none-has-it"]}}},
        {"flow_runs": {"tags": {"all_": ["green", "gray"]}, "state": {"type": {"any_": ["RUNNING", "FAILED"]}}}},
        {"flow_runs": {"tags": {"any_": ["green", "red"]}, "state": {"name": {"any_": ["Late", "Completed"]}}},
         "flows": {"id": {"any_": [etl]}}},
    ]
    slow = [
        {"flow_runs": {"tags": {"all_": ["red", "blue", "green"]}}},
        {"flow_runs": {"tags": {"any_": ["red", "blue", "gray"]}}},
        {"flow_runs": {"tags": {"all_": ["red"], "any_": ["blue"]}}},
        {"flow_runs": {"tags": {"all_": ["red", "blue\x1fgreen"]}}},  # a tag holding the pairs' separator
        {"flow_runs": {"tags": {"all_": ["red", "blue"]}, "deployment_id": {"any_": [nightly]}}},
        {"flow_runs": {"tags": {"is_null_": True}}},
        {"flow_runs": {"tags": {"any_": []}}},
        {"flow_runs": {"tags": {"any_": ["red"]}, "deployment_id": {"any_": [nightly]}}},
        {"flow_runs": {"operator": "or_", "tags": {"any_": ["red"]}, "state": {"type": {"any_": ["FAILED"]}}}},
        {"flow_runs": {"name": {"like_": "run-1"}}},
        {"deployments": {"id": {"any_": [nightly]}}, "work_pools": {"name": {"any_": ["p"]}}},
        {"flow_runs": {"tags": {"any_": ["red"]}}, "work_pool_queues": {"name": {"any_": ["default"]}}},
        {"task_runs": {}},
        {"flow_runs": {"deployment_id": {"is_null_": True, "any_": [nightly]}}},  # none
        {"flow_runs": {"deployment_id": {"operator": "or_", "is_null_": True, "any_": [nightly]}}},
        {"flow_runs": {"deployment_id": {"is_null_": True}}, "deployments": {}},
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


def counts_sql(dialect: str) -> str:
    """The counts, zeros aside: flow_run_counts' rows, and on PostgreSQL each summed with its
    deltas not yet folded into it (migration 0034)."""
    if dialect == "postgres":
        return ("SELECT dim, key, flow_id, state_type, state_name, CAST(sum(n) AS bigint) FROM flow_run_counts_totals "
                "GROUP BY dim, key, flow_id, state_type, state_name HAVING sum(n) <> 0")
    return "SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts WHERE n <> 0"


async def assert_table_counts_runs(store) -> None:
    """flow_run_counts, zeros aside, is flow_runs counted per dimension, flow and state."""
    async with store.reading() as tx:
        runs = await tx.fetch("SELECT id, flow_id, state_type, state_name, deployment_id, work_queue_id FROM flow_runs")
        tags = await tx.fetch("SELECT run_id, tag FROM flow_run_tags")
        table = await tx.fetch(counts_sql(tx.dialect))
    expected: Counter[tuple[str, ...]] = Counter()
    by_id = {}
    for run_id, flow_id, state_type, state_name, deployment_id, queue_id in runs:
        state = (state_type or "", state_name or "")
        by_id[run_id] = (flow_id, *state)
        expected["run", "", flow_id, *state] += 1
        if deployment_id is not None:  # a run without one is under 'run' only (migration 0029)
            expected["deployment", deployment_id, flow_id, *state] += 1
        if queue_id is not None:
            expected["queue", queue_id, flow_id, *state] += 1
    tags_of: dict[str, list[str]] = {}
    for run_id, tag in tags:
        if run_id in by_id:  # a tag row whose run is not (yet) there counts nowhere
            expected["tag", tag, *by_id[run_id]] += 1
            tags_of.setdefault(run_id, []).append(tag)
    for run_id, run_tags in tags_of.items():  # each pair of its distinct tags (migration 0032)
        if len(run_tags) > PAIRED_TAGS_AT_MOST:  # or, with too many, each tag unpaired
            for tag in run_tags:
                expected["tag_unpaired", tag, *by_id[run_id]] += 1
            continue
        ordered = sorted(run_tags)
        for i, first in enumerate(ordered):
            for second in ordered[i + 1:]:
                expected["tag_pair", f"{first}\x1f{second}", *by_id[run_id]] += 1
    assert {tuple(row[:5]): int(row[5]) for row in table} == dict(expected)


# flow_runs counted by GROUP BY, as migration 0025 first filled the table (a run's distinct tags
# are its flow_run_tags rows), without the runs of no deployment or queue (0029).
SQL_GROUPED = """
SELECT 'run', '', flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs GROUP BY 3, 4, 5
UNION ALL
SELECT 'deployment', deployment_id, flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE deployment_id IS NOT NULL GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'queue', work_queue_id, flow_id, COALESCE(state_type, ''), COALESCE(state_name, ''), count(*)
FROM flow_runs WHERE work_queue_id IS NOT NULL GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'tag', t.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
FROM flow_run_tags t JOIN flow_runs r ON r.id = t.run_id GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'tag_pair', a.tag || '{sep}' || b.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
FROM flow_run_tags a JOIN flow_run_tags b ON b.run_id = a.run_id AND b.tag {gt} a.tag
JOIN flow_runs r ON r.id = a.run_id
WHERE a.run_id NOT IN (SELECT run_id FROM flow_run_tags GROUP BY run_id HAVING count(*) > 8) GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'tag_unpaired', t.tag, r.flow_id, COALESCE(r.state_type, ''), COALESCE(r.state_name, ''), count(*)
FROM flow_run_tags t JOIN flow_runs r ON r.id = t.run_id
WHERE t.run_id IN (SELECT run_id FROM flow_run_tags GROUP BY run_id HAVING count(*) > 8) GROUP BY 2, 3, 4, 5
"""


async def assert_table_is_grouped_runs(store_url: str) -> None:
    """flow_run_counts, zeros aside, equals SQL_GROUPED, read in one snapshot; and the Python
    count of assert_table_counts_runs agrees."""
    async with open_store(store_url, migrate=False) as store:
        async with store.reading() as tx:
            if tx.dialect == "postgres":
                await tx.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            else:
                await tx.execute("BEGIN")
            try:
                # The pairs' keys: the separator bound in the text, the order of code points.
                gt = '> a.tag' if tx.dialect == "sqlite" else 'COLLATE "C" > a.tag COLLATE "C"'
                grouped_sql = SQL_GROUPED.replace("{sep}", "\x1f").replace("{gt} a.tag", gt)
                grouped = {tuple(row[:5]): int(row[5]) for row in await tx.fetch(grouped_sql)}
                table = {tuple(row[:5]): int(row[5]) for row in await tx.fetch(counts_sql(tx.dialect))}
            finally:
                await tx.execute("ROLLBACK")
        assert table == grouped
        await assert_table_counts_runs(store)


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
        world = World(server, random.Random(12), many_tags=True)
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
        kept = sorted(tuple(r) for r in await tx.fetch(counts_sql(tx.dialect)))
    assert kept
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, revision - 1)
        await migrate.upgrade(conn, backend)
    async with open_store(store_url, migrate=False) as store:
        async with store.reading() as tx:
            rebuilt = sorted(tuple(r) for r in await tx.fetch("SELECT * FROM flow_run_counts"))
        assert rebuilt == kept
        await assert_table_counts_runs(store)


async def test_migration_0029_drops_the_rows_of_no_deployment_or_queue_and_its_down_restores_them(
    env, clock, store_url, backend
):
    """Before 0029 a run without a deployment (or queue) was counted under key ''; 0029's down
    counts them again from flow_runs, its up drops them, and the counts still agree."""
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(29), many_tags=True)
        await world.seed(40)
        await world.change()
    revision = next(m.revision for m in migrate.load_migrations(backend) if m.name == "flow_run_counts_without_empty_keys")
    select = "SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts WHERE n <> 0"
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        kept = {tuple(r[:5]): int(r[5]) for r in await tx.fetch(counts_sql(tx.dialect))}
        runs = await tx.fetch("SELECT flow_id, state_type, state_name, deployment_id, work_queue_id FROM flow_runs")
    no_key: Counter[tuple[str, ...]] = Counter()
    for flow_id, state_type, state_name, deployment_id, queue_id in runs:
        for dim, key in (("deployment", deployment_id), ("queue", queue_id)):
            if key is None:
                no_key[dim, "", flow_id, state_type or "", state_name or ""] += 1
    assert no_key and not kept.keys() & no_key.keys()
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, revision - 1)
        inner = conn._conn  # the store refuses a schema behind its code: read on the driver's
        rows = await (inner.execute_fetchall(select) if backend == "sqlite" else inner.fetch(select))
    before_pairs = {key: n for key, n in kept.items() if key[0] not in ("tag_pair", "tag_unpaired")}  # 0032's down dropped them
    assert {tuple(r[:5]): int(r[5]) for r in rows} == {**before_pairs, **no_key}
    async with migration_connection(store_url) as conn:
        await migrate.upgrade(conn, backend)
    async with open_store(store_url, migrate=False) as store:
        async with store.reading() as tx:
            assert {tuple(r[:5]): int(r[5]) for r in await tx.fetch(select)} == kept
        await assert_table_counts_runs(store)


async def count_deltas(store_url: str) -> int:
    """How many amounts are in flow_run_count_deltas, not yet folded (PostgreSQL; SQLite: 0)."""
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        if tx.dialect != "postgres":
            return 0
        return int((await tx.fetch("SELECT count(*) FROM flow_run_count_deltas"))[0][0])


async def test_the_count_table_equals_flow_runs_grouped_through_randomized_writes(env, clock, store_url, backend):
    """Rounds of randomly chosen writes, many at once so that one group-commit batch holds
    several changes of one run (deltas that cancel) and of many runs: runs created, moved between
    states, retagged, deleted; workers' heartbeats pruned by retention; the runs projection
    rebuilt beside the live tables while the server serves. After each round flow_run_counts
    equals flow_runs grouped, and at the end `projections verify` finds no difference."""
    rng = random.Random(2028)
    deltas_seen = False
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, rng, many_tags=True)
        await world.seed(30)
        await assert_table_is_grouped_runs(store_url)
        made = 30
        seen: set[str] = set()
        for _ in range(8):
            kinds = rng.sample(["create", "move", "move_one", "retag", "delete", "prune", "rebuild"], 4)
            seen.update(kinds)
            writes = []
            busy: set[str] = set()  # runs written this round: a delete takes others (no 404s)
            for kind in kinds:
                if kind == "create":
                    writes += [world.make_run(made + index) for index in range(rng.randint(1, 8))]
                    made += 8
                elif kind == "move":
                    for run_id in rng.sample(world.runs, min(10, len(world.runs))):
                        busy.add(run_id)
                        state_type, name = rng.choice(STATES)
                        writes.append(call(server, "POST", f"/flow_runs/{run_id}/set_state",
                                           {"state": {"type": state_type, "name": name}, "force": True}))
                elif kind == "move_one":
                    # one run moved several times at once: the batch's net change of its counts
                    run_id = rng.choice(world.runs)
                    busy.add(run_id)
                    for state_type, name in rng.sample(STATES, 4):
                        writes.append(call(server, "POST", f"/flow_runs/{run_id}/set_state",
                                           {"state": {"type": state_type, "name": name}, "force": True}))
                elif kind == "retag":
                    for run_id in rng.sample(world.runs, min(5, len(world.runs))):
                        busy.add(run_id)
                        tags = rng.sample(TAGS, rng.randint(0, 3))
                        writes.append(call(server, "PATCH", f"/flow_runs/{run_id}", {"tags": tags}))
                elif kind == "delete":
                    for run_id in rng.sample([r for r in world.runs if r not in busy], 3):
                        world.runs.remove(run_id)
                        writes.append(call(server, "DELETE", f"/flow_runs/{run_id}"))
                elif kind == "prune":
                    for name in ("w1", "w2"):
                        for _ in range(3):
                            await call(server, "POST", "/work_pools/p/workers/heartbeat", {"name": name})
                    async with open_store(store_url, migrate=False) as store:
                        pruned = await apply_retention(
                            store, clock() + timedelta(days=2), logs_max_age=None, heartbeats_max_age=3600)
                    assert pruned.events > 0
                else:
                    async with open_store(store_url, migrate=False, projections=inline_projections()) as store:
                        done, *_ = await asyncio.gather(rebuild(store, ["runs"]), *writes)
                        writes = []
                    assert done and done[0].name == "runs"
            if rng.random() < 0.5:
                # On PostgreSQL the counts' deltas folded into their rows beside the writes
                # (besides the server's own fold every second); elsewhere nothing.
                async with open_store(store_url, migrate=False, projections=inline_projections()) as store:
                    await asyncio.gather(store.compact_counts(), *writes)
            else:
                await asyncio.gather(*writes)
            deltas_seen = deltas_seen or await count_deltas(store_url) > 0
            await assert_table_is_grouped_runs(store_url)
        assert len(seen) == 7  # every kind of write had its turn
        assert deltas_seen == (backend == "postgres")  # the sums over rows and deltas were tested
    result = await verify(store_url)
    assert result.equal, [t for t in result.tables if not t.equal]


async def test_postgres_appends_count_deltas_that_a_fold_moves_into_the_rows(env, clock, store_url, backend, monkeypatch):
    """On PostgreSQL a batch appends its amounts to flow_run_count_deltas (migration 0034) and
    leaves the rows alone; the counts read the rows and the deltas summed, before and after a
    fold moves the deltas into the rows (compact_counts), which leaves none (and keeps the
    deltas' pages); and 0034's down
    folds the deltas left into the rows. SQLite adds to the rows, and its fold does nothing."""
    monkeypatch.setattr(postgres, "COMPACT_SECONDS", 1e9)  # no fold but this test's
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(34), many_tags=True)
        async with open_store(store_url, migrate=False, projections=inline_projections()) as store:
            await store.compact_counts()  # nothing to fold yet
            await world.seed(30)
            await store.compact_counts()
            async with store.reading() as tx:
                rows = sorted(tuple(r) for r in await tx.fetch(counts_sql(tx.dialect)))
            assert await count_deltas(store_url) == 0
            await world.change()
            await asyncio.gather(*(world.make_run(index) for index in range(30, 40)))
            await assert_counts_agree(world, store_url)
            if backend == "postgres":
                async with store.reading() as tx:
                    # Every state change since the fold went to the deltas: rows unchanged.
                    assert await count_deltas(store_url) > 0
                    assert sorted(tuple(r) for r in await tx.fetch(
                        "SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts WHERE n <> 0")) == rows
            await store.compact_counts()
            assert await count_deltas(store_url) == 0
            if backend == "postgres":
                async with store.reading() as tx:
                    # The emptied deltas keep their pages for the next appends (not truncated).
                    assert (await tx.fetch("SELECT pg_relation_size('flow_run_count_deltas')"))[0][0] > 0
            await assert_counts_agree(world, store_url)
            await asyncio.gather(*(world.make_run(index) for index in range(40, 45)))
            async with store.reading() as tx:
                kept = sorted(tuple(r) for r in await tx.fetch(counts_sql(tx.dialect)))
    if backend == "postgres":
        assert await count_deltas(store_url) > 0
    revision = next(m.revision for m in migrate.load_migrations(backend) if m.name == "flow_run_count_deltas")
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, revision - 1)
        inner = conn._conn  # the store refuses a schema behind its code: read on the driver's
        select = "SELECT dim, key, flow_id, state_type, state_name, n FROM flow_run_counts WHERE n <> 0"
        rows = await (inner.execute_fetchall(select) if backend == "sqlite" else inner.fetch(select))
        assert sorted(tuple(r) for r in rows) == kept
        await migrate.upgrade(conn, backend)
    async with open_store(store_url, migrate=False) as store:
        await assert_table_counts_runs(store)


# -- pages filtered by tags alone: read by probing each run's tags or from the tags' runs ----------

TAG_PAGES = [
    {"flow_runs": {"tags": {"all_": ["red"]}}},
    {"flow_runs": {"tags": {"all_": ["red", "blue", "red"]}}},
    {"flow_runs": {"tags": {"any_": ["green", "gray"]}}},
    {"flow_runs": {"tags": {"all_": ["none-has-it"]}}},
    {"flow_runs": {"tags": {"any_": ["none-has-it", "red"]}}},
]


async def page_ids(tx, d, body: dict[str, Any], sort: str, limit: int, offset: int) -> list[str]:
    decoded = msgspec.convert(body, f.FlowRunFilterRequest)
    rows = await fetch_page(
        tx, "flow_runs fr", "fr.id", FLOW_RUN_QUERY.where(d, decoded), FLOW_RUN_ORDER[sort], limit, offset,
    )
    return [row[0] for row in rows]


async def assert_pages_agree(server: Server, tx, shaped, bodies: list[dict[str, Any]], sorts: tuple[str, ...]) -> None:
    """Each body's pages read as ``shaped`` reads them equal the plain query's, and so do
    /filter's and /paginate's (page 2 of 3 a page, and the count of them all)."""
    for body in bodies:
        for sort in sorts:
            for limit, offset in ((2, 0), (3, 4), (200, 0)):
                read = await page_ids(tx, tx, body, sort, limit, offset)
                assert await page_ids(tx, shaped, body, sort, limit, offset) == read, (body, sort)
                listed = await call(server, "POST", "/flow_runs/filter",
                                    {**body, "sort": sort, "limit": limit, "offset": offset}, expect=(200,))
                assert [run["id"] for run in listed] == read, (body, sort, limit, offset)
            paged = await call(server, "POST", "/flow_runs/paginate",
                               {**body, "sort": sort, "limit": 3, "page": 2}, expect=(200,))
            assert [run["id"] for run in paged["results"]] == await page_ids(tx, tx, body, sort, 3, 3)
            assert paged["count"] == len(await page_ids(tx, tx, body, sort, 200, 0)), (body, sort)


async def test_a_page_by_tags_is_the_same_probed_per_run_or_read_from_the_tags_runs(env, clock, store_url):
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(5))
        await world.seed(60)
        await world.change()  # retagged and deleted runs: their tag rows must follow
        async with open_store(store_url, migrate=False) as store, store.reading() as tx:
            probed = Dialect(tx.dialect, probe_tags=True)
            sorts = ("ID_DESC", "EXPECTED_START_TIME_DESC", "START_TIME_DESC", "NAME_ASC", "NAME_DESC")
            await assert_pages_agree(server, tx, probed, TAG_PAGES, sorts)
            assert await page_ids(tx, tx, TAG_PAGES[0], "ID_DESC", 200, 0)  # the tags are there at all


async def test_sqlite_probes_the_tags_of_a_page_only_when_the_walk_is_shorter(env, clock, store_url):
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(5))
        await world.seed(60)
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        async def probes(body: dict[str, Any], sort: str, limit: int | None, offset: int = 0) -> bool:
            shaped = await run_counts.page_shape(tx, msgspec.convert(body, f.FlowRunFilterRequest), sort, limit, offset)
            return isinstance(shaped, Dialect) and shaped.probe_tags

        red = {"flow_runs": {"tags": {"all_": ["red"]}}}
        # A walk of about 3 runs per match against the tag's ~25 runs: probed on SQLite, where
        # its statistics cannot tell; PostgreSQL chooses from its own and is left to.
        assert await probes(red, "EXPECTED_START_TIME_DESC", 2) == (tx.dialect == "sqlite")
        assert not await probes(red, "EXPECTED_START_TIME_DESC", 200)  # the page is longer than the tag
        assert not await probes(red, "EXPECTED_START_TIME_DESC", 2, offset=40)
        assert not await probes(red, "EXPECTED_START_TIME_DESC", None)
        assert not await probes(red, "NAME_DESC", 2)  # no index gives that order: nothing to walk
        assert not await probes(red, "ID_DESC", 2)  # ids sorted from the tag's index: cheaper
        assert not await probes({"flow_runs": {"tags": {"all_": ["red", "none-has-it"]}}}, "ID_DESC", 2)
        assert not await probes({**red, "flows": {"name": {"any_": ["etl"]}}}, "ID_DESC", 2)
        assert not await probes({"flow_runs": {"tags": {"all_": ["red"]}, "state": {"type": {"any_": ["FAILED"]}}}}, "ID_DESC", 2)
        assert await probes({"flow_runs": {"tags": {"any_": ["red", "gray"]}}}, "NAME_ASC", 2) == (tx.dialect == "sqlite")


def test_the_walk_is_shorter_when_its_runs_per_match_times_the_page_are_fewer_than_the_tags_runs():
    # rows * total / matching <= 2 * runs read from the tag(s), a probe costing half a read
    assert run_counts.walk_is_shorter("all_", [210_000], 1_000_000, 200)       # ~950 walked vs 210,000
    assert run_counts.walk_is_shorter("all_", [20_000], 1_000_000, 200)        # 10,000 vs 20,000
    assert run_counts.walk_is_shorter("all_", [15_000], 1_000_000, 200)        # 13,300 vs 15,000
    assert not run_counts.walk_is_shorter("all_", [9_000], 1_000_000, 200)     # 22,200 vs 9,000
    assert not run_counts.walk_is_shorter("all_", [5_000], 1_000_000, 200)     # 40,000 vs 5,000
    assert run_counts.walk_is_shorter("all_", [210_000, 150_000], 1_000_000, 200)  # ~6,300 vs 150,000
    assert not run_counts.walk_is_shorter("all_", [210_000, 0], 1_000_000, 200)  # nothing matches
    assert run_counts.walk_is_shorter("any_", [3_000, 4_000], 10_000, 200)     # 286 vs 7,000
    assert not run_counts.walk_is_shorter("any_", [10, 20], 1_000_000, 200)
    assert not run_counts.walk_is_shorter("any_", [0], 0, 200)
    # ID_DESC sorts the tag's run ids from its index alone, a run read costing a tenth of a probe
    assert run_counts.walk_is_shorter("all_", [210_000], 1_000_000, 200, 0.1)   # ~950 vs 21,000
    assert not run_counts.walk_is_shorter("all_", [20_000], 1_000_000, 200, 0.1)  # 10,000 vs 2,000


# -- pages of filters the counts answer: read walking the sort's index or through a condition's --


async def test_a_page_walking_the_sorts_index_is_the_page_read_through_the_conditions(env, clock, store_url):
    """Dialect.walk (chosen on SQLite from the exact count, run_counts.page_shape) writes the
    run's flow, state, deployment and queue conditions so that no index of theirs is read: the
    pages are the same, after state changes, retagging and deletes, over HTTP too."""
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(7))
        await world.seed(60)
        await world.change()
        fast, _slow = bodies(world)
        async with open_store(store_url, migrate=False) as store, store.reading() as tx:
            walked = Dialect(tx.dialect, probe_tags=True, walk=True)
            await assert_pages_agree(server, tx, walked, fast, ("ID_DESC", "EXPECTED_START_TIME_DESC", "START_TIME_DESC", "NAME_ASC"))


async def test_sqlite_walks_the_sorts_index_only_when_the_exact_count_says_it_is_shorter(env, clock, store_url):
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(5))
        await world.seed(60)
    etl = world.flows["etl"]
    async with open_store(store_url, migrate=False) as store, store.reading() as tx:
        async def walks(body: dict[str, Any], sort: str, limit: int | None, offset: int = 0) -> bool:
            shaped = await run_counts.page_shape(tx, msgspec.convert(body, f.FlowRunFilterRequest), sort, limit, offset)
            return isinstance(shaped, Dialect) and shaped.walk

        sqlite = tx.dialect == "sqlite"
        by_flow = {"flows": {"id": {"any_": [etl]}}}  # about two thirds of the runs
        # PostgreSQL too, for a flow or a pool: its estimate of a subquery's runs is the average.
        assert await walks(by_flow, "EXPECTED_START_TIME_DESC", 2)
        assert await walks(by_flow, "ID_DESC", 2)
        assert await walks({**by_flow, "flow_runs": {"tags": {"any_": ["red"]}}}, "NAME_ASC", 2)
        assert await walks({"work_pools": {"name": {"any_": ["p"]}}}, "NAME_ASC", 2)
        assert await walks({"flow_runs": {"state": {"type": {"any_": ["FAILED", "COMPLETED", "SCHEDULED"]}}}},
                           "NAME_ASC", 2) == sqlite
        assert not await walks(by_flow, "EXPECTED_START_TIME_DESC", 200)  # the page is longer than the flow's runs
        assert not await walks(by_flow, "EXPECTED_START_TIME_DESC", None)
        assert not await walks(by_flow, "NAME_DESC", 2)  # no index gives that order
        assert not await walks({"flows": {"name": {"any_": ["no-such-flow"]}}}, "ID_DESC", 2)  # nothing matches
        assert not await walks({}, "ID_DESC", 2)  # nothing but the sort: written as it is
        assert not await walks({"flow_runs": {"name": {"like_": "run"}}}, "ID_DESC", 2)  # the counts cannot say


TIME_PAGES = [
    {"flow_runs": {"expected_start_time": {"after_": (START - timedelta(days=1)).isoformat()}}},
    {"flow_runs": {"start_time": {"after_": (START - timedelta(days=1)).isoformat(),
                                  "before_": (START + timedelta(days=1)).isoformat()}}},
    {"flow_runs": {"expected_start_time": {"before_": (START + timedelta(days=1)).isoformat()},
                   "state": {"type": {"any_": ["FAILED", "COMPLETED"]}}}},
]


async def test_a_time_range_sorted_by_the_other_time_is_read_and_sorted_with_the_same_page(env, clock, store_url):
    """Dialect.sorted_read (a range of one time in the other's sort, run_counts.page_shape, both
    backends): the same pages as the sort's index walked, over HTTP too."""
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(11))
        await world.seed(40)
        await world.change()
        async with open_store(store_url, migrate=False) as store, store.reading() as tx:
            for body in TIME_PAGES:
                decoded = msgspec.convert(body, f.FlowRunFilterRequest)
                for sort in ("START_TIME_DESC", "START_TIME_ASC", "EXPECTED_START_TIME_DESC", "EXPECTED_START_TIME_ASC"):
                    shaped = await run_counts.page_shape(tx, decoded, sort, 3, 0)
                    other = ("start_time" in body["flow_runs"]) == sort.startswith("EXPECTED")
                    assert isinstance(shaped, Dialect) and shaped.sorted_read if other else shaped is tx, (body, sort)
                    await assert_pages_agree(server, tx, shaped, [body], (sort,))
            assert await page_ids(tx, tx, TIME_PAGES[0], "ID_DESC", 200, 0)  # the range holds runs


async def test_a_flows_runs_in_an_expected_start_range_are_counted_alike_from_its_index_or_the_table(
    env, clock, store_url, monkeypatch,
):
    """run_counts._flow_in_range (SQLite; migration 0038): a count of some flows' runs (and
    states) in an expected start range, read from flow_runs_flow_scheduled alone when the count
    rows say the flows' runs are few enough, else over flow_runs, equals the plain query's, at
    the range's edges (both bounds are inclusive) and after runs moved between states; with the
    bound below any count the table is read, with it high the index; and so are its pages. PostgreSQL answers through its own plan."""
    async with serve({**TIME_BASED_SERVICES_OFF, **env}, clock=clock) as server:
        world = World(server, random.Random(13))
        await world.seed(0)
        rng = random.Random(13)
        hours = [START + timedelta(hours=h) for h in range(12)]
        runs = []
        for index in range(48):
            flow = world.flows[rng.choice(["etl", "etl", "report"])]
            state = {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": rng.choice(hours).isoformat()}}
            runs.append((await call(server, "POST", "/flow_runs/", {"flow_id": flow, "name": f"r-{index}", "state": state}))["id"])
        etl = world.flows["etl"]

        def within(after: int, before: int, **more: Any) -> dict[str, Any]:
            times = {"after_": hours[after].isoformat(), "before_": hours[before].isoformat()}
            return {"flows": {"id": {"any_": [etl]}}, "flow_runs": {"expected_start_time": times, **more}}

        asked = [
            within(2, 5), within(0, 11), within(3, 3), within(5, 2),
            within(1, 9, state={"type": {"any_": ["COMPLETED", "FAILED"]}}),
            within(1, 9, state={"type": {"not_any_": ["SCHEDULED"]}}),
            {"flows": {"name": {"any_": ["etl", "report"]}},
             "flow_runs": {"expected_start_time": {"after_": hours[4].isoformat()}}},
            # not this path: the state's name is not in the index, a tag has its own rows
            within(1, 9, state={"name": {"any_": ["Completed"]}}),
            within(1, 9, tags={"all_": ["red"]}),
        ]

        async def assert_agree() -> None:
            async with open_store(store_url, migrate=False) as store, store.reading() as tx:
                for body in asked:
                    decoded = msgspec.convert(body, f.FlowRunCountRequest)
                    counted = await fetch_count(tx, "flow_runs fr", FLOW_RUN_QUERY.where(tx, decoded))
                    assert await call(server, "POST", "/flow_runs/count", body, expect=(200,)) == counted, body
                    covered = run_counts._flow_in_range(tx, decoded)
                    assert (covered is not None) == (tx.dialect == "sqlite" and "tags" not in body["flow_runs"]
                                                     and "name" not in body["flow_runs"].get("state", {})), body
                    if covered is not None:
                        assert (await tx.fetch(*_inline(covered)))[0][0] == counted, body
                        # (The plan shows both branches: the count rows choose one as it runs.)
                        shown = "\n".join(str(r[-1]) for r in await tx.fetch("EXPLAIN QUERY PLAN " + covered[0], *covered[1]))
                        assert "COVERING INDEX flow_runs_flow_scheduled" in shown, shown

        async def assert_pages(bodies: list[dict[str, Any]], shaped_so: bool) -> None:
            """run_counts._flow_range_page: the page of such a body read from the flows' index and
            sorted (SQLite, when few enough match) is the plain query's, over HTTP too."""
            async with open_store(store_url, migrate=False) as store, store.reading() as tx:
                for body in bodies:
                    for sort in ("EXPECTED_START_TIME_DESC", "START_TIME_DESC", "NAME_ASC", "ID_DESC", "END_TIME_DESC"):
                        shaped = await run_counts.page_shape(tx, msgspec.convert(body, f.FlowRunFilterRequest), sort, 3, 0)
                        chosen = isinstance(shaped, Dialect) and shaped.flow_covers_range and shaped.sorted_read
                        assert chosen == (shaped_so and tx.dialect == "sqlite"), (body, sort, shaped)
                        await assert_pages_agree(server, tx, shaped, [body], (sort,))

        await assert_agree()
        for run_id in rng.sample(runs, 30):
            kind, name = rng.choice(STATES)
            await call(server, "POST", f"/flow_runs/{run_id}/set_state", {"state": {"type": kind, "name": name}, "force": True})
        await assert_agree()
        await assert_pages(asked[:7], True)
        monkeypatch.setattr(run_counts, "FLOW_RANGE_SORTED_AT_MOST", -1)  # too many match to sort (even none): as before
        await assert_pages(asked[:7], False)
        monkeypatch.setattr(run_counts, "FLOW_RANGE_COVERED_AT_MOST", -1)  # the flows' runs are too many: the table
        await assert_agree()
        await assert_pages(asked[:7], False)


def _inline(cond: tuple[str, tuple[Any, ...]]) -> tuple[Any, ...]:
    """A statement and its parameters as tx.fetch takes them."""
    return (cond[0], *cond[1])
