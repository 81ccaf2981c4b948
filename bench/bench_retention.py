"""What retention and time travel cost on a log full of heartbeats.

    python -m bench.bench_retention [--backend sqlite|postgres] [--workers 100] [--beats 500]
                                    [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

One pool and --workers workers heartbeating --beats times each (appended through the commands,
with a manual clock 30 s apart, so the log holds workers x beats heartbeat events) on a fresh
database. Then it times: a time resolved to a position (GET ...?at=TIME), a flow run and the
pool folded at a position (the pool reads all its workers' heartbeats), one retention round
(select what no view needs, delete it) and the same reads after it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from runlog.commands import flow_runs, flows, work_pools, workers
from runlog.commands.clock import ManualClock
from runlog.commands.orchestration import ProposedState
from runlog.commands.retention import prune_old_heartbeats
from runlog.eventstore import open_store
from runlog.projections import time_travel
from runlog.projections.registry import inline_projections
from runlog.schema.events import StateType

START = datetime(2026, 1, 1, tzinfo=UTC)


async def timed(label: str, work) -> object:
    began = time.perf_counter()
    result = await work
    print(f"  {label:<48} {(time.perf_counter() - began) * 1000:9.1f} ms")
    return result


async def run(url: str, n_workers: int, beats: int) -> None:
    clock = ManualClock(START)
    async with open_store(url, projections=inline_projections()) as store:
        await work_pools.create_pool(store, work_pools.NewWorkPool(name="p", type="process"), clock=clock)
        flow, _ = await flows.register(store, "bench", clock=clock)
        run_view, _ = await flow_runs.create(store, flow_runs.NewFlowRun(
            flow_id=flow.id, state=ProposedState(type=StateType.PENDING)), clock=clock)
        began = time.perf_counter()
        for _ in range(beats):
            await asyncio.gather(*(workers.heartbeat(store, "p", f"w{i}", 30, clock=clock) for i in range(n_workers)))
            clock.advance(30)
        head = await store.head()
        print(f"log: {head} events ({n_workers} workers x {beats} heartbeats) in {time.perf_counter() - began:.1f} s")
        middle = head // 2
        run_id = run_view.id
        async with store.reading() as tx:
            sql = ("SELECT recorded_at FROM events WHERE position = ?" if tx.dialect == "sqlite"
                   else "SELECT recorded_at::text FROM events WHERE position = ?")
            (recorded,) = (await tx.fetch(sql, middle))[0]
        when = str(recorded).replace(" ", "T").replace("+00", "+00:00") if tx.dialect == "postgres" else str(recorded)
        for phase in ("before retention", "after retention"):
            print(phase + ":")
            await timed("a time resolved to a position", time_travel.resolve(store, when))
            await timed("a flow run folded at the middle position", time_travel.flow_run_at(store, run_id, middle))
            await timed("the pool folded at the middle position", time_travel.pool_at(store, "p", middle))
            await timed("the pool folded at the head", time_travel.pool_at(store, "p", head))
            if phase == "before retention":
                cutoff = clock() - timedelta(seconds=30)  # every heartbeat but the last round's
                pruned = await timed("one retention round (select + delete)", prune_old_heartbeats(store, cutoff))
                print(f"  pruned {len(pruned)} of {head} events")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--beats", type=int, default=500)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            await run(f"sqlite:///{folder}/bench.db", args.workers, args.beats)
        return
    name = f"bench_retention_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(args.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await run(args.admin_url.rsplit("/", 1)[0] + f"/{name}", args.workers, args.beats)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
