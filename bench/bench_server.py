"""HTTP server benchmark: runlog against Prefect 3's own server, over the Prefect REST API.

    python -m bench.bench_server [--target runlog|prefect|both] [--backend sqlite|postgres|both]
                                 [--clients N] [--duration S] [--warmup S] [--repeat R]
                                 [--scenarios throughput,memory,soak] [--memory-transitions N]
                                 [--soak SECONDS] [--rate TRANSITIONS_PER_S]
                                 [--prefect-python /work/prefect-venv/bin/python] [--scrape S]

Every run starts its server itself, on a free port of 127.0.0.1 (runlog through tests/servers.py,
as the test suite does: `--port 0` and the port its banner names), with a fresh database: a
SQLite file in a temporary directory, or on PostgreSQL a database created through
--admin-url (default postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end,
even on failure or ^C. The bench waits for GET /api/health and then drives the same load at
either server:

    N concurrent clients, each an aiohttp session with exactly one connection:
      POST /api/flows/ once (one flow name per client, or one shared with --shared-flow), then loop:
        POST /api/flow_runs/                {flow_id, state: {type: PENDING, name: Pending}}
        POST /api/flow_runs/{id}/set_state  {"state": {"type": "RUNNING", ...}, "force": false}
        POST /api/flow_runs/{id}/set_state  {"state": {"type": "COMPLETED", ...}, "force": false}

Each accepted set_state is one transition. Reported: transitions/s and flow runs/s over the
measured window (after --warmup), p50/p99 latency of set_state (and of the create), every
failure by HTTP status or exception (503 apart; failures are counted over the whole run,
warm-up included, and never retried), the CPU used by the server and by this load generator,
and the server's resident memory (psutil; the server process and its children) at the end.

--scrape S: GET runlog's /metrics every S seconds during each throughput run (as Prometheus
would, usually every 15 s), to see that scraping under load does not slow the hot path.

Scenarios:
  throughput  PostgreSQL with 16 clients and SQLite with 64 clients (--clients overrides),
              each selected target, --repeat times, each repeat on a fresh server and database;
  memory      runlog only: --memory-transitions (100,000) transitions, RSS printed at the start,
              after every fifth of them and at the end;
  soak        runlog only, --soak SECONDS of steady load (optionally paced to --rate), RSS
              sampled every --soak-interval (30) s, with the trend.

Logging: runlog runs with RUNLOG_LOGGING_LEVEL=WARNING and Prefect with
PREFECT_SERVER_LOGGING_LEVEL=WARNING (uvicorn's access log off), so neither server spends its
time writing a line per request. Prefect runs with its defaults otherwise (in-process
services on, UI and analytics off).

Progress goes to stderr; the report (markdown tables ready for the README) goes to stdout. The
client shares this machine's CPUs with the server: compare the figures with each other, not
with another machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import msgspec
import psutil

from tests.servers import RUNLOG, server_env, start_runlog, unused_port

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_PREFECT_PYTHON = "/work/prefect-venv/bin/python"
DEFAULT_CLIENTS = {"postgres": 16, "sqlite": 64}
HEALTH_TIMEOUT = 180.0
REQUEST_TIMEOUT = 60.0  # the Prefect client's default PREFECT_API_REQUEST_TIMEOUT
STOP_TIMEOUT = 40.0

# Targets from the project brief, checked at the end.
PG_MIN_RATIO = 30.0
PG_MAX_P99_MS = 25.0
SQLITE_MIN_TPS = 1_000.0
MEMORY_MAX_MB = 200.0

RUNNING_BODY = msgspec.json.encode(
    {"state": {"type": "RUNNING", "name": "Running", "state_details": {}}, "force": False}
)
COMPLETED_BODY = msgspec.json.encode(
    {"state": {"type": "COMPLETED", "name": "Completed", "state_details": {}}, "force": False}
)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "*/*",
    "User-Agent": "prefect/3.8.8 (API 0.8.4)",
    "X-PREFECT-API-VERSION": "0.8.4",
}

_decode = msgspec.json.Decoder()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all CPUs), for spotting noise."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


async def wait_quiet(max_wait: float, threshold: float = 30.0) -> str:
    """Wait (up to max_wait s) until the machine's busy CPU over 3 s is below threshold % of one
    core, so a run does not start while someone else's test suite is running."""
    if max_wait <= 0:
        return ""
    started = time.monotonic()
    while True:
        b0, t0 = machine_busy_seconds(), time.monotonic()
        await asyncio.sleep(3.0)
        busy = 100 * (machine_busy_seconds() - b0) / (time.monotonic() - t0)
        waited = time.monotonic() - started
        if busy < threshold:
            if waited > 4:
                progress(f"  machine quiet ({busy:.0f}% CPU busy) after {waited:.0f}s")
            return ""
        if waited >= max_wait:
            progress(f"  WARNING: machine still busy ({busy:.0f}% CPU) after {waited:.0f}s; running anyway")
            return f"started on a busy machine ({busy:.0f}% CPU)"
        progress(f"  machine busy ({busy:.0f}% CPU by others); waiting ({waited:.0f}s)")


def replace_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    target: str
    backend: str
    proc: subprocess.Popen
    port: int
    log_path: str
    started_at: float
    database_url: str = ""
    admin_url: str = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mb(self) -> float:
        total = 0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total / 2**20

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except OSError:
            return ""

    def log_count(self, needle: str) -> int:
        try:
            with open(self.log_path, errors="replace") as fh:
                return sum(line.count(needle) for line in fh)
        except OSError:
            return 0


def default_runlog_command() -> list[str]:
    """The `runlog` command of this Python's environment (else the suite's)."""
    exe = os.path.join(os.path.dirname(sys.executable), "runlog")
    if os.path.exists(exe):
        return [exe]
    return list(RUNLOG)


async def start_server(target: str, backend: str, database_url: str, workdir: str, prefect_python: str,
                       runlog_command: str | None = None, extra_env: dict[str, str] | None = None) -> Server:
    log_path = os.path.join(workdir, f"{target}-server.log")
    started = time.monotonic()
    if target == "runlog":
        env = {k: v for k, v in server_env(workdir, database_url, **(extra_env or {})).items()
               if not k.startswith("PREFECT_")}
        base = shlex.split(runlog_command) if runlog_command else default_runlog_command()
        progress(f"  starting runlog on {backend}: {shlex.join([*base, 'server', 'start', '--host', '127.0.0.1'])}")
        # The one way the suite starts a server too: --port 0, then the port its banner names.
        try:
            running = await asyncio.to_thread(
                start_runlog, env, Path(log_path), "--host", "127.0.0.1", command=base, cwd=Path(workdir),
                timeout=HEALTH_TIMEOUT, start_new_session=True,
            )
        except AssertionError as exc:
            raise RuntimeError(f"runlog did not start: {exc}") from None
        server = Server(target, backend, running.proc, running.port, log_path, started)
    else:
        # Prefect's server cannot be asked to pick a port and name it: give it one nothing uses.
        port = unused_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLOG_", "PREFECT_"))}
        env.update(
            PREFECT_HOME=os.path.join(workdir, "prefect-home"),
            PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",
            # Log the cause of each 503 (e.g. "database is locked"); the bench counts them.
            PREFECT_API_LOG_RETRYABLE_ERRORS="true",
        )
        cmd = [prefect_python, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        progress(f"  starting {target} on {backend}: {shlex.join(cmd)}")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = Server(target, backend, proc, port, log_path, started)
        try:
            await wait_healthy(server)
        except BaseException:
            await stop_server(server)
            raise
    progress(f"  {target} healthy after {time.monotonic() - server.started_at:.1f}s (pid {server.proc.pid})")
    return server


async def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.target} exited with status {server.proc.returncode} before it was healthy:\n"
                    + server.log_tail()
                )
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
                async with session.get(server.base + "/health") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.target} was not healthy within {HEALTH_TIMEOUT:.0f}s:\n" + server.log_tail())


async def stop_server(server: Server) -> None:
    """SIGINT (graceful for both servers), then SIGKILL to this server's own processes only."""
    proc = server.proc
    if proc.poll() is None:
        children = server.processes()[1:]
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            progress(f"  WARNING: {server.target} did not stop within {STOP_TIMEOUT:.0f}s; killing pid {proc.pid}")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        for child in children:
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()


@contextlib.asynccontextmanager
async def fresh_database(target: str, backend: str, admin_url: str, workdir: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        path = os.path.join(workdir, f"{target}.db")
        yield f"sqlite:///{path}" if target == "runlog" else f"sqlite+aiosqlite:///{path}"
        return
    name = f"bench_server_{target}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = replace_database(admin_url, name)
        if target == "prefect":
            url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
        yield url
    finally:
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            progress(f"WARNING: could not drop database {name}: {exc}")
        await admin.close()


@contextlib.asynccontextmanager
async def running_server(target: str, backend: str, args: argparse.Namespace) -> AsyncIterator[Server]:
    await wait_quiet(args.wait_quiet)
    with tempfile.TemporaryDirectory(prefix=f"bench-server-{target}-") as workdir:
        async with fresh_database(target, backend, args.admin_url, workdir) as url:
            # A bench that sets args.server_env (runlog settings such as RUNLOG_NOTIFIER_ENABLED)
            # gets them in the runlog server's environment.
            server = await start_server(target, backend, url, workdir, args.prefect_python, args.runlog_command,
                                        getattr(args, "server_env", None))
            server.database_url, server.admin_url = url, args.admin_url
            try:
                yield server
            finally:
                await stop_server(server)
                if args.keep_logs:
                    kept = os.path.join(args.keep_logs, f"{target}-{backend}-{server.port}.log")
                    os.makedirs(args.keep_logs, exist_ok=True)
                    with contextlib.suppress(OSError):
                        os.replace(server.log_path, kept)
                        progress(f"  server log kept at {kept}")


async def postgres_backends(server: Server) -> list[psutil.Process]:
    """The PostgreSQL backend processes serving this server's database (same machine)."""
    if server.backend != "postgres":
        return []
    name = urlsplit(server.database_url).path.lstrip("/")
    try:
        conn = await asyncpg.connect(server.admin_url)
        try:
            pids = [r[0] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)]
        finally:
            await conn.close()
    except Exception as exc:  # noqa: BLE001
        progress(f"  WARNING: cannot list PostgreSQL backends: {exc}")
        return []
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    return procs


def cpu_of(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            out[proc.pid] = t.user + t.system
    return out


# -- profiling --------------------------------------------------------------------------------


def py_spy_path() -> str | None:
    exe = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return exe if os.path.exists(exe) else shutil.which("py-spy")


def start_profiler(server: Server, seconds: float, out_dir: str, label: str,
                   gil: bool = False) -> tuple[subprocess.Popen, str] | None:
    """py-spy record --format raw (collapsed stacks) of the server for ``seconds``; --nonblocking
    so sampling does not pause the server (its cost is one more process on the CPUs)."""
    exe = py_spy_path()
    if exe is None:
        progress("  WARNING: py-spy not found; no profile")
        return None
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{label}.txt")
    cmd = [exe, "record", "--pid", str(server.proc.pid), "--duration", str(max(1, int(seconds))),
           "--rate", "200", "--nonblocking", "--format", "raw", "--output", path]
    if gil:
        cmd.append("--gil")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, path


_BOILERPLATE = ("click/", "api/cli.py", "commands/server.py", "api/server.py", "aiohttp/web.py", "<module>",
                "run_forever (", "run_until_complete (", "_run_once (", "Handle._run (")
_PACKAGES = (
    ("asyncpg/", "asyncpg (PostgreSQL driver)"),
    ("aiosqlite/", "aiosqlite (SQLite driver thread)"),
    ("sqlite3/", "sqlite3"),
    ("aiohttp/", "aiohttp (HTTP server)"),
    ("multidict/", "aiohttp (HTTP server)"),
    ("yarl/", "aiohttp (HTTP server)"),
    ("asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("structlog/", "structlog"),
    ("logging/", "logging"),
    ("api/", "runlog api/"),
    ("eventstore/", "runlog eventstore/"),
    ("projections/", "runlog projections/"),
    ("schema/", "runlog schema/"),
)


def _package(frame: str) -> str:
    for needle, name in _PACKAGES:
        if needle in frame:
            return name
    where = frame.partition(" (")[2]
    return "stdlib/other: " + where.split(":")[0].rsplit("/", 1)[-1]


def summarize_profile(path: str, top: int = 25) -> list[str]:
    """Shares of samples from py-spy's collapsed stacks: by package of the innermost frame, and
    per function (inclusive and self), leaving out the start-up frames every stack shares."""
    inclusive: Counter = Counter()
    own: Counter = Counter()
    packages: Counter = Counter()
    total = 0
    idle = 0
    try:
        fh = open(path, errors="replace")
    except OSError as exc:
        return [f"(no profile: {exc})"]
    with fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [f for f in stack.split(";") if f]
            if not frames:
                continue
            total += n
            leaf = frames[-1]
            if leaf.startswith(("select (", "poll (")) and "selectors.py" in leaf:
                idle += n
            own[_short(leaf)] += n
            packages[_package(leaf)] += n
            for name in {_short(f) for f in frames if not any(b in f for b in _BOILERPLATE)}:
                inclusive[name] += n
    if not total:
        return ["(empty profile)"]
    lines = [f"{total:,} samples ({idle / total:.0%} of them in the event loop's epoll wait)",
             "", "| innermost frame in | share |", "|---|---:|"]
    lines += [f"| {name} | {n / total:.1%} |" for name, n in packages.most_common(12)]
    lines += ["", "| function | inclusive | self |", "|---|---:|---:|"]
    for name, n in inclusive.most_common(top):
        lines.append(f"| `{name}` | {n / total:.1%} | {own[name] / total:.1%} |")
    lines += ["", "| top self time | self |", "|---|---:|"]
    for name, n in own.most_common(15):
        lines.append(f"| `{name}` | {n / total:.1%} |")
    return lines


def _short(frame: str) -> str:
    """'func (path/to/module.py:123)' -> 'func (module.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    short = "/".join(parts[-2:]) if len(parts) >= 2 else file
    return f"{name} ({short})"


# -- load -------------------------------------------------------------------------------------


@dataclass
class Stats:
    measure_from: float = 0.0  # perf_counter; requests finishing before it are warm-up
    started: float = field(default_factory=time.perf_counter)
    transitions: int = 0  # accepted set_state, measured window
    transitions_total: int = 0  # accepted set_state, whole run
    flow_runs: int = 0  # completed create+RUNNING+COMPLETED cycles, measured window
    creates: int = 0
    set_state_latency: list[float] = field(default_factory=list)
    set_state_finished: list[float] = field(default_factory=list)  # when each ended (perf_counter), beside set_state_latency until that is sorted
    create_latency: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # "HTTP 500", "HTTP 503", "ClientOSError", ...
    not_accepted: Counter = field(default_factory=Counter)  # set_state answered 2xx but not ACCEPT
    examples: dict = field(default_factory=dict)  # one response body per error kind


class Load:
    """Closed-loop clients; stop() ends them after their current request."""

    def __init__(self, base: str, clients: int, stats: Stats, *, shared_flow: bool, rate: float | None) -> None:
        self.base = base
        self.clients = clients
        self.stats = stats
        self.shared_flow = shared_flow
        self.rate = rate
        self.stopping = False
        self.run_tag = uuid.uuid4().hex[:8]

    def stop(self) -> None:
        self.stopping = True

    def _error(self, kind: str, body: object = None) -> None:
        self.stats.errors[kind] += 1
        if kind not in self.stats.examples and body is not None:
            text = body if isinstance(body, str) else repr(body)
            at = time.perf_counter() - self.stats.started
            self.stats.examples[kind] = f"{text[:300]} (first {at:.1f}s after the load started)"

    async def _post(self, session: aiohttp.ClientSession, path: str, body: bytes) -> tuple[int, object, float]:
        started = time.perf_counter()
        async with session.post(self.base + path, data=body, headers=HEADERS) as resp:
            raw = await resp.read()
            status = resp.status
        elapsed = time.perf_counter() - started
        try:
            payload = _decode.decode(raw) if raw else None
        except msgspec.DecodeError:
            payload = raw.decode(errors="replace")
        return status, payload, elapsed

    async def _set_state(self, session: aiohttp.ClientSession, run_id: str, body: bytes) -> bool:
        status, payload, elapsed = await self._post(session, f"/flow_runs/{run_id}/set_state", body)
        stats = self.stats
        if status >= 400:
            self._error(f"HTTP {status}", payload)
            return False
        outcome = payload.get("status") if isinstance(payload, dict) else None
        if outcome != "ACCEPT":
            stats.not_accepted[str(outcome)] += 1
            return False
        stats.transitions_total += 1
        if time.perf_counter() >= stats.measure_from:
            stats.transitions += 1
            stats.set_state_latency.append(elapsed)
            stats.set_state_finished.append(time.perf_counter())
        return True

    async def client(self, index: int) -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=False)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        stats = self.stats
        interval = 2 * self.clients / self.rate if self.rate else 0.0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            name = f"bench-flow-{self.run_tag}" if self.shared_flow else f"bench-flow-{self.run_tag}-{index}"
            flow_id = None
            while flow_id is None and not self.stopping:
                try:
                    status, payload, _ = await self._post(
                        session, "/flows/", msgspec.json.encode({"name": name, "tags": [], "labels": {}})
                    )
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    self._error(type(exc).__name__, str(exc))
                    await asyncio.sleep(0.1)
                    continue
                if status >= 400:
                    self._error(f"HTTP {status} (POST /flows/)", payload)
                    await asyncio.sleep(0.1)
                    continue
                flow_id = payload["id"]  # type: ignore[index]
            create_body = msgspec.json.encode({"flow_id": flow_id, "state": {"type": "PENDING", "name": "Pending"}})
            next_at = time.perf_counter()
            while not self.stopping:
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at = max(next_at + interval, time.perf_counter() - interval)
                try:
                    status, payload, elapsed = await self._post(session, "/flow_runs/", create_body)
                    if status >= 400:
                        self._error(f"HTTP {status}", payload)
                        continue
                    stats.creates += 1
                    if time.perf_counter() >= stats.measure_from:
                        stats.create_latency.append(elapsed)
                    run_id = payload["id"]  # type: ignore[index]
                    if not await self._set_state(session, run_id, RUNNING_BODY):
                        continue
                    if not await self._set_state(session, run_id, COMPLETED_BODY):
                        continue
                    if time.perf_counter() >= stats.measure_from:
                        stats.flow_runs += 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    self._error(type(exc).__name__, str(exc))
                    await asyncio.sleep(0.05)  # a refused connection would otherwise spin

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.client(i), name=f"bench-client-{i}") for i in range(self.clients)]


async def finish(tasks: list[asyncio.Task[None]], load: Load) -> None:
    load.stop()
    done, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT + 5)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            load._error(f"client crashed: {type(task.exception()).__name__}", str(task.exception()))


# -- scraping ---------------------------------------------------------------------------------


@dataclass
class Scrapes:
    """GET /metrics every --scrape seconds while the load runs, as Prometheus would (more often)."""

    latency: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    size: int = 0

    def summary(self) -> str:
        if not self.latency and not self.failures:
            return "no scrape"
        ordered = sorted(self.latency)
        failed = ", ".join(f"{n} x {kind}" for kind, n in self.failures.items()) or "none"
        return (f"{len(ordered)} scrapes, p50 {percentile(ordered, 0.5) * 1000:.1f} ms, max "
                f"{ordered[-1] * 1000 if ordered else float('nan'):.1f} ms, last {self.size:,} bytes, failed: {failed}")


async def scrape_loop(server: Server, interval: float, scrapes: Scrapes) -> None:
    """Scrape the server's /metrics every INTERVAL seconds until cancelled."""
    url = server.base.removesuffix("/api") + "/metrics"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session:
        while True:
            started = time.perf_counter()
            try:
                async with session.get(url) as response:
                    body = await response.read()
                if response.status == 200:
                    scrapes.latency.append(time.perf_counter() - started)
                    scrapes.size = len(body)
                else:
                    scrapes.failures[f"HTTP {response.status}"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                scrapes.failures[type(exc).__name__] += 1
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Result:
    target: str
    backend: str
    clients: int
    window: float
    stats: Stats
    rss_mb: float
    server_cpu: float  # percent of one core over the measured window
    bench_cpu: float
    died: str | None = None
    locked_in_log: int = 0  # Prefect: 503s it logged as retryable database errors
    locked_cause: str = ""
    machine_cpu: float = float("nan")  # whole machine, percent of one core
    profile: str | None = None
    pg_cpu: float = float("nan")  # this database's PostgreSQL backends, percent of one core
    scrapes: Scrapes | None = None  # --scrape: GET /metrics during the run

    @property
    def tps(self) -> float:
        return self.stats.transitions / self.window if self.window else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Transitions per second of the server's CPU: what a loaded, shared machine changes least."""
        return self.tps / (self.server_cpu / 100) if self.server_cpu > 0 else float("nan")

    @property
    def runs_per_s(self) -> float:
        return self.stats.flow_runs / self.window if self.window else 0.0

    def latency_ms(self, q: float, which: str = "set_state") -> float:
        values = self.stats.set_state_latency if which == "set_state" else self.stats.create_latency
        return percentile(values, q) * 1000

    @property
    def errors_total(self) -> int:
        return sum(self.stats.errors.values())

    @property
    def errors_503(self) -> int:
        return sum(n for kind, n in self.stats.errors.items() if kind.startswith("HTTP 503"))


async def throughput_run(server: Server, clients: int, args: argparse.Namespace) -> Result:
    stats = Stats()
    load = Load(server.base, clients, stats, shared_flow=args.shared_flow, rate=None)
    me = psutil.Process()
    start = time.perf_counter()
    stats.measure_from = start + args.warmup
    tasks = load.start()
    scrapes = Scrapes() if args.scrape and server.target == "runlog" else None
    scraper = asyncio.create_task(scrape_loop(server, args.scrape, scrapes)) if scrapes is not None else None
    await asyncio.sleep(args.warmup)
    profiler = None
    if args.py_spy and server.target == "runlog":
        label = f"runlog-{server.backend}-{clients}c-{time.strftime('%H%M%S')}"
        profiler = start_profiler(server, args.duration, args.py_spy, label + ("-gil" if args.py_spy_gil else ""),
                                  gil=args.py_spy_gil)
    pg_procs = await postgres_backends(server)
    pg0 = cpu_of(pg_procs)
    cpu0, me0, t0 = server.cpu_seconds(), sum(me.cpu_times()[:2]), time.perf_counter()
    busy0 = machine_busy_seconds()
    deadline = t0 + args.duration
    died = None
    while time.perf_counter() < deadline:
        await asyncio.sleep(min(0.5, max(0.0, deadline - time.perf_counter())))
        if server.proc.poll() is not None:
            died = f"server exited with status {server.proc.returncode}"
            break
    cpu1, me1, t1 = server.cpu_seconds(), sum(me.cpu_times()[:2]), time.perf_counter()
    busy1 = machine_busy_seconds()
    pg1 = cpu_of(pg_procs)
    stats.measure_from = float("inf")  # nothing after the window counts
    rss = server.rss_mb()
    if scraper is not None:
        scraper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scraper
    await finish(tasks, load)
    profile = None
    if profiler is not None:
        proc, path = profiler
        for _ in range(600):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            proc.terminate()
        profile = path
    window = t1 - t0
    stats.set_state_latency.sort()
    stats.create_latency.sort()
    return Result(
        server.target, server.backend, clients, window, stats, rss,
        server_cpu=100 * (cpu1 - cpu0) / window, bench_cpu=100 * (me1 - me0) / window, died=died,
        machine_cpu=100 * (busy1 - busy0) / window, profile=profile,
        pg_cpu=100 * sum(pg1[pid] - pg0[pid] for pid in pg1 if pid in pg0) / window
        if set(pg0) & set(pg1) else float("nan"),
        locked_in_log=server.log_count("Encountered retryable exception in request"),
        locked_cause="database is locked" if server.log_count("database is locked") else "",
        scrapes=scrapes,
    )


@dataclass
class MemorySample:
    label: str
    transitions: int
    elapsed: float
    rss_mb: float
    interval_tps: float = float("nan")  # since the previous sample
    machine_cpu: float = float("nan")  # since the previous sample, percent of one core


async def memory_run(server: Server, clients: int, total: int, args: argparse.Namespace) -> tuple[Result, list[MemorySample]]:
    """Run until ``total`` transitions, sampling RSS at the start and after every fifth."""
    stats = Stats()
    load = Load(server.base, clients, stats, shared_flow=args.shared_flow, rate=None)
    me = psutil.Process()
    step = max(1, total // 5)
    samples = [MemorySample("start (idle, after health check)", 0, 0.0, server.rss_mb())]
    progress(f"    RSS at start: {samples[0].rss_mb:.1f} MB")
    start = time.perf_counter()
    stats.measure_from = start
    cpu0, me0 = server.cpu_seconds(), sum(me.cpu_times()[:2])
    tasks = load.start()
    next_mark = step
    died = None
    last_busy, last_t, last_n = machine_busy_seconds(), start, 0
    while next_mark <= total:
        await asyncio.sleep(0.02)
        if server.proc.poll() is not None:
            died = f"server exited with status {server.proc.returncode}"
            break
        if stats.transitions_total >= next_mark:
            now, busy, count = time.perf_counter(), machine_busy_seconds(), stats.transitions_total
            sample = MemorySample(f"after {next_mark:,}", count, now - start, server.rss_mb(),
                                  (count - last_n) / (now - last_t), 100 * (busy - last_busy) / (now - last_t))
            last_busy, last_t, last_n = busy, now, count
            samples.append(sample)
            progress(f"    RSS after {next_mark:,} transitions ({sample.elapsed:.0f}s, {sample.interval_tps:,.0f}/s): "
                     f"{sample.rss_mb:.1f} MB")
            next_mark += step
    t1 = time.perf_counter()
    cpu1, me1 = server.cpu_seconds(), sum(me.cpu_times()[:2])
    stats.measure_from = float("inf")
    await finish(tasks, load)
    await asyncio.sleep(1.0)
    samples.append(MemorySample("end (load stopped, 1 s later)", stats.transitions_total, time.perf_counter() - start, server.rss_mb()))
    progress(f"    RSS at end: {samples[-1].rss_mb:.1f} MB")
    window = t1 - start
    stats.set_state_latency.sort()
    stats.create_latency.sort()
    result = Result(server.target, server.backend, clients, window, stats, samples[-1].rss_mb,
                    server_cpu=100 * (cpu1 - cpu0) / window, bench_cpu=100 * (me1 - me0) / window, died=died)
    return result, samples


@dataclass
class SoakSample:
    elapsed: float
    transitions: int
    interval_tps: float
    rss_mb: float
    p99_ms: float


async def soak_run(server: Server, clients: int, seconds: float, args: argparse.Namespace) -> tuple[Result, list[SoakSample]]:
    stats = Stats()
    load = Load(server.base, clients, stats, shared_flow=args.shared_flow, rate=args.rate)
    me = psutil.Process()
    start = time.perf_counter()
    stats.measure_from = start
    samples = [SoakSample(0.0, 0, 0.0, server.rss_mb(), float("nan"))]
    progress(f"    t=0s RSS {samples[0].rss_mb:.1f} MB")
    cpu0, me0 = server.cpu_seconds(), sum(me.cpu_times()[:2])
    tasks = load.start()
    died = None
    last_count, last_lat = 0, 0
    next_sample = start + args.soak_interval
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        await asyncio.sleep(min(0.5, next_sample - now, end - now))
        if server.proc.poll() is not None:
            died = f"server exited with status {server.proc.returncode}"
            break
        now = time.perf_counter()
        if now >= next_sample or now >= end:
            count = stats.transitions
            window_lat = sorted(stats.set_state_latency[last_lat:])
            sample = SoakSample(now - start, count, (count - last_count) / (now - samples[-1].elapsed - start),
                                server.rss_mb(), percentile(window_lat, 0.99) * 1000)
            samples.append(sample)
            progress(f"    t={sample.elapsed:.0f}s transitions {count:,} ({sample.interval_tps:,.0f}/s) "
                     f"RSS {sample.rss_mb:.1f} MB p99 {sample.p99_ms:.1f} ms")
            last_count, last_lat = count, len(stats.set_state_latency)
            next_sample += args.soak_interval
    t1 = time.perf_counter()
    cpu1, me1 = server.cpu_seconds(), sum(me.cpu_times()[:2])
    stats.measure_from = float("inf")
    await finish(tasks, load)
    window = t1 - start
    stats.set_state_latency.sort()
    stats.create_latency.sort()
    result = Result(server.target, server.backend, clients, window, stats, server.rss_mb(),
                    server_cpu=100 * (cpu1 - cpu0) / window, bench_cpu=100 * (me1 - me0) / window, died=died)
    return result, samples


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return float("nan")
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / var


# -- report -----------------------------------------------------------------------------------


def fmt_errors(result: Result) -> str:
    if not result.stats.errors:
        return "0"
    return ", ".join(f"{kind}: {n:,}" for kind, n in result.stats.errors.most_common())


def result_row(result: Result, label: str = "") -> str:
    s = result.stats
    errors_non_503 = result.errors_total - result.errors_503
    extra = []
    if s.not_accepted:
        extra.append("not accepted: " + ", ".join(f"{k} {n}" for k, n in s.not_accepted.items()))
    if result.died:
        extra.append(result.died)
    if result.stats.errors:
        extra.append("errors: " + fmt_errors(result))
    others = result.machine_cpu - result.server_cpu - result.bench_cpu - (0 if result.pg_cpu != result.pg_cpu else result.pg_cpu)
    if others > 30:
        extra.append(f"noise: ~{others:.0f}% CPU used by other processes" + (" (incl. PostgreSQL)" if result.pg_cpu != result.pg_cpu else ""))
    if result.locked_in_log:
        cause = f" ('{result.locked_cause}')" if result.locked_cause else ""
        extra.append(f"server log: {result.locked_in_log:,} retryable DB errors{cause}")
    return (
        f"| {result.target}{label} | {result.backend} | {result.clients} | {result.tps:,.0f} | {result.runs_per_s:,.0f} "
        f"| {result.latency_ms(0.5):.1f} | {result.latency_ms(0.99):.1f} | {result.latency_ms(0.99, 'create'):.1f} "
        f"| {errors_non_503:,} | {result.errors_503:,} | {result.rss_mb:.0f} | {result.server_cpu:.0f}% "
        f"| {result.per_cpu_second:,.0f} | {result.bench_cpu:.0f}% | {'-' if result.pg_cpu != result.pg_cpu else f'{result.pg_cpu:.0f}%'} "
        f"| {result.machine_cpu:.0f}% | {'; '.join(extra) or '-'} |"
    )


TABLE_HEAD = (
    "| server | backend | clients | transitions/s | flow runs/s | set_state p50 ms | set_state p99 ms "
    "| create p99 ms | errors (non-503) | 503s | server RSS MB | server CPU | transitions per server CPU s "
    "| bench CPU | PG CPU | machine CPU | notes |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    values = [v for v in values if v == v]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    med = sorted(values)[len(values) // 2]
    if len(values) == 1 or lo == hi:
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(lo)}–{fmt.format(hi)})"


def summary_rows(groups: dict[tuple[str, str], list[Result]]) -> list[str]:
    rows = [
        "| server | backend | clients | runs | transitions/s | flow runs/s | set_state p50 ms | set_state p99 ms "
        "| errors (non-503) | 503s | server RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (target, backend), results in groups.items():
        rows.append(
            f"| {target} | {backend} | {results[0].clients} | {len(results)} "
            f"| {spread([r.tps for r in results])} | {spread([r.runs_per_s for r in results])} "
            f"| {spread([r.latency_ms(0.5) for r in results], '{:.1f}')} "
            f"| {spread([r.latency_ms(0.99) for r in results], '{:.1f}')} "
            f"| {spread([float(r.errors_total - r.errors_503) for r in results])} "
            f"| {spread([float(r.errors_503) for r in results])} | {spread([r.rss_mb for r in results])} |"
        )
    return rows


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] if values else float("nan")


def check_targets(groups: dict[tuple[str, str], list[Result]], memory: dict[str, list[MemorySample]],
                  soaks: dict[str, list[SoakSample]]) -> list[str]:
    lines = ["| target | measured | met? |", "|---|---|---|"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("yes" if ok else "**NO**")

    pg_runlog, pg_prefect = groups.get(("runlog", "postgres")), groups.get(("prefect", "postgres"))
    if pg_runlog and pg_prefect:
        ratio = median([r.tps for r in pg_runlog]) / max(1e-9, median([r.tps for r in pg_prefect]))
        worst = min(r.tps for r in pg_runlog) / max(1e-9, max(r.tps for r in pg_prefect))
        lines.append(f"| PostgreSQL: runlog >= {PG_MIN_RATIO:.0f}x Prefect's transitions/s "
                     f"| {ratio:.1f}x (median/median; worst pairing {worst:.1f}x) | {verdict(ratio >= PG_MIN_RATIO)} |")
    if pg_runlog:
        p99 = [r.latency_ms(0.99) for r in pg_runlog]
        lines.append(f"| PostgreSQL: runlog set_state p99 <= {PG_MAX_P99_MS:.0f} ms "
                     f"| {spread(p99, '{:.1f}')} ms | {verdict(max(p99) <= PG_MAX_P99_MS)} |")
    sq_runlog = groups.get(("runlog", "sqlite"))
    if sq_runlog:
        errs = sum(r.errors_total for r in sq_runlog)
        n503 = sum(r.errors_503 for r in sq_runlog)
        tps = [r.tps for r in sq_runlog]
        clients = sq_runlog[0].clients
        lines.append(f"| SQLite, {clients} clients: runlog zero errors and zero 503s "
                     f"| {errs} errors, {n503} 503s over {len(sq_runlog)} runs | {verdict(errs == 0)} |")
        lines.append(f"| SQLite, {clients} clients: runlog >= {SQLITE_MIN_TPS:,.0f} transitions/s "
                     f"| {spread(tps)} | {verdict(min(tps) >= SQLITE_MIN_TPS)} |")
    for backend, samples in memory.items():
        after = [s for s in samples if s.label.startswith("after")]
        last = after[-1] if after else samples[-1]
        peak = max(s.rss_mb for s in samples)
        growth = (after[-1].rss_mb - after[0].rss_mb) if len(after) >= 2 else float("nan")
        lines.append(f"| runlog memory < {MEMORY_MAX_MB:.0f} MB after {last.transitions:,} transitions ({backend}) "
                     f"| {last.rss_mb:.0f} MB (peak {peak:.0f} MB) | {verdict(peak < MEMORY_MAX_MB)} |")
        lines.append(f"| runlog memory not growing ({backend}, from the first to the last fifth) "
                     f"| {growth:+.1f} MB | {verdict(growth < 10) if growth == growth else 'n/a'} |")
    for backend, samples in soaks.items():
        tail = samples[len(samples) // 3:]
        slope = slope_mb_per_min([(s.elapsed, s.rss_mb) for s in tail])
        lines.append(f"| runlog soak memory trend ({backend}, last two thirds) | {slope:+.2f} MB/min, "
                     f"{samples[0].rss_mb:.0f} → {samples[-1].rss_mb:.0f} MB | {verdict(slope < 0.5)} |")
    return lines


def environment_lines(args: argparse.Namespace) -> list[str]:
    prefect_version = "not used"
    if args.target in ("prefect", "both"):
        with contextlib.suppress(Exception):
            prefect_version = subprocess.run(
                [args.prefect_python, "-c", "import prefect, sys; print(prefect.__version__, sys.version.split()[0])"],
                capture_output=True, text=True, timeout=120, check=True,
            ).stdout.strip()
    revision = "unknown"
    with contextlib.suppress(Exception):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        revision = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        revision += " (with uncommitted changes)" if dirty else ""
    if args.runlog_command:
        revision += f"; runlog started with --runlog-command {args.runlog_command!r}"
    return [
        f"Command: `python -m bench.bench_server {shlex.join(sys.argv[1:])}`".replace("`python -m bench.bench_server `", "`python -m bench.bench_server`"),
        "",
        f"Machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} "
        f"{platform.release()}; load generator and servers share these CPUs. "
        f"runlog revision {revision}, Python {platform.python_version()}, aiohttp {aiohttp.__version__}; Prefect (version, Python): {prefect_version}.",
        "",
        "runlog ran with RUNLOG_LOGGING_LEVEL=WARNING and Prefect with PREFECT_SERVER_LOGGING_LEVEL=WARNING "
        "(no per-request log lines) and PREFECT_API_LOG_RETRYABLE_ERRORS=true (the cause of each 503 is logged); "
        "Prefect otherwise stock (in-process services on, UI and analytics off). "
        "Each run: a fresh server and database; each client one connection (aiohttp); "
        f"warm-up {args.warmup:g} s excluded, measured window {args.duration:g} s. A transition = one accepted "
        "set_state (RUNNING or COMPLETED); flow runs/s = completed create+RUNNING+COMPLETED cycles. "
        "Errors are counted over the whole run (warm-up included) and are not retried. "
        "Server RSS = the server process and its children at the end of the window; CPU = percent of one core "
        f"(PG CPU = the PostgreSQL backends connected to the run's database when the window opened; machine CPU = all {os.cpu_count()} CPUs busy, including PostgreSQL and anything else running: "
        f"the most is {100 * (os.cpu_count() or 1)}%).",
    ]


# -- main -------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    targets = ["runlog", "prefect"] if args.target == "both" else [args.target]
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if args.soak and "soak" not in scenarios:
        scenarios.append("soak")
    if "soak" in scenarios and not args.soak:
        args.soak = 600.0
    if args.target == "prefect":
        scenarios = [s for s in scenarios if s == "throughput"]

    def clients_for(backend: str) -> int:
        return args.clients or DEFAULT_CLIENTS[backend]

    out: list[str] = ["## Server benchmark", "", *environment_lines(args), ""]
    groups: dict[tuple[str, str], list[Result]] = {}
    memory: dict[str, list[MemorySample]] = {}
    memory_results: dict[str, Result] = {}
    soaks: dict[str, list[SoakSample]] = {}
    soak_results: dict[str, Result] = {}

    if "throughput" in scenarios:
        for backend in backends:
            for repeat in range(args.repeat):
                for target in targets:
                    clients = clients_for(backend)
                    progress(f"throughput: {target} / {backend} / {clients} clients, run {repeat + 1}/{args.repeat}")
                    async with running_server(target, backend, args) as server:
                        result = await throughput_run(server, clients, args)
                    groups.setdefault((target, backend), []).append(result)
                    progress("  " + result_row(result))
                    if result.scrapes is not None:
                        progress(f"    /metrics: {result.scrapes.summary()}")
                    for kind, example in result.stats.examples.items():
                        progress(f"    first {kind}: {example}")
        out += ["### Throughput (every run)", "", TABLE_HEAD]
        for (target, backend), results in groups.items():
            for i, result in enumerate(results):
                out.append(result_row(result, f" #{i + 1}" if len(results) > 1 else ""))
        scraped = [(r, i) for rs in groups.values() for i, r in enumerate(rs) if r.scrapes is not None]
        if scraped:
            out += ["", f"GET /metrics every {args.scrape:g} s during each runlog run (warm-up included):", ""]
            out += [f"- {r.backend} #{i + 1}: {r.scrapes.summary()}" for r, i in scraped]  # type: ignore[union-attr]
        out += ["", "### Throughput (median, range across runs)", "", *summary_rows(groups), ""]
        failures = [(r, k, e) for rs in groups.values() for r in rs for k, e in r.stats.examples.items()]
        if failures:
            out += ["Errors seen (first response body of each kind):", ""]
            seen = set()
            for r, kind, example in failures:
                if (r.target, r.backend, kind) in seen:
                    continue
                seen.add((r.target, r.backend, kind))
                out.append(f"- {r.target} / {r.backend} / {kind}: `{example}`")
            out.append("")

    profiled = [r for rs in groups.values() for r in rs if r.profile]
    for r in profiled:
        out += [f"### py-spy profile of runlog, {r.backend}, {r.clients} clients ({r.tps:,.0f} transitions/s "
                f"during it; profiler running)", "", f"Raw collapsed stacks: `{r.profile}`", "",
                *summarize_profile(r.profile), ""]

    if "memory" in scenarios and "runlog" in targets and args.memory_transitions:
        for backend in backends:
            clients = clients_for(backend)
            progress(f"memory: runlog / {backend} / {clients} clients, {args.memory_transitions:,} transitions")
            async with running_server("runlog", backend, args) as server:
                result, samples = await memory_run(server, clients, args.memory_transitions, args)
            memory[backend], memory_results[backend] = samples, result
        for backend, samples in memory.items():
            r = memory_results[backend]
            out += [f"### runlog memory, {backend}, {r.clients} clients, {args.memory_transitions:,} transitions", "",
                    "| point | transitions | elapsed s | server RSS MB | transitions/s since previous | machine CPU since previous |",
                    "|---|---:|---:|---:|---:|---:|"]
            out += [f"| {s.label} | {s.transitions:,} | {s.elapsed:.0f} | {s.rss_mb:.1f} "
                    f"| {'-' if s.interval_tps != s.interval_tps else f'{s.interval_tps:,.0f}'} "
                    f"| {'-' if s.machine_cpu != s.machine_cpu else f'{s.machine_cpu:.0f}%'} |" for s in samples]
            out += ["", f"Over the run: {r.tps:,.0f} transitions/s, set_state p50 {r.latency_ms(0.5):.1f} ms / "
                        f"p99 {r.latency_ms(0.99):.1f} ms, errors: {fmt_errors(r)}, server CPU {r.server_cpu:.0f}%.", ""]

    if "soak" in scenarios and "runlog" in targets:
        backend = backends[0]
        clients = clients_for(backend)
        progress(f"soak: runlog / {backend} / {clients} clients, {args.soak:g} s"
                 + (f", paced to {args.rate:g} transitions/s" if args.rate else ""))
        async with running_server("runlog", backend, args) as server:
            result, samples = await soak_run(server, clients, args.soak, args)
        soaks[backend], soak_results[backend] = samples, result
        pace = f", paced to {args.rate:g} transitions/s" if args.rate else ", unpaced (closed loop)"
        out += [f"### runlog soak, {backend}, {clients} clients, {args.soak:g} s{pace}", "",
                "| t s | transitions | transitions/s (interval) | set_state p99 ms (interval) | server RSS MB |",
                "|---:|---:|---:|---:|---:|"]
        out += [f"| {s.elapsed:.0f} | {s.transitions:,} | {s.interval_tps:,.0f} | {s.p99_ms:.1f} | {s.rss_mb:.1f} |"
                for s in samples]
        tail = samples[len(samples) // 3:]
        out += ["", f"Trend over the last two thirds: {slope_mb_per_min([(s.elapsed, s.rss_mb) for s in tail]):+.2f} MB/min; "
                    f"whole run {result.tps:,.0f} transitions/s, p99 {result.latency_ms(0.99):.1f} ms, "
                    f"errors: {fmt_errors(result)}; server CPU {result.server_cpu:.0f}%, "
                    f"{result.per_cpu_second:,.0f} transitions per server CPU s "
                    f"(paced with --rate: the same load for any checkout, whatever else the machine runs).", ""]

    if groups or memory or soaks:
        out += ["### Targets", "", *check_targets(groups, memory, soaks), ""]
    print("\n".join(out), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("runlog", "prefect", "both"), default="both")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--clients", type=int, default=None,
                        help="concurrent clients (default: 16 on PostgreSQL, 64 on SQLite)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per throughput run (20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (3)")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs per server and backend (1)")
    parser.add_argument("--scenarios", default="throughput,memory",
                        help="comma list of throughput, memory, soak (default throughput,memory; --soak adds soak)")
    parser.add_argument("--memory-transitions", type=int, default=100_000,
                        help="transitions in the runlog memory run (100000; 0 skips it)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="run a runlog soak of this many seconds on the first backend, RSS every --soak-interval")
    parser.add_argument("--soak-interval", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=None,
                        help="soak only: pace the load to this many transitions/s in total (default: unpaced)")
    parser.add_argument("--shared-flow", action="store_true", help="all clients register one flow name")
    parser.add_argument("--prefect-python", default=DEFAULT_PREFECT_PYTHON)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL URL used to create/drop databases")
    parser.add_argument("--runlog-command", default=None, metavar="CMD",
                        help="start runlog with CMD instead of this venv's `runlog` (e.g. another checkout's); "
                             "'server start --host 127.0.0.1 --port P' is appended")
    parser.add_argument("--py-spy", default=None, metavar="DIR",
                        help="profile runlog during each throughput window with py-spy; raw stacks and a summary")
    parser.add_argument("--py-spy-gil", action="store_true",
                        help="with --py-spy: only samples holding the GIL (Python CPU; no waiting, no syscalls)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each server start, wait up to this long for the machine to be idle (< 30%% CPU)")
    parser.add_argument("--scrape", type=float, default=0.0, metavar="SECONDS",
                        help="throughput: GET runlog's /metrics every SECONDS during the run, as Prometheus "
                             "would, and report the scrapes (default: no scraping)")
    parser.add_argument("--keep-logs", default=None, metavar="DIR", help="keep each server's log in DIR")
    args = parser.parse_args(argv)
    if args.clients is not None and args.clients < 1:
        parser.error("--clients must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        progress("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
