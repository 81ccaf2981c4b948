"""The event feed's fold alone, without a database: microseconds of CPU per log event for
``EventFeedProjection.changes`` (the derivation of Prefect events and their rows), in batches
of 5,000 events as a rebuild folds them, with the garbage collector at Python's default and as
a rebuild runs it (projections/collector.py).

    python -m bench.bench_feed_fold [--runs N] [--repeat R]

The log is bench_rebuild's (each run created, Pending, Running, Completed: three feed events of
four rows each per run, the event's and its flow's and two tags'), built in memory as recorded events. Times are process CPU time, the
least of --repeat rounds (each with a fresh projection, so its caches start empty as a
rebuild's do); what is left of bench_rebuild's time per event is reading the log and the
database writing the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.bench_rebuild import _new, run_events
from runlog.eventstore import RecordedEvent
from runlog.projections.collector import fewer_collections
from runlog.projections.event_feed import EventFeedProjection
from runlog.schema import events as catalogue
from runlog.schema import streams

BATCH = 5_000


def log_of(runs: int) -> list[RecordedEvent]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    flow_id = uuid.uuid4()
    appended = [(streams.flow(flow_id), [_new(catalogue.FlowCreated(flow_id=flow_id, name="bench", created=start))])]
    for index in range(runs):
        appended.extend(run_events(flow_id, index, 0, start + timedelta(seconds=index)))
    records: list[RecordedEvent] = []
    for stream_id, events in appended:
        for version, event in enumerate(events, 1):
            records.append(RecordedEvent(len(records) + 1, stream_id, version, event.id, event.type, event.data, start))
    return records


async def fold(records: list[RecordedEvent]) -> float:
    """CPU seconds to fold ``records`` into feed rows, a batch at a time (each batch's rows
    dropped once made, as a rebuild drops them once written)."""
    projection = EventFeedProjection(None)  # type: ignore[arg-type]  # a log in order reads nothing
    started = time.process_time()
    for at in range(0, len(records), BATCH):
        await projection.changes(records[at:at + BATCH])
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    records = log_of(args.runs)
    gc.collect()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{len(records):,} events ({args.runs:,} runs), least of {args.repeat} rounds, load {load}")
    for label, collector in (("default collector", None), ("fewer collections", fewer_collections)):
        best = float("inf")
        for _ in range(args.repeat):
            if collector is None:
                best = min(best, asyncio.run(fold(records)))
            else:
                with collector():
                    best = min(best, asyncio.run(fold(records)))
        print(f"  {label}: {best / len(records) * 1e6:.1f} us CPU per event")


if __name__ == "__main__":
    main()
