"""get_scheduled_flow_runs under a large schedule: what a worker and flow.serve() wait for.

    python -m bench.bench_pools [--target runlog|prefect] [--backend sqlite|postgres]
                                [--pools 10] [--deployments 1000] [--runs 100000]
                                [--requests 500] [--load-clients 16]
                                [--runlog-command CMD] [--admin-url URL]

A fresh server and database (bench_server's: a SQLite file, or a PostgreSQL database created and
dropped here) is loaded over the Prefect REST API, the way a user's data arrives: --pools
process work pools (each with its default queue), one flow per ten deployments, --deployments
deployments spread round-robin over the pools, then --runs flow runs through
POST /deployments/{id}/create_flow_run with a SCHEDULED state, --runs / --deployments per
deployment, hourly from ten minutes ago (so every deployment has one run due and the rest over
the following days, as a scheduler with an hourly schedule leaves them), sent by
--load-clients concurrent clients. The load time is reported.

Then, one request at a time (latency, not throughput), --requests of each of:

  worker   POST /work_pools/{pool}/get_scheduled_flow_runs {"scheduled_before": now + 10 s}
           as `prefect worker start --pool P` polls (its prefetch is 10 s; no queue names, no
           limit), pools in turn;
  worker+1d  the same with scheduled_before one day ahead (every queue has a day of runs to
           order; the server's default limit applies);
  serve    POST /deployments/get_scheduled_flow_runs {"deployment_ids": [10 ids],
           "scheduled_before": now + 10 s} as flow.serve() polls for its deployments.

Reported: p50 / p95 / p99 / max milliseconds and runs returned per request, with the machine's
load average (the box is shared; compare figures measured together).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import aiohttp

from .bench_server import DEFAULT_ADMIN_URL, DEFAULT_PREFECT_PYTHON, percentile, progress, running_server

P99_TARGET_MS = 20.0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


RETRIED_503 = [0]
"""Loading requests answered 503 and sent again (Prefect's SQLite server answers "database is
locked" as 503 under its own services' writes; the Prefect client retries those too)."""


async def post(session: aiohttp.ClientSession, url: str, body: object, expect: tuple[int, ...] = (200, 201)) -> object:
    for attempt in range(20):
        async with session.post(url, json=body) as resp:
            if resp.status == 503 and attempt < 19:
                RETRIED_503[0] += 1
                await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt))
                continue
            if resp.status not in expect:
                raise RuntimeError(f"POST {url} -> {resp.status}: {(await resp.text())[:500]}")
            return await resp.json() if resp.status != 204 else None
    raise AssertionError("unreachable")


async def load(base: str, args: argparse.Namespace) -> tuple[list[str], list[str], float]:
    """Pools, flows, deployments and runs; the pool names, deployment ids and the seconds the
    runs took to create."""
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pools = [f"pool-{i}" for i in range(args.pools)]
        for name in pools:
            await post(session, f"{base}/work_pools/", {"name": name, "type": "process"})
        flows = []
        for i in range((args.deployments + 9) // 10):
            flows.append((await post(session, f"{base}/flows/", {"name": f"flow-{i}"}))["id"])  # type: ignore[index]
        deployments: list[str] = []
        for i in range(args.deployments):
            body = {"name": f"dep-{i}", "flow_id": flows[i // 10], "work_pool_name": pools[i % args.pools]}
            deployments.append((await post(session, f"{base}/deployments/", body))["id"])  # type: ignore[index]
        progress(f"  {args.pools} pools, {len(flows)} flows, {len(deployments)} deployments created")

        per = args.runs // args.deployments
        start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
        jobs = [(d, k) for k in range(per) for d in range(len(deployments))]
        next_job = iter(jobs)
        done = 0

        async def client() -> None:
            nonlocal done
            async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as own:
                for d, k in next_job:
                    when = start + timedelta(hours=k, seconds=d % 3600)
                    body = {"state": {"type": "SCHEDULED", "name": "Scheduled",
                                      "state_details": {"scheduled_time": iso(when)}}}
                    await post(own, f"{base}/deployments/{deployments[d]}/create_flow_run", body)
                    done += 1
                    if done % 10_000 == 0:
                        progress(f"  {done:,} runs")

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.load_clients)))
        return pools, deployments, time.perf_counter() - t0


async def timed(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with session.post(url, json=body) as resp:
        data = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST {url} -> {resp.status}: {data[:500]!r}")
    elapsed = (time.perf_counter() - t0) * 1000
    return elapsed, data.count(b'"flow_run"') if b'"flow_run"' in data else data.count(b'"flow_id"')


async def measure(base: str, pools: list[str], deployments: list[str], args: argparse.Namespace) -> list[tuple[str, list[float], list[int]]]:
    results = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        def worker_body(ahead: timedelta) -> dict:
            return {"scheduled_before": iso(datetime.now(timezone.utc) + ahead)}

        cases = [
            ("worker (before now+10s)", lambda i: (f"{base}/work_pools/{pools[i % len(pools)]}/get_scheduled_flow_runs",
                                                 worker_body(timedelta(seconds=10)))),
            ("worker (before now+1d)", lambda i: (f"{base}/work_pools/{pools[i % len(pools)]}/get_scheduled_flow_runs",
                                                worker_body(timedelta(days=1)))),
            ("serve, 10 deployments", lambda i: (f"{base}/deployments/get_scheduled_flow_runs",
                                               {"deployment_ids": [deployments[(i * 10 + j) % len(deployments)] for j in range(10)],
                                                **worker_body(timedelta(seconds=10))})),
        ]
        for label, make in cases:
            for i in range(20):  # warm up: connections, caches, the planner's statistics
                await timed(session, *make(i))
            times, counts = [], []
            for i in range(args.requests):
                ms, n = await timed(session, *make(i))
                times.append(ms)
                counts.append(n)
            results.append((label, sorted(times), counts))
            progress(f"  {label}: p99 {percentile(sorted(times), 0.99):.1f} ms")
    return results


# get_scheduled_flow_runs' per-queue query and the pool's active-run count (api/queries/work_pools.py),
# before migration 0018 (through flow_run_queues) and after (flow_runs.work_queue_id), so that one
# loaded database shows both plans while it has both (flow_run_queues was dropped by migration 0021:
# a database from then on shows the column's plans only).
OLD_QUEUE_SQL = (
    "SELECT fr.view FROM flow_run_queues rq JOIN flow_runs fr ON fr.id = rq.flow_run_id "
    "WHERE rq.work_queue_id = {p1} AND fr.state_type = 'SCHEDULED' AND fr.next_scheduled_start_time <= {p2} "
    "ORDER BY fr.next_scheduled_start_time, fr.id LIMIT 250"
)
OLD_ACTIVE_SQL = (
    "SELECT rq.work_queue_id, COUNT(*) FROM flow_run_queues rq JOIN flow_runs fr ON fr.id = rq.flow_run_id "
    "WHERE rq.work_pool_id = {p1} AND fr.state_type IN ('PENDING', 'RUNNING') GROUP BY rq.work_queue_id"
)
QUEUE_SQL = (
    "SELECT fr.view FROM flow_runs fr WHERE fr.work_queue_id = {p1} AND fr.state_type = 'SCHEDULED' "
    "AND fr.next_scheduled_start_time <= {p2} ORDER BY fr.next_scheduled_start_time, fr.id LIMIT 250"
)
ACTIVE_SQL = (
    "SELECT fr.work_queue_id, COUNT(*) FROM flow_runs fr "
    "WHERE fr.work_queue_id IN (SELECT wq.id FROM work_queues wq WHERE wq.work_pool_id = {p1}) "
    "AND fr.state_type IN ('PENDING', 'RUNNING') GROUP BY fr.work_queue_id"
)


def db_has_column(db) -> bool:
    return any(row[1] == "work_queue_id" for row in db.execute("PRAGMA table_info(flow_runs)"))


def cases(queue: str, pool: str, soon: int, migrated: bool, old_table: bool = True) -> list[tuple[str, tuple]]:
    day = soon + 86_400 * 1_000_000
    found = [(OLD_QUEUE_SQL, (queue, soon)), (OLD_QUEUE_SQL, (queue, day)), (OLD_ACTIVE_SQL, (pool,))] if old_table else []
    if migrated:
        found += [(QUEUE_SQL, (queue, soon)), (QUEUE_SQL, (queue, day)), (ACTIVE_SQL, (pool,))]
    return found


async def explain(database_url: str, backend: str) -> None:
    """The plans of get_scheduled_flow_runs' two queries on the loaded database."""
    soon = int((time.time() + 10) * 1_000_000)
    if backend == "sqlite":
        import sqlite3
        db = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            queue, pool = db.execute("SELECT id, work_pool_id FROM work_queues LIMIT 1").fetchone()
            old_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'flow_run_queues'").fetchone() is not None
            for sql, params in cases(queue, pool, soon, db_has_column(db), old_table):
                sql = sql.replace("{p1}", "?").replace("{p2}", "?")
                print("EXPLAIN QUERY PLAN", sql)
                for row in db.execute("EXPLAIN QUERY PLAN " + sql, params):
                    print("   ", row[-1])
                t0 = time.perf_counter()
                db.execute(sql, params).fetchall()
                print(f"    {(time.perf_counter() - t0) * 1000:.1f} ms")
        finally:
            db.close()
        return
    import asyncpg
    conn = await asyncpg.connect(database_url)
    try:
        queue, pool = await conn.fetchrow("SELECT id, work_pool_id FROM work_queues LIMIT 1")
        has = await conn.fetchval("SELECT count(*) FROM information_schema.columns "
                                  "WHERE table_name = 'flow_runs' AND column_name = 'work_queue_id'")
        old_table = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE tablename = 'flow_run_queues'")
        for sql, params in cases(queue, pool, soon, bool(has), bool(old_table)):
            sql = sql.replace("{p1}", "$1").replace("{p2}", "$2")
            print("EXPLAIN ANALYZE", sql)
            for row in await conn.fetch("EXPLAIN ANALYZE " + sql, *params):
                print("   ", row[0])
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> int:
    args.wait_quiet, args.keep_logs, args.prefect_python = 0.0, None, args.prefect_python
    args.server_env = {"RUNLOG_NOTIFIER_ENABLED": "false"}
    async with running_server(args.target, args.backend, args) as server:
        pools, deployments, load_s = await load(server.base, args)
        progress(f"  {args.runs:,} runs created in {load_s:.1f} s ({args.runs / load_s:,.0f}/s)")
        await asyncio.sleep(args.settle)  # the late-runs pass over the due runs happens before measuring
        results = await measure(server.base, pools, deployments, args)
        if args.explain and args.target == "runlog":
            await explain(server.database_url, args.backend)
    loadavg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ok = True
    print(f"\n{args.target} on {args.backend}: {args.runs:,} scheduled runs, {args.deployments:,} deployments, "
          f"{args.pools} pools; loaded in {load_s:.0f} s ({args.runs / load_s:,.0f} runs/s, "
          f"{args.load_clients} clients, {RETRIED_503[0]} requests sent again after a 503); load average {loadavg}\n")
    print("| request | n | runs returned | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for label, times, counts in results:
        p99 = percentile(times, 0.99)
        ok &= p99 <= P99_TARGET_MS
        print(f"| {label} | {len(times)} | {sorted(counts)[len(counts) // 2]} | {percentile(times, 0.5):.1f} | "
              f"{percentile(times, 0.95):.1f} | {p99:.1f} | {times[-1]:.1f} |")
    print(f"\np99 <= {P99_TARGET_MS:g} ms: {'yes' if ok else 'NO'}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=("runlog", "prefect"), default="runlog")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pools", type=int, default=10)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between loading and measuring (10)")
    parser.add_argument("--explain", action="store_true", help="print the plans of the pool query (runlog)")
    parser.add_argument("--runlog-command", default=None)
    parser.add_argument("--prefect-python", default=DEFAULT_PREFECT_PYTHON)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
