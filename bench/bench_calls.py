"""Python calls the server makes per state transition: a figure a loaded machine does not move.

    python -m bench.bench_calls [--backend sqlite|postgres|both] [--clients 16] [--runs 60]
                                [--top 25] [--admin-url URL] [--runlog-command CMD]

CPU time per transition moves by up to a third from round to round on a shared 2-core machine;
the number of Python calls the server makes for the same work does not. This starts
``runlog server start`` under cProfile twice on a fresh database: once idle for as long as the
loaded run took, once with C clients each making R flow runs as bench_server's clients do
(create Pending, then Running, then Completed over the REST API), then stops it with SIGINT so
cProfile writes its figures. The idle run's calls are taken from the loaded run's, function by
function, and the rest divided by the transitions accepted (two per flow run; the creates are
not counted as transitions, as in bench_server). Printed: the total; the calls by the package
of the function called; by the package whose code made the call (a builtin such as isinstance
counted where it was called from); and the --top functions that add most.

cProfile sees the main thread only: on SQLite the driver thread's statements (where SQLite
itself works) are not in the figures; on PostgreSQL the driver works on the main thread, so the
figure is the whole server's Python. Batching in the group commit depends on timing, so a few
calls per transition move between runs; a difference of tens of calls is real.

To compare two checkouts, run this file with each checkout's own interpreter from that
checkout (``/path/to/checkout/.venv/bin/python -m bench.bench_calls``), or give
``--runlog-command`` the other checkout's ``runlog`` script: it is run by its path under
cProfile by the ``python`` beside it (its venv's), so it imports its own checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from types import SimpleNamespace

from bench.bench_server import (
    Load,
    Stats,
    fresh_database,
    progress,
    start_server,
    stop_server,
)

DEFAULT_ADMIN_URL = os.environ.get("RUNLOG_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

Key = tuple[str, int, str]


def _runlog_script(command: str | None) -> str:
    if command:
        return command
    script = os.path.join(os.path.dirname(sys.executable), "runlog")
    found = script if os.path.exists(script) else shutil.which("runlog")
    if not found:
        raise SystemExit("no runlog script next to this interpreter nor on PATH: give --runlog-command")
    return found


async def _profiled(backend: str, args: argparse.Namespace, workdir: str, label: str,
                    load_runs: int, idle_seconds: float) -> tuple[pstats.Stats, int, float]:
    """One profiled server: loaded with load_runs runs a client, or idle for idle_seconds."""
    prof = os.path.join(workdir, f"{label}.prof")
    script = _runlog_script(args.runlog_command)
    # The script's own interpreter (its venv's python beside it), so that it imports its checkout.
    python = os.path.join(os.path.dirname(script), "python")
    command = f"{python if os.path.exists(python) else sys.executable} -m cProfile -o {prof} {script}"
    sub = os.path.join(workdir, label)
    os.makedirs(sub)
    async with fresh_database("runlog", backend, args.admin_url, sub) as url:
        server = await start_server("runlog", backend, url, sub, "", command)
        started = time.perf_counter()
        transitions = 0
        try:
            if load_runs:
                stats = Stats()
                load = Load(server.base, args.clients, stats, shared_flow=False, rate=None)
                target = args.clients * load_runs * 2
                tasks = load.start()
                while stats.transitions_total < target and not all(t.done() for t in tasks):
                    await asyncio.sleep(0.05)
                load.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                transitions = stats.transitions_total
                if stats.errors:
                    progress(f"  errors: {dict(stats.errors)}")
            else:
                await asyncio.sleep(idle_seconds)
        finally:
            elapsed = time.perf_counter() - started
            await stop_server(server)
    if not os.path.exists(prof):
        raise SystemExit(f"the server wrote no profile ({prof}); its log:\n{server.log_tail()}")
    return pstats.Stats(prof), transitions, elapsed


def _calls(stats: pstats.Stats) -> dict[Key, int]:
    return {key: value[1] for key, value in stats.stats.items()}  # type: ignore[attr-defined]


def _made_by(stats: pstats.Stats) -> Counter[str]:
    """Calls made by the code of each package (a builtin's calls go to the package that called it)."""
    made: Counter[str] = Counter()
    for value in stats.stats.values():  # type: ignore[attr-defined]
        for caller, caller_value in value[4].items():
            made[_package(caller)] += caller_value[1]
    return made


def _package(key: Key) -> str:
    path = key[0]
    if path == "~":
        return "builtins"
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            rest = path.split(marker, 1)[1]
            if marker.startswith("/lib"):
                return "stdlib:" + rest.split("/")[1].removesuffix(".py")
            return rest.split("/")[0].removesuffix(".py")
    parts = path.split("/")
    for known in ("api", "eventstore", "projections", "notifier", "commands", "schema"):
        if known in parts:
            idx = len(parts) - 1 - parts[::-1].index(known)
            return "runlog." + "/".join(parts[idx:idx + 2]).removesuffix(".py")
    return path


async def measure(backend: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-calls-") as workdir:
        loaded, transitions, elapsed = await _profiled(backend, args, workdir, "loaded", args.runs, 0)
        idle, _, _ = await _profiled(backend, args, workdir, "idle", 0, elapsed)
    if not transitions:
        raise SystemExit("no transition was accepted")
    busy, quiet = _calls(loaded), _calls(idle)
    made = _made_by(loaded)
    made.subtract(_made_by(idle))
    diff = {key: n - quiet.get(key, 0) for key, n in busy.items()}
    total = sum(diff.values())
    by_package: Counter[str] = Counter()
    for key, n in diff.items():
        by_package[_package(key)] += n
    print(f"\n{backend}: {transitions:,} transitions ({args.clients} clients x {args.runs} runs), "
          f"{elapsed:.1f} s under cProfile")
    print(f"  calls per transition: {total / transitions:,.1f}")
    print("  by package (calls per transition):")
    for name, n in by_package.most_common(args.top):
        if abs(n / transitions) >= 0.5:
            print(f"    {n / transitions:8.1f}  {name}")
    print("  made by the code of (calls per transition):")
    for name, n in made.most_common(args.top):
        if abs(n / transitions) >= 0.5:
            print(f"    {n / transitions:8.1f}  {name}")
    print(f"  top {args.top} functions (calls per transition):")
    for key, n in sorted(diff.items(), key=lambda item: -item[1])[:args.top]:
        print(f"    {n / transitions:8.1f}  {_package(key)}  {key[2]}:{key[1]}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--runs", type=int, default=60, help="flow runs per client (60)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--runlog-command", default=None,
                        help="the runlog script to profile (default: the one beside this interpreter)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        asyncio.run(measure(backend, SimpleNamespace(**vars(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
