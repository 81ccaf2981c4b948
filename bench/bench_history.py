"""Run history at scale: N flow runs spread over 30 days, imported in bulk as generated events
(each run's stream appended in one call, as `runlog events import` appends, the inline
projections writing the runs tables), the history projection then caught up from its
checkpoint, then the history reads timed in process, as the route makes them.

    python -m bench.bench_history [--backend sqlite|postgres|both] [--runs N] [--repeat R] [--postgres-url URL]

Prints the import and catch-up rates, then p50 and p99 of: hourly over 7 days and daily over 30
days unfiltered (answered from the pre-aggregated projection, projections/run_history.py, and,
for comparison, by the per-request query), hourly over 7 days filtered by one tag (the query),
and the average lateness; with the load average, as the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from runlog.api.logging import configure_logging
from runlog.api.queries import history as queries
from runlog.api.queries.run_filters import FLOW_RUN_QUERY
from runlog.api.schemas import filters as f
from runlog.commands import flows
from runlog.commands.clock import ManualClock
from runlog.eventstore import NewEvent, open_store
from runlog.projections.catchup import catch_up
from runlog.projections.history import window
from runlog.projections.registry import inline_projections
from runlog.projections.run_history import RunHistoryProjection
from runlog.projections.tables import us
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.events import State, StateDetails, StateType

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = NOW - timedelta(days=30)
HOUR = 3_600_000_000


IMPORT_WINDOW = 2000
"""Runs appended concurrently; the store's single writer commits them in groups."""


def _event(event: catalogue.Event, event_id: uuid.UUID | None = None) -> NewEvent:
    return NewEvent(type=catalogue.event_type(event), data=catalogue.encode(event), id=event_id or uuid.uuid4())


def run_events(flow_id: uuid.UUID, n: int, count: int) -> tuple[str, list[NewEvent]]:
    """Run ``n`` of ``count``: Scheduled five minutes ahead of its expected start, then (nine in
    ten) Running up to two minutes late and Completed or (one in seven) Failed 30 s later; the
    tenth never started, late until now."""
    span = (NOW - START).total_seconds()
    run_id = uuid.uuid4()
    expected = START + timedelta(seconds=span * n / count)
    created = expected - timedelta(minutes=5)
    events = [_event(catalogue.FlowRunCreated(
        flow_run_id=run_id, flow_id=flow_id, name=f"run-{n}", tags=[f"t{n % 10}"], created=created,
    ))]
    states = [(StateType.SCHEDULED, "Scheduled", created)]
    if n % 10 != 9:
        started = expected + timedelta(seconds=n % 120)
        states.append((StateType.RUNNING, "Running", started))
        final = (StateType.FAILED, "Failed") if n % 7 == 0 else (StateType.COMPLETED, "Completed")
        states.append((*final, started + timedelta(seconds=30)))
    previous = None
    for kind, name, moment in states:
        state_id = uuid.uuid4()
        details = StateDetails(scheduled_time=expected) if kind is StateType.SCHEDULED else StateDetails()
        state = State(id=state_id, type=kind, name=name, timestamp=moment, state_details=details)
        events.append(_event(catalogue.FlowRunStateChanged(
            flow_run_id=run_id, state=state, initial_state_type=previous, forced=True,
        ), state_id))
        previous = kind
    return streams.flow_run(run_id), events


async def load(store, count: int, clock: ManualClock) -> int:
    """Import ``count`` runs; how many events that was."""
    flow, _ = await flows.register(store, "bench-history", [], clock=clock)
    in_flight: list[asyncio.Task] = []
    appended = 0
    for n in range(count):
        stream, events = run_events(flow.id, n, count)
        appended += len(events)
        in_flight.append(asyncio.create_task(store.append(stream, events)))
        if len(in_flight) >= IMPORT_WINDOW:
            await asyncio.gather(*in_flight)
            in_flight = []
    await asyncio.gather(*in_flight)
    return appended


async def timed(call, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def measure(url: str, count: int, repeat: int) -> dict[str, tuple[float, float]]:
    clock = ManualClock(NOW)
    async with open_store(url, projections=inline_projections()) as store:
        began = time.perf_counter()
        events = await load(store, count, clock)
        took = time.perf_counter() - began
        print(f"  imported {count} runs ({events} events) in {took:.1f} s: {events / took:,.0f} events/s")
        began = time.perf_counter()
        await catch_up(store, RunHistoryProjection(store))
        took = time.perf_counter() - began
        head = await store.head()
        print(f"  history projection caught up over {head} events in {took:.1f} s: {head / took:,.0f} events/s")
        end = us(NOW)
        week = window(end - 7 * 24 * HOUR, end, HOUR)  # type: ignore[operator]
        month = window(end - 30 * 24 * HOUR, end, 24 * HOUR)  # type: ignore[operator]
        tag = f.FlowRunCountRequest(flow_runs=f.FlowRunFilter(tags=f.FlowRunFilterTags(all_=["t3"])))
        everything = f.FlowRunCountRequest()

        def served(win):
            async def call():
                answer = await queries.flow_run_history(store, everything, win, NOW)
                assert answer.source == "aggregate", "expected the aggregate to answer"
            return call

        def queried(win, body):
            return lambda: queries.queried_history(store, "flow_runs", "fr", FLOW_RUN_QUERY, body, win, NOW)

        return {
            "hourly over 7 days (aggregate)": await timed(served(week), repeat),
            "daily over 30 days (aggregate)": await timed(served(month), repeat),
            "hourly over 7 days (query)": await timed(queried(week, everything), max(3, repeat // 5)),
            "daily over 30 days (query)": await timed(queried(month, everything), max(3, repeat // 5)),
            "hourly over 7 days, one tag": await timed(queried(week, tag), repeat),
            "average lateness": await timed(lambda: queries.average_lateness(store, everything, NOW), repeat),
        }


def report(backend: str, count: int, figures: dict[str, tuple[float, float]]) -> None:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"{backend}, {count} runs (load average {load}):")
    for name, (p50, p99) in figures.items():
        print(f"  {name:34s} p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                figures = await measure(f"sqlite:///{scratch}/bench.db", args.runs, args.repeat)
        else:
            async with postgres_databases(args.postgres_url, "history") as (url,):
                figures = await measure(url, args.runs, args.repeat)
        report(backend, args.runs, figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
