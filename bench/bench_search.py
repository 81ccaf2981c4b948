"""Run search benchmark: POST /flow_runs/filter (limit 200) and /flow_runs/count per filter kind.

    python -m bench.bench_search [--runs N] [--backend sqlite|postgres|both] [--samples K]
                                 [--database URL] [--keep] [--pages-cpu] [--only NAMES]
                                 [--vacuum] [--admin-url URL]

It builds a log of N runs (default 1,000,000) quickly: the events are generated here and
appended in large concurrent batches straight to the store (with the inline projections, as
``runlog events import`` does), not posted one by one. Each run gets a FlowRunCreated and
one state change; runs are spread over 50 flows, 20 deployments, 4 work pools, 40 tags (one to
three per run, a few tags far more common than the rest) and 30 days of expected start times.

Then, with runlog served in this process, every filter the UI and the CLI use (state, tag,
flow, deployment, work pool, time range, name like, and none) is asked as ``filter`` with
limit 200 in the UI's sort orders, and as ``count``, K times each: p50 and p95 in ms. The
"newest runs" case is the event log's index page (GET /runlog/), whose 20 newest runs are read
off flow_run_names.created (migration 0033); its rows are the runs the page lists.

``--pages-cpu`` adds what wall time on a loaded machine hides: the median CPU milliseconds
each request cost the server process (this process: the event loop's thread and the SQLite
driver's threads, time.process_time over the request), and on PostgreSQL the CPU of the
database's backends serving it (pg_stat_activity's processes; /proc/PID/schedstat). The
client's part of a request (sending it, reading the answer's bytes; the answer is parsed only
after the clock stops) is in the server figure too: the ``floor`` line, GET /api/health
measured the same way, is the least a request costs both sides.

Before measuring, with or without ``--pages-cpu``, the bench waits until the asynchronous
projections (the event feed, run history) have caught up with the log: their catch-up runs in
this process too, and on a freshly built log it took the CPU the requests were timed with
(SQLite pages at 1,000 runs: 59-150 ms during the catch-up, 5-15 ms after).

``--vacuum`` (PostgreSQL) runs ``VACUUM (ANALYZE)`` over the database before measuring: the state
autovacuum leaves a table in (its visibility map set, so that a count can read an index alone,
migration 0038), which a server with autovacuum on reaches by itself after a bulk build and
this machine's PostgreSQL (autovacuum off) never does. Without it, every run written since the
last VACUUM costs a count its heap page. The seconds it took are printed.

``--database URL`` works on an existing database: when it already holds runs it is not built
again (so one build can be measured before and after a change); ``--keep`` leaves the databases
it built (and prints their URLs) instead of dropping them. Progress goes to stderr, the tables
to stdout, with the load average: client, server and database share this machine's CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import psutil

from runlog.api.keys import STORE
from runlog.eventstore import NewEvent, open_store, parse_database_url
from runlog.projections.checkpoints import checkpoint
from runlog.projections.registry import async_projections, inline_projections
from runlog.schema import events as ev
from runlog.schema import streams
from tests.servers import Server, serve

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_MS = 50.0
SLOW_MS = 2000.0
FLOWS, DEPLOYMENTS, POOLS, TAGS = 50, 20, 4, 40
IN_FLIGHT = 512  # concurrent appends: the store's group commit folds them into large batches
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 30
# (state type, name, share): most runs are finished, as on a server that has run for a while.
STATES = [
    (ev.StateType.COMPLETED, "Completed", 0.70), (ev.StateType.FAILED, "Failed", 0.10),
    (ev.StateType.SCHEDULED, "Scheduled", 0.08), (ev.StateType.RUNNING, "Running", 0.04),
    (ev.StateType.CANCELLED, "Cancelled", 0.04), (ev.StateType.CRASHED, "Crashed", 0.02),
    (ev.StateType.PENDING, "Pending", 0.02),
]
WORDS = ["amber", "brisk", "cobalt", "dusty", "eager", "fuzzy", "gentle", "hazel", "icy", "jolly",
         "keen", "lucky", "mellow", "nimble", "olive", "proud", "quiet", "rusty", "sunny", "tidy"]


NEWEST_RUNS = "newest runs"
"""The event log's index page (GET /runlog/): its newest runs are read off flow_run_names'
`created` index (migration 0033), joined to their runs, with the pools and limits."""
RUN_LINK = "/runlog/time-travel/flow-run/"
"""How the index page links each run it lists (counted as the case's rows)."""


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _record(event: ev.Event) -> NewEvent:
    return NewEvent(type=ev.event_type(event), data=ev.encode(event), id=uuid.uuid4())


class Catalogue:
    """The flows, deployments, pools and tags the runs are spread over (fixed by the seed)."""

    def __init__(self, rng: random.Random) -> None:
        self.flows = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(FLOWS)]
        self.deployments = [(uuid.UUID(int=rng.getrandbits(128)), self.flows[i % FLOWS]) for i in range(DEPLOYMENTS)]
        self.pools = [(uuid.UUID(int=rng.getrandbits(128)), uuid.UUID(int=rng.getrandbits(128))) for _ in range(POOLS)]
        self.tags = [f"tag-{i}" for i in range(TAGS)]

    def setup_events(self) -> list[tuple[str, list[NewEvent]]]:
        out = [(streams.flow(f), [_record(ev.FlowCreated(flow_id=f, name=f"flow-{i}", created=EPOCH))])
               for i, f in enumerate(self.flows)]
        out += [(streams.deployment(d), [_record(ev.DeploymentCreated(
            deployment_id=d, flow_id=f, name=f"deployment-{i}", fields={"work_pool_name": f"pool-{i % POOLS}"},
            created=EPOCH))]) for i, (d, f) in enumerate(self.deployments)]
        out.append((streams.WORK_POOLS, [_record(ev.WorkPoolCreated(
            work_pool_id=p, name=f"pool-{i}", type="process", default_queue_id=q, created=EPOCH))
            for i, (p, q) in enumerate(self.pools)] + [_record(ev.WorkQueueCreated(
                work_queue_id=q, work_pool_id=p, name="default", created=EPOCH)) for p, q in self.pools]))
        return out


def run_events(cat: Catalogue, rng: random.Random, index: int) -> tuple[str, list[NewEvent]]:
    run_id = uuid.UUID(int=rng.getrandbits(128))
    flow_index = rng.randrange(FLOWS)
    deployment = cat.deployments[rng.randrange(DEPLOYMENTS)] if rng.random() < 0.6 else None
    flow_id = deployment[1] if deployment else cat.flows[flow_index]
    pool = cat.pools[rng.randrange(POOLS)] if deployment else None
    # A few tags far more common than the rest: tag-0 on about a third of the runs.
    tags = sorted({cat.tags[min(int(rng.expovariate(0.12)), TAGS - 1)] for _ in range(rng.randint(1, 3))})
    expected = EPOCH + timedelta(seconds=rng.randrange(DAYS * 86400))
    created = ev.FlowRunCreated(
        flow_run_id=run_id, flow_id=flow_id, name=f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{index}", tags=tags,
        deployment_id=deployment[0] if deployment else None, created=expected - timedelta(minutes=5),
        work_pool_name=f"pool-{cat.pools.index(pool)}" if pool else None, work_queue_name="default" if pool else None,
        work_pool_id=pool[0] if pool else None, work_queue_id=pool[1] if pool else None,
    )
    state_type, name = rng.choices([(t, n) for t, n, _ in STATES], weights=[w for *_, w in STATES])[0]
    details = ev.StateDetails(scheduled_time=expected) if state_type is ev.StateType.SCHEDULED else ev.StateDetails()
    at = expected if state_type is ev.StateType.SCHEDULED else expected + timedelta(seconds=rng.randrange(600))
    changed = ev.FlowRunStateChanged(flow_run_id=run_id, state=ev.State(
        id=uuid.uuid4(), type=state_type, name=name, timestamp=at, state_details=details))
    return streams.flow_run(run_id), [_record(created), _record(changed)]


async def build(url: str, runs: int, seed: int) -> float:
    """Append the catalogue and RUNS runs to the (empty) database at URL; seconds taken."""
    rng = random.Random(seed)
    cat = Catalogue(rng)
    started = time.perf_counter()
    async with open_store(url, projections=inline_projections()) as store:
        for stream_id, records in cat.setup_events():
            await store.append(stream_id, records)
        pending: set[asyncio.Task] = set()
        for index in range(runs):
            stream_id, records = run_events(cat, rng, index)
            pending.add(asyncio.create_task(store.append(stream_id, records)))
            if len(pending) >= IN_FLIGHT:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            if index and index % 50_000 == 0:
                rate = index / (time.perf_counter() - started)
                progress(f"  {index:,} runs appended ({rate:,.0f} runs/s, load {load()})")
        for task in asyncio.as_completed(pending):
            await task
    return time.perf_counter() - started


async def vacuum(url: str) -> float:
    """VACUUM (ANALYZE) the PostgreSQL database at URL, as autovacuum would; seconds taken."""
    dsn = parse_database_url(url).postgres_dsn
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")  # not in a transaction: asyncpg runs it alone
    finally:
        await conn.close()
    return time.perf_counter() - started


async def count_runs(url: str) -> int:
    async with open_store(url) as store, store.reading() as tx:
        return int((await tx.fetch("SELECT COUNT(*) FROM flow_runs"))[0][0])


def cases(cat: Catalogue) -> list[tuple[str, dict]]:
    """(name, body) of every filter the UI and CLI use, as they send them."""
    day = EPOCH + timedelta(days=12)
    return [
        ("none", {}),
        ("state Failed", {"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}}),
        ("state Running", {"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}),
        ("state name Failed,Crashed", {"flow_runs": {"state": {"name": {"any_": ["Failed", "Crashed"]}}}}),
        ("tag common (all_)", {"flow_runs": {"tags": {"all_": ["tag-0"]}}}),
        ("tag rare (all_)", {"flow_runs": {"tags": {"all_": [cat.tags[20]]}}}),
        ("tags any_ 2", {"flow_runs": {"tags": {"any_": ["tag-5", "tag-9"]}}}),
        ("tags all_ 2", {"flow_runs": {"tags": {"all_": ["tag-0", "tag-1"]}}}),
        ("flow", {"flows": {"id": {"any_": [str(cat.flows[3])]}}}),
        ("flow name", {"flows": {"name": {"any_": ["flow-7"]}}}),
        ("deployment", {"deployments": {"id": {"any_": [str(cat.deployments[2][0])]}}}),
        ("deployment_id", {"flow_runs": {"deployment_id": {"any_": [str(cat.deployments[4][0])]}}}),
        ("work pool", {"work_pools": {"name": {"any_": ["pool-1"]}}}),
        ("expected start 1 day", {"flow_runs": {"expected_start_time": {
            "after_": day.isoformat(), "before_": (day + timedelta(days=1)).isoformat()}}}),
        ("start time 1 day", {"flow_runs": {"start_time": {
            "after_": day.isoformat(), "before_": (day + timedelta(days=1)).isoformat()}}}),
        ("name like", {"flow_runs": {"name": {"like_": "jolly-mell"}}}),
        ("flow + state + 7 days", {
            "flows": {"id": {"any_": [str(cat.flows[3])]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}, "expected_start_time": {
                "after_": day.isoformat(), "before_": (day + timedelta(days=7)).isoformat()}}}),
    ]


SORTS = ["EXPECTED_START_TIME_DESC", "START_TIME_DESC", "NAME_ASC", "ID_DESC"]
SETTLE_SECONDS = 1800.0
"""The bench waits at most this long for the asynchronous projections to catch up."""

SQL_BACKENDS = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


class CpuClock:
    """CPU seconds so far of this process (all its threads) and, on PostgreSQL, of the
    database's backends other than the clock's own connection."""

    def __init__(self, pg: asyncpg.Connection | None) -> None:
        self._pg = pg
        self.postgres = pg is not None

    @classmethod
    @contextlib.asynccontextmanager
    async def on(cls, url: str) -> AsyncIterator[CpuClock]:
        db = parse_database_url(url)
        if db.postgres_dsn is None:
            yield cls(None)
            return
        pg = await asyncpg.connect(db.postgres_dsn)
        try:
            yield cls(pg)
        finally:
            await pg.close()

    async def start(self) -> tuple[float, dict[int, float]]:
        backends = await self._backends()
        return time.process_time(), backends  # after the query, so that it is not counted

    async def stop(self) -> tuple[float, dict[int, float]]:
        mine = time.process_time()  # before the query, so that it is not counted
        return mine, await self._backends()

    async def _backends(self) -> dict[int, float]:
        seconds: dict[int, float] = {}
        if self._pg is not None:
            for (pid,) in await self._pg.fetch(SQL_BACKENDS):
                seconds[pid] = _process_cpu(pid)
        return seconds

    @staticmethod
    def spent(before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]) -> tuple[float, float]:
        """(this process, the backends) in ms between two reads; a backend that started between
        them is counted whole."""
        backends = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
        return (after[0] - before[0]) * 1000, backends * 1000


def _process_cpu(pid: int) -> float:
    """CPU seconds of process ``pid``: from /proc/PID/schedstat in nanoseconds where Linux has
    it (cpu_times counts clock ticks, 10 ms: coarser than one request), else psutil's."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    return 0.0


async def settle(server: Server) -> None:
    """Until every asynchronous projection's checkpoint has reached the log's head."""
    store = server.app[STORE]
    head = await store.head()
    names = [projection.name for projection in async_projections(store)]
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        behind = {name: head - await checkpoint(store, name) for name in names}
        behind = {name: count for name, count in behind.items() if count > 0}
        if not behind:
            return
        if time.monotonic() > deadline:
            progress(f"  still behind after {SETTLE_SECONDS:.0f} s, measuring anyway: {behind}")
            return
        progress(f"  waiting for the asynchronous projections to catch up: {behind} events behind")
        await asyncio.sleep(5)


async def timed(server: Server, method: str, path: str, payload: object, clock: CpuClock | None
                ) -> tuple[float, tuple[float, float] | None, int, object]:
    """One request: wall ms, CPU ms (with a clock), HTTP status and the answer."""
    # An API path, or (a page of runlog's own, NEWEST_RUNS) a path from the server's root.
    url = server.base.removesuffix("/api") + path if path.startswith("/runlog/") else server.base + path
    before = await clock.start() if clock is not None else None
    started = time.perf_counter()
    async with server.session.request(method, url, json=payload) as response:
        body = await response.read()
        status = response.status
        json = response.content_type == "application/json"
    wall = (time.perf_counter() - started) * 1000
    cpu = CpuClock.spent(before, await clock.stop()) if clock is not None and before is not None else None
    return wall, cpu, status, (msgspec.json.decode(body) if json else body.decode()) if body else None


async def measure(url: str, samples: int, seed: int, only: str | None, pages_cpu: bool = False) -> list[tuple]:
    """(filter, request, p50 ms, p95 ms, rows or count, CPU ms p50 | None, backends' CPU ms p50 | None)
    of every request; with ``pages_cpu`` a first row ("floor") for GET /api/health."""
    cat = Catalogue(random.Random(seed))
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as home:
        env = {"RUNLOG_HOME": home, "RUNLOG_DATABASE_URL": url, "RUNLOG_LOGGING_LEVEL": "WARNING",
               "RUNLOG_SERVICES_SCHEDULER_ENABLED": "false", "RUNLOG_SERVICES_FOREMAN_ENABLED": "false",
               "RUNLOG_SERVICES_LATE_RUNS_ENABLED": "false", "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
               "RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false", "RUNLOG_NOTIFIER_ENABLED": "false"}
        async with serve(env) as server, (CpuClock.on(url) if pages_cpu else contextlib.nullcontext()) as clock:
            await settle(server)
            asks_by_case = [("floor", [("GET /api/health", "GET", "/health", None)])] if pages_cpu else []
            if not only or any(part in NEWEST_RUNS for part in only.split(",")):
                asks_by_case.append((NEWEST_RUNS, [("GET /runlog/", "GET", "/runlog/", None)]))
            for name, body in cases(cat):
                if only and not any(part in name for part in only.split(",")):
                    continue
                asks = [("count", "POST", "/flow_runs/count", body)]
                asks += [(f"filter {s}", "POST", "/flow_runs/filter", {**body, "limit": 200, "sort": s}) for s in SORTS]
                asks_by_case.append((name, asks))
            for name, asks in asks_by_case:
                for what, method, path, payload in asks:
                    times, cpus, answer = [], [], None
                    for attempt in range(samples + 1):  # the first warms the caches and is dropped
                        if attempt == 2 and times[1] > SLOW_MS:
                            break  # far over the target: one timed sample says enough
                        wall, cpu, status, answer = await timed(server, method, path, payload, clock)
                        times.append(wall)
                        cpus.append(cpu)
                        if status != 200:
                            raise SystemExit(f"{name} {what}: HTTP {status} {answer}")
                    # A page's rows, a count, the runs the event log's index lists, or (the floor's health check) 0.
                    size = (len(answer) if isinstance(answer, list) else answer if type(answer) is int
                            else answer.count(RUN_LINK) if isinstance(answer, str) else 0)
                    own = percentile([c[0] for c in cpus[1:]], 0.5) if clock else None
                    db = percentile([c[1] for c in cpus[1:]], 0.5) if clock and clock.postgres else None
                    rows.append((name, what, percentile(times[1:], 0.5), percentile(times[1:], 0.95), size, own, db))
                    # Each row as it is measured too: the table is printed only once the server
                    # has stopped, which waits for its services (the event feed catching up).
                    progress("  " + table_row(rows[-1]))
                progress(f"  {name}: done (load {load()})")
    return rows


def table_header(pages_cpu: bool, postgres: bool) -> str:
    head = "| filter | request | p50 ms | p95 ms | rows/count | <= 50 ms |"
    rule = "|---|---|---:|---:|---:|:---:|"
    if pages_cpu:
        head += " server CPU ms |"
        rule += "---:|"
    if pages_cpu and postgres:
        head += " PG backends CPU ms |"
        rule += "---:|"
    return f"{head}\n{rule}"


def table_row(row: tuple) -> str:
    name, what, p50, p95, size, own, db = row
    line = f"| {name} | {what} | {p50:.1f} | {p95:.1f} | {size:,} | {'yes' if p95 <= TARGET_MS else 'NO'} |"
    for cpu in (own, db):
        if cpu is not None:
            line += f" {cpu:.1f} |"
    return line


@contextlib.asynccontextmanager
async def database(backend: str, args: argparse.Namespace) -> AsyncIterator[str]:
    if args.database:
        yield args.database
        return
    if backend == "sqlite":
        workdir = tempfile.mkdtemp(prefix="bench-search-")
        path = os.path.join(workdir, "runlog.db")
        try:
            yield f"sqlite:///{path}"
        finally:
            if args.keep:
                progress(f"kept sqlite:///{path}")
            else:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path + suffix)
                os.rmdir(workdir)
        return
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield args.admin_url.rsplit("/", 1)[0] + "/" + name
        finally:
            if args.keep:
                progress(f"kept {args.admin_url.rsplit('/', 1)[0]}/{name}")
            else:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.database:  # its URL names the one backend
        backends = ["sqlite" if args.database.startswith("sqlite") else "postgres"]
    for backend in backends:
        async with database(backend, args) as url:
            held = await count_runs(url)
            built = ""
            if held == 0:
                progress(f"{backend}: building {args.runs:,} runs (load {load()})")
                seconds = await build(url, args.runs, args.seed)
                built = f"built in {seconds:.0f} s ({args.runs / seconds:,.0f} runs/s)"
                held = await count_runs(url)
            if args.vacuum and backend == "postgres":
                progress(f"{backend}: VACUUM (ANALYZE) (load {load()})")
                built += f"; VACUUM (ANALYZE) before measuring: {await vacuum(url):.0f} s"
            progress(f"{backend}: {held:,} runs; measuring (load {load()})")
            rows = await measure(url, args.samples, args.seed, args.only, args.pages_cpu)
            print(f"\n## {backend}: {held:,} runs {built}; load average after: {load()}\n")
            if args.pages_cpu:
                print("CPU ms: the median of the timed requests (--pages-cpu in the docstring).\n")
            print(table_header(args.pages_cpu, backend == "postgres"))
            for row in rows:
                print(table_row(row))
            sys.stdout.flush()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--samples", type=int, default=20, help="timed requests per query (p50/p95 over them)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--database", help="an existing database (built when it holds no run)")
    parser.add_argument("--keep", action="store_true", help="keep the databases built")
    parser.add_argument("--only", help="measure only the filters whose name contains one of these (comma-separated)")
    parser.add_argument("--pages-cpu", action="store_true",
                        help="also the CPU ms of each request: this process's, and PostgreSQL's backends'")
    parser.add_argument("--vacuum", action="store_true",
                        help="PostgreSQL: VACUUM (ANALYZE) before measuring, as autovacuum would after the build")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
