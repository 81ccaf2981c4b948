"""What `runlog run` costs: a trivial Prefect flow three ways, in the same run.

    python -m bench.bench_run [--rounds N] [--prefect-python PATH]

Each round runs the same script (one flow, one task) once each way, in turn:

  runlog run      `runlog run python flow.py` on a fresh SQLite file (the server is embedded)
  running server  `python flow.py` with PREFECT_API_URL at a `runlog server start` started once
                  before the rounds (the floor: the Prefect client's own import and shutdown)
  prefect temp    `python flow.py` with no PREFECT_API_URL: the client starts Prefect's own
                  temporary server

Each way keeps its own PREFECT_HOME (and runlog its database) across the rounds, and runs once
before them to warm up: the first run creates databases and schemas, as only a first run does.

Also measured: `runlog run python -c pass` against `python -c pass` (runlog's fixed cost with
no Prefect client at all), and how long after the child starts the embedded server answers
GET /api/health (the child polls it every 5 ms).

Reported: the median wall time of each, the CPU time (user + system) of the processes each
way starts (which the machine's load changes much less than the wall time) (and min/max), the extra `runlog run` adds over the
running server, and the load average before and after (`os.getloadavg`). The machine is shared:
compare the figures of one run with each other.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import ROOT, RUNLOG, runlog_server, server_env

FLOW = """
from prefect import flow, task

@task
def add_one(x: int) -> int:
    return x + 1

@flow
def bench_flow() -> int:
    return add_one(41)

if __name__ == "__main__":
    assert bench_flow() == 42
"""

# Prints how many seconds after its own start the server answered /health.
HEALTH = """
import os, time, urllib.request
start = time.monotonic()
url = os.environ["PREFECT_API_URL"] + "/health"
while True:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            if r.status == 200:
                break
    except OSError:
        time.sleep(0.005)
print(time.monotonic() - start)
"""


CPU: dict[str, list[float]] = {}
"""CPU seconds (user + system) of each way's processes, the command's and runlog's own, by key."""


def cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: Path, key: str | None = None) -> float:
    start, cpu = time.perf_counter(), cpu_of_children()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    if key is not None:  # the runs are one at a time, so the difference is this one's
        CPU.setdefault(key, []).append(cpu_of_children() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def client_env(base: dict[str, str], home: Path, pycache: Path) -> dict[str, str]:
    """The environment without any PREFECT_* or RUNLOG_* setting, with its own PREFECT_HOME.

    Bytecode is cached (under ``pycache``, filled by the warm-up) even where the caller's
    environment says PYTHONDONTWRITEBYTECODE, as an installed package's is: pip compiles it at
    install, while an editable checkout without a cache compiles every module on every start
    (about 0.25 s of runlog's start here, and as much again of Prefect's temporary server).
    """
    env = {k: v for k, v in base.items()
           if not k.startswith(("PREFECT_", "RUNLOG_")) and k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "PYTHONPYCACHEPREFIX": str(pycache)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prefect-python", default=sys.executable,
                        help="the Python whose prefect runs the flow (default: this one)")
    args = parser.parse_args()
    python = args.prefect_python
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in ("runlog run", "running server", "prefect temp", "run pass", "pass", "healthy")}
    with tempfile.TemporaryDirectory(prefix="bench_run_") as tmp:
        work = Path(tmp)
        script = work / "flow.py"
        script.write_text(FLOW)
        standing_env = server_env(work, f"sqlite:///{work}/standing.db")
        with runlog_server(standing_env, work / "server.log") as standing:
            # One runlog home for every round; the first `runlog run` creates the database and its
            # schema, as only a first run ever does, so it is left out of the figures.
            local = client_env(os.environ, work / "prefect-local", work / "pycache") | {
                "RUNLOG_HOME": str(work / "runlog"), "RUNLOG_DATABASE_URL": f"sqlite:///{work}/runlog.db",
            }
            runlog_run = [*RUNLOG, "run", "-q", python]
            against = client_env(os.environ, work / "prefect-standing", work / "pycache") | {"PREFECT_API_URL": standing.url}
            # Its default 20 s to start is not always enough on a busy machine.
            temp = client_env(os.environ, work / "prefect-temp", work / "pycache") | {
                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}
            ways = {
                "runlog run": ([*runlog_run, str(script)], local),
                "running server": ([python, str(script)], against),
                "prefect temp": ([python, str(script)], temp),
            }
            for argv, env in ways.values():  # warm-up, left out
                timed(argv, env, ROOT)
            for i in range(args.rounds):
                for key, (argv, env) in ways.items():
                    times[key].append(timed(argv, env, ROOT, key))
                times["run pass"].append(timed([*runlog_run, "-c", "pass"], local, ROOT))
                times["pass"].append(timed([python, "-c", "pass"], local, ROOT))
                healthy = subprocess.run([*runlog_run, "-c", HEALTH], env=local, cwd=ROOT, capture_output=True,
                                         text=True, timeout=300, check=True)
                times["healthy"].append(float(healthy.stdout))
                print(f"round {i + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                      file=sys.stderr)
    load_after = os.getloadavg()

    def med(key: str) -> float:
        return statistics.median(times[key])

    print(f"\n`runlog run` benchmark, {args.rounds} rounds (median, min-max), trivial flow with one task\n")
    print("| how | wall time |\n|---|---|")
    labels = {
        "runlog run": "`runlog run python flow.py`",
        "running server": "`python flow.py` against a running runlog server",
        "prefect temp": "`python flow.py`, Prefect's temporary server",
        "run pass": "`runlog run python -c pass`",
        "pass": "`python -c pass`",
        "healthy": "embedded server healthy, after the child's start",
    }
    for key, label in labels.items():
        print(f"| {label} | {med(key):.2f} s ({min(times[key]):.2f}-{max(times[key]):.2f}) |")
    print(f"\nrunlog run adds {med('runlog run') - med('running server'):+.2f} s over the running server "
          f"(target <= 0.5 s); Prefect's temporary server adds {med('prefect temp') - med('running server'):+.2f} s.")
    cpu = {k: statistics.median(v) for k, v in CPU.items()}
    print(f"CPU (user + system, median): runlog run {cpu['runlog run']:.2f} s, against the running server "
          f"{cpu['running server']:.2f} s (its server's own CPU not counted), Prefect's temporary server "
          f"{cpu['prefect temp']:.2f} s; runlog run's own: {cpu['runlog run'] - cpu['running server']:+.2f} s.")
    print(f"runlog run's fixed cost with no Prefect client: {med('run pass') - med('pass'):+.2f} s.")
    print("load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(*load_before, *load_after))


if __name__ == "__main__":
    main()
