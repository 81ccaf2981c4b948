"""Rebuild benchmark: how fast `runlog projections rebuild` folds the log, on both backends.

    python -m bench.bench_rebuild [--backend sqlite|postgres|both] [--runs N] [--tasks-per-run K]
                                  [--postgres-url URL] [--profile] [--only NAME...] [--per-projection]
                                  [--floor]

Builds a log of --runs flow runs (default 100,000), each created and moved Pending, Running,
Completed, with K task runs each created, Running and Completed (default 0): the events are
appended without inline projections, so only the rebuild folds them. Then rebuilds every
projection (or --only those) beside the live tables and swaps them in, as the server does,
twice: first over empty live tables, then over the tables the first built (the usual case: the
swap writes only rows that differ), and prints events/s, the CPU seconds spent (this process's,
its SQLite threads included, plus on PostgreSQL those of the server's backends serving the
benchmark's database, read from /proc) and events per CPU second (steadier than events/s on a
loaded machine), and the swap's time (its log line). --per-projection then rebuilds each
projection alone over the tables built, a row each, to show which dominate. --profile prints where the rebuild's time goes (cProfile, by cumulative time)
to stderr.

--floor measures, instead of a rebuild, what reading the log alone costs: the rebuild's own
page reads (``read_all`` in batches of ``BATCH_EVENTS``, as projections/rebuild.py reads them)
with nothing done to the records ("read"), then the same with each record's payload decoded
into the catalogue's event, the type the folds take ("read + decode"): no fold, no write. No
rebuild with a fold in Python goes faster than that row.

Databases are the benchmark's own: a SQLite file in a temporary directory; on PostgreSQL a
database created through the admin URL and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.bench_store import postgres_databases
from runlog.eventstore import NewEvent, open_store
from runlog.projections.rebuild import BATCH_EVENTS, rebuild, select
from runlog.projections.collector import fewer_collections
from runlog.projections.registry import inline_projections
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.events import State, StateType

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
APPENDS_IN_FLIGHT = 2_000


def _new(event: catalogue.Event) -> NewEvent:
    return NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=uuid.uuid4())


def _state(kind: StateType, at: datetime) -> State:
    return State(id=uuid.uuid4(), type=kind, name=kind.value.title(), timestamp=at)


def run_events(flow_id: uuid.UUID, index: int, tasks: int, at: datetime) -> list[tuple[str, list[NewEvent]]]:
    """One flow run's stream (created, Pending, Running, Completed) and its task runs' streams."""
    run_id = uuid.uuid4()
    appended = [(streams.flow_run(run_id), [
        _new(catalogue.FlowRunCreated(flow_run_id=run_id, flow_id=flow_id, name=f"run-{index}",
                                      tags=["bench", f"shard-{index % 10}"], created=at)),
        *(_new(catalogue.FlowRunStateChanged(flow_run_id=run_id, state=_state(kind, at + timedelta(seconds=step))))
          for step, kind in enumerate((StateType.PENDING, StateType.RUNNING, StateType.COMPLETED), 1)),
    ])]
    for task in range(tasks):
        task_id = uuid.uuid4()
        fields = {"task_key": f"task-{task}", "dynamic_key": str(task), "name": f"task-{task}"}
        appended.append((streams.task_run(task_id), [
            _new(catalogue.TaskRunCreated(task_run_id=task_id, flow_run_id=run_id, task_run=fields, created=at)),
            *(_new(catalogue.TaskRunStateChanged(task_run_id=task_id, flow_run_id=run_id, task_run=fields,
                                                 state=_state(kind, at + timedelta(seconds=step))))
              for step, kind in enumerate((StateType.RUNNING, StateType.COMPLETED), 2)),
        ]))
    return appended


async def fill(url: str, runs: int, tasks: int) -> int:
    """Append the log (no inline projections); its head."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with open_store(url) as store:
        flow_id = uuid.uuid4()
        await store.append(streams.flow(flow_id), [_new(catalogue.FlowCreated(flow_id=flow_id, name="bench", created=start))])
        in_flight: list[asyncio.Task] = []
        for index in range(runs):
            for stream_id, events in run_events(flow_id, index, tasks, start + timedelta(seconds=index)):
                in_flight.append(asyncio.create_task(store.append(stream_id, events)))
            if len(in_flight) >= APPENDS_IN_FLIGHT:
                await asyncio.gather(*in_flight)
                in_flight = []
            if index % 10_000 == 0:
                print(f"  appended {index:,} runs", file=sys.stderr)
        await asyncio.gather(*in_flight)
        return await store.head()


async def _server_cpu(store) -> dict[int, float]:  # type: ignore[no-untyped-def]
    """CPU seconds of each PostgreSQL backend serving this benchmark's database, by pid (read
    from /proc: the server runs on this machine); {} on SQLite."""
    async with store.reading() as tx:
        if tx.dialect != "postgres":
            return {}
        pids = [row[0] for row in await tx.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return cpu


async def measure(url: str, only: list[str], profile: bool) -> tuple[int, float, float]:
    async with open_store(url, projections=inline_projections()) as store:
        profiler = cProfile.Profile() if profile else None
        server_before = await _server_cpu(store)
        started, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        rebuilt = await rebuild(store, only)
        if profiler is not None:
            profiler.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_after = await _server_cpu(store)
        # Backends that ended before the second look are missed: a lower bound.
        cpu += sum(at - server_before.get(pid, 0.0) for pid, at in server_after.items())
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    return rebuilt[0].events, seconds, cpu


async def floor(url: str, decode: bool) -> tuple[int, float, float]:
    """Read the whole log as a rebuild does (batches of BATCH_EVENTS through ``read_all``),
    decoding each payload when ``decode``; (events, seconds, CPU seconds as ``measure``'s)."""
    async with open_store(url) as store:
        async with store.reading() as tx:
            batch = BATCH_EVENTS[tx.dialect]
        head = await store.head()
        server_before = await _server_cpu(store)
        started, cpu = time.perf_counter(), time.process_time()
        read_to, events = 0, 0
        with fewer_collections():  # as a rebuild runs
            while read_to < head:
                records = [r async for r in store.read_all(after=read_to, limit=min(batch, head - read_to))]
                if not records:
                    break
                if decode:
                    for record in records:
                        catalogue.decode(record.data)
                events += len(records)
                read_to = records[-1].position
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_after = await _server_cpu(store)
        cpu += sum(at - server_before.get(pid, 0.0) for pid, at in server_after.items())
    return events, seconds, cpu


async def bench(backend: str, args: argparse.Namespace) -> None:
    async def on(url: str) -> None:
        filled = time.perf_counter()
        head = await fill(url, args.runs, args.tasks_per_run)
        print(f"  log: {head:,} events in {time.perf_counter() - filled:.1f} s", file=sys.stderr)
        if args.floor:
            for what, decode in (("read", False), ("read + decode", True)) * 2:
                events, seconds, cpu = await floor(url, decode)
                load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
                print(f"| {backend} | {args.runs:,} | {events:,} | floor: {what} | - | {seconds:.2f} | "
                      f"{events / seconds:,.0f} | {cpu:.2f} | {events / cpu:,.0f} | {load} |", flush=True)
            return
        what = ", ".join(args.only) if args.only else "all projections"
        # First into empty live tables (every row is new at the swap), then again over the
        # tables it built: what a rebuild on a running server usually meets.
        for case in ("empty live tables", "live tables built"):
            events, seconds, cpu = await measure(url, args.only, args.profile and case == "live tables built")
            load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
            print(f"| {backend} | {args.runs:,} | {events:,} | {what} | {case} | {seconds:.2f} | "
                  f"{events / seconds:,.0f} | {cpu:.2f} | {events / cpu:,.0f} | {load} |", flush=True)
        if args.per_projection:
            async with open_store(url) as store:
                names = [spec.name for spec in select(store, args.only)]
            for name in names:
                events, seconds, cpu = await measure(url, [name], False)
                load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
                print(f"| {backend} | {args.runs:,} | {events:,} | {name} | live tables built | {seconds:.2f} | "
                      f"{events / seconds:,.0f} | {cpu:.2f} | {events / cpu:,.0f} | {load} |", flush=True)

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="runlog-bench-rebuild-") as folder:
            await on(f"sqlite:///{folder}/rebuild.db")
    else:
        async with postgres_databases(args.postgres_url, "rebuild") as (url,):
            await on(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tasks-per-run", type=int, default=0)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--per-projection", action="store_true")
    parser.add_argument("--floor", action="store_true", help="read (and decode) the log only: no fold, no write")
    args = parser.parse_args()
    print("| backend | runs | events | rebuilt | over | seconds | events/s | CPU s | events/CPU s | load average |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---|", flush=True)
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        asyncio.run(bench(backend, args))


if __name__ == "__main__":
    main()
