"""The runs fold alone, without a database: microseconds of CPU per event, one event at a time
(``evolve_flow_run``, what a rebuild did before) against each run's events at once
(``runs_batch.fold_flow_run``), and the row each run's final view becomes.

    python -m bench.bench_fold [--runs N] [--repeat R]

The log is bench_rebuild's (each run created, Pending, Running, Completed). Times are process
CPU time, the least of --repeat rounds, so a loaded machine disturbs them less than wall time
(it still does: caches and cores are shared).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bench.bench_rebuild import run_events
from runlog.projections.runs import evolve_flow_run
from runlog.projections.runs_batch import fold_flow_run
from runlog.projections.runs_writer import _flow_run_row
from runlog.schema import events as catalogue


def _least(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = fn()
        best = min(best, time.process_time() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    flow_id = uuid.uuid4()
    streams: dict[str, list[tuple[int, str, bytes]]] = {}
    for index in range(args.runs):
        for stream_id, events in run_events(flow_id, index, 0, start + timedelta(seconds=index)):
            streams[stream_id] = [(version, e.type, e.data) for version, e in enumerate(events, 1)]
    count = sum(len(events) for events in streams.values())

    def one_by_one() -> dict[str, object]:
        views = {}
        for stream_id, events in streams.items():
            view = None
            for version, _type, data in events:
                view = evolve_flow_run(view, catalogue.decode(data), version)
            views[stream_id] = view
        return views

    def at_once() -> dict[str, object]:
        return {stream_id: fold_flow_run(None, events) for stream_id, events in streams.items()}

    slow, before = _least(one_by_one, args.repeat)
    fast, after = _least(at_once, args.repeat)
    assert before == after
    rows, _ = _least(lambda: [_flow_run_row(view) for view in after.values()], args.repeat)  # type: ignore[union-attr, arg-type]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print("| events | one at a time (us/event) | at once (us/event) | rows (us/event) | load average |")
    print("|---:|---:|---:|---:|---|")
    print(f"| {count:,} | {slow / count * 1e6:.2f} | {fast / count * 1e6:.2f} | {rows / count * 1e6:.2f} | {load} |")


if __name__ == "__main__":
    main()
