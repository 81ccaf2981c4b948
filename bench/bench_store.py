"""Event store benchmark: append throughput and latency, batch appends, replay speed and memory.

    python -m bench.bench_store [--backend sqlite|postgres|both] [--postgres-url URL]
                                [--duration SECONDS] [--read-events N]

Every run works on databases of its own: a SQLite file in a temporary directory, and on
PostgreSQL new databases created through the admin URL (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end, even on failure or ^C.

Per backend it measures:

1. single-event appends (``store.append(stream, [NewEvent(...)])``) by 1, 16 and 64
   concurrent appenders, each on its own stream: appends/s, p50/p99 latency, errors;
2. appends of 100-event batches by 1 and 4 appenders: events/s;
3. replay: fill a separate database with --read-events FlowRunStateChanged events, then time
   ``async for ev in store.read_all(): schema.events.decode(ev.data)`` and sample the process's
   resident memory while it runs;
4. PostgreSQL only: a baseline of 64 asyncpg connections each running single-row INSERTs
   (one implicit transaction each) into a plain table.

Progress goes to stderr; the report (markdown tables) goes to stdout. Client and server share
this machine's CPUs, so on a small machine the figures are CPU-bound: compare them with each
other, not with another machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from runlog.eventstore import NewEvent, open_store
from runlog.schema import events as schema_events

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SINGLE_CONCURRENCY = (1, 16, 64)
BATCH_CONCURRENCY = (1, 4)
BATCH_SIZE = 100
FILL_BATCH = 1000
FILL_CONCURRENCY = 4
PAYLOAD_POOL = 512

# Targets (see the project brief); checked and printed at the end.
SQLITE_MIN_APPENDS_64 = 5_000
PG_MAX_P99_MS_64 = 20.0
READ_MIN_EVENTS_PER_S = 300_000
READ_MAX_RSS_MB = 150.0

READ_COLD = "read_all + decode, first read after fill"
READ_DECODE = "read_all + decode"
READ_ONLY = "read_all only (no decode)"

_PROC = psutil.Process()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- payloads ---------------------------------------------------------------------------------

_LIFECYCLE = (
    schema_events.StateType.SCHEDULED,
    schema_events.StateType.PENDING,
    schema_events.StateType.RUNNING,
    schema_events.StateType.COMPLETED,
)
_MESSAGES = {
    schema_events.StateType.SCHEDULED: "Run scheduled by deployment 'etl/nightly'",
    schema_events.StateType.PENDING: None,
    schema_events.StateType.RUNNING: None,
    schema_events.StateType.COMPLETED: "All states completed.",
}
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def state_changed_payload(flow_run_id: uuid.UUID, step: int) -> bytes:
    """A realistic stored event: a flow run moving through its lifecycle (~500 bytes as JSON, ~360 stored)."""
    state_type = _LIFECYCLE[step % len(_LIFECYCLE)]
    previous = _LIFECYCLE[(step - 1) % len(_LIFECYCLE)] if step else None
    ts = _EPOCH + timedelta(seconds=step, microseconds=step * 37 % 1_000_000)
    details = schema_events.StateDetails(
        flow_run_id=flow_run_id,
        transition_id=uuid.uuid4(),
        scheduled_time=ts if state_type is schema_events.StateType.SCHEDULED else None,
        retriable=False if state_type is schema_events.StateType.RUNNING else None,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )
    state = schema_events.State(
        id=uuid.uuid4(),
        type=state_type,
        name=state_type.value.title(),
        timestamp=ts,
        message=_MESSAGES[state_type],
        state_details=details,
        data={"type": "reference", "storage_key": f"results/{flow_run_id.hex}.json"}
        if state_type is schema_events.StateType.COMPLETED
        else None,
    )
    event = schema_events.FlowRunStateChanged(
        flow_run_id=flow_run_id, state=state, initial_state_type=previous, forced=False
    )
    return schema_events.encode(event)


EVENT_TYPE = "flow_run.state_changed"


# -- measurement helpers ----------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def postgres_processes() -> dict[int, psutil.Process]:
    found = {}
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] and proc.info["name"].startswith("postgres"):
            found[proc.pid] = proc
    return found


def _cpu_seconds(proc: psutil.Process) -> float | None:
    try:
        times = proc.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return times.user + times.system


CpuMark = tuple[float, float, dict[int, float]]  # wall clock, client CPU s, CPU s per postgres pid


class CpuMeter:
    """CPU seconds used by this process and (optionally) every postgres process between marks."""

    def __init__(self, server: bool) -> None:
        self.server = server

    def mark(self) -> CpuMark:
        server: dict[int, float] = {}
        if self.server:
            for pid, proc in postgres_processes().items():
                seconds = _cpu_seconds(proc)
                if seconds is not None:
                    server[pid] = seconds
        client = _cpu_seconds(_PROC) or 0.0
        return time.perf_counter(), client, server

    @staticmethod
    def usage(start: CpuMark, end: CpuMark) -> tuple[float, float | None]:
        """(client, server) CPU as a percentage of one core; server is None when not metered."""
        wall = end[0] - start[0]
        client = 100.0 * (end[1] - start[1]) / wall
        if not end[2]:
            return client, None
        # Backends that started during the window count from zero.
        used = sum(seconds - start[2].get(pid, 0.0) for pid, seconds in end[2].items())
        return client, 100.0 * used / wall


class RssSampler:
    """Samples this process's resident set size from a thread, independent of the event loop."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = _PROC.memory_info().rss
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _PROC.memory_info().rss)


class BatchCounter:
    """Counts the store's group-commit transactions by wrapping its batch hook (bench-only)."""

    def __init__(self, store: object) -> None:
        self.batches = 0
        self.requests = 0
        original = getattr(store, "_write_batch", None)
        if original is None:
            return

        async def counted(requests):  # type: ignore[no-untyped-def]
            self.batches += 1
            self.requests += len(requests)
            return await original(requests)

        store._write_batch = counted  # type: ignore[attr-defined]

    def mark(self) -> tuple[int, int]:
        return self.batches, self.requests


@dataclass
class WriteResult:
    backend: str
    test: str
    concurrency: int
    events_per_call: int
    seconds: float
    latencies: list[float]  # seconds, sorted; only calls that completed inside the window
    errors: int
    error_samples: list[str] = field(default_factory=list)
    batches: int | None = None  # store transactions in the window
    requests: int | None = None
    cpu_client: float | None = None
    cpu_server: float | None = None

    @property
    def calls(self) -> int:
        return len(self.latencies)

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.calls * self.events_per_call / self.seconds

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 0.50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    @property
    def mean_batch(self) -> float | None:
        if not self.batches:
            return None
        return (self.requests or 0) / self.batches


@dataclass
class ReadResult:
    backend: str
    test: str
    events: int
    seconds: float
    rss_before: int
    rss_peak: int
    fill_events_per_s: float | None = None
    cpu_client: float | None = None
    cpu_server: float | None = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


async def run_load(
    *,
    backend: str,
    test: str,
    concurrency: int,
    events_per_call: int,
    duration: float,
    warmup: float,
    call: Callable[[int, int], Awaitable[object]],  # builds its arguments, returns the awaitable
    cpu: CpuMeter,
    counter: BatchCounter | None = None,
) -> WriteResult:
    """Await ``call(worker, i)`` in a loop on ``concurrency`` tasks for warmup + duration seconds.

    ``call`` builds its arguments (events, uuids) before the clock starts; only the awaiting
    is timed. Only calls that complete inside the measured window count toward rate and
    latency; every exception counts as an error, warm-up included.
    """
    loop_start = time.perf_counter()
    window_start = loop_start + warmup
    window_end = window_start + duration
    latencies: list[float] = []
    errors = 0
    samples: list[str] = []

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while True:
            if time.perf_counter() >= window_end:
                return
            pending = call(w, i)
            t0 = time.perf_counter()
            try:
                await pending
            except Exception as exc:  # noqa: BLE001 - every failure is an error to report
                errors += 1
                if len(samples) < 5:
                    samples.append(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                i += 1
            t1 = time.perf_counter()
            if window_start <= t1 <= window_end:
                latencies.append(t1 - t0)

    async def window_marks() -> tuple:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        first = (cpu.mark(), counter.mark() if counter else None)
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
        last = (cpu.mark(), counter.mark() if counter else None)
        return first, last

    marks = asyncio.create_task(window_marks())
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    (cpu0, batches0), (cpu1, batches1) = await marks
    client, server = CpuMeter.usage(cpu0, cpu1)
    latencies.sort()
    result = WriteResult(
        backend=backend,
        test=test,
        concurrency=concurrency,
        events_per_call=events_per_call,
        seconds=duration,
        latencies=latencies,
        errors=errors,
        error_samples=samples,
        cpu_client=client,
        cpu_server=server,
    )
    if batches0 is not None and batches1 is not None:
        result.batches = batches1[0] - batches0[0]
        result.requests = batches1[1] - batches0[1]
    return result


def describe(result: WriteResult) -> str:
    text = (
        f"  {result.test:<28} c={result.concurrency:<3} {result.calls_per_s:>10,.0f} calls/s "
        f"{result.events_per_s:>10,.0f} ev/s  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
        f"errors {result.errors}"
    )
    if result.mean_batch is not None:
        text += f"  mean batch {result.mean_batch:.1f} req"
    for sample in result.error_samples:
        text += f"\n    error: {sample}"
    return text


# -- store phases -----------------------------------------------------------------------------


async def bench_appends(backend: str, url: str, duration: float, warmup: float, cpu: CpuMeter) -> list[WriteResult]:
    payloads = [state_changed_payload(uuid.uuid4(), i) for i in range(PAYLOAD_POOL)]
    results: list[WriteResult] = []
    async with open_store(url) as store:
        counter = BatchCounter(store)
        for concurrency in SINGLE_CONCURRENCY:
            tag = uuid.uuid4().hex[:8]
            streams = [f"flow-run-bench-1x{concurrency}-{w}-{tag}" for w in range(concurrency)]

            def one(w: int, i: int, streams=streams) -> Awaitable[object]:
                data = payloads[(w * 7 + i) % PAYLOAD_POOL]
                return store.append(streams[w], [NewEvent(type=EVENT_TYPE, data=data, id=uuid.uuid4())])

            result = await run_load(
                backend=backend,
                test="append 1 event/call",
                concurrency=concurrency,
                events_per_call=1,
                duration=duration,
                warmup=warmup,
                call=one,
                cpu=cpu,
                counter=counter,
            )
            progress(describe(result))
            results.append(result)

        for concurrency in BATCH_CONCURRENCY:
            tag = uuid.uuid4().hex[:8]
            streams = [f"flow-run-bench-{BATCH_SIZE}x{concurrency}-{w}-{tag}" for w in range(concurrency)]

            def batch(w: int, i: int, streams=streams) -> Awaitable[object]:
                base = (w * 7 + i * BATCH_SIZE) % PAYLOAD_POOL
                events = [
                    NewEvent(type=EVENT_TYPE, data=payloads[(base + j) % PAYLOAD_POOL], id=uuid.uuid4())
                    for j in range(BATCH_SIZE)
                ]
                return store.append(streams[w], events)

            result = await run_load(
                backend=backend,
                test=f"append {BATCH_SIZE} events/call",
                concurrency=concurrency,
                events_per_call=BATCH_SIZE,
                duration=duration,
                warmup=warmup,
                call=batch,
                cpu=cpu,
                counter=counter,
            )
            progress(describe(result))
            results.append(result)
    return results


async def fill_store(url: str, total: int) -> float:
    """Append ``total`` events in 1000-event appends from a few concurrent appenders; events/s."""
    next_start = 0

    async def appender(store) -> None:  # type: ignore[no-untyped-def]
        nonlocal next_start
        while next_start < total:
            start = next_start
            count = min(FILL_BATCH, total - start)
            next_start += count
            flow_run_id = uuid.uuid4()
            events = [
                NewEvent(type=EVENT_TYPE, data=state_changed_payload(flow_run_id, step), id=uuid.uuid4())
                for step in range(count)
            ]
            await store.append(f"flow-run-{flow_run_id}", events)

    started = time.perf_counter()
    last_report = started
    async with open_store(url) as store:
        tasks = [asyncio.create_task(appender(store)) for _ in range(FILL_CONCURRENCY)]
        while not all(t.done() for t in tasks):
            await asyncio.wait(tasks, timeout=1.0)
            now = time.perf_counter()
            if now - last_report >= 5.0:
                progress(f"  filling: {min(next_start, total):,}/{total:,}")
                last_report = now
        for task in tasks:
            task.result()  # re-raise a failure
        head = await store.head()
    if head != total:
        raise RuntimeError(f"filled the store with {head} events, expected {total}")
    return total / (time.perf_counter() - started)


async def timed_read(backend: str, url: str, total: int, *, test: str, decode: bool, cpu: CpuMeter) -> ReadResult:
    """Time one full read_all() on a freshly opened store, sampling RSS and CPU throughout."""
    decode_event = schema_events.decode
    async with open_store(url) as store:
        gc.collect()
        rss_before = _PROC.memory_info().rss
        count = 0
        with RssSampler() as sampler:
            cpu0 = cpu.mark()
            started = time.perf_counter()
            if decode:
                async for ev in store.read_all():
                    decode_event(ev.data)
                    count += 1
            else:
                async for _ev in store.read_all():
                    count += 1
            seconds = time.perf_counter() - started
            client, server = CpuMeter.usage(cpu0, cpu.mark())
    if count != total:
        raise RuntimeError(f"read_all returned {count} events, expected {total}")
    return ReadResult(
        backend=backend,
        test=test,
        events=count,
        seconds=seconds,
        rss_before=rss_before,
        rss_peak=sampler.peak,
        cpu_client=client,
        cpu_server=server,
    )


async def settle(backend: str, url: str) -> str:
    """Bring a freshly filled database to the state a replay normally meets.

    Right after a bulk fill PostgreSQL still has a checkpoint's worth of dirty buffers to write
    and every row lacks its hint bits, so the first scan does background work (measured
    separately as the "first read after fill"). VACUUM sets hint bits and the visibility map,
    CHECKPOINT flushes the dirty buffers. SQLite has checkpointed its WAL when the filling store
    closed; a TRUNCATE checkpoint makes sure of it.
    """
    started = time.perf_counter()
    if backend == "postgres":
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute("VACUUM (ANALYZE) events")
            try:
                await conn.execute("CHECKPOINT")
                what = "VACUUM (ANALYZE) + CHECKPOINT"
            except asyncpg.InsufficientPrivilegeError:
                what = "VACUUM (ANALYZE); CHECKPOINT not permitted for this user"
        finally:
            await conn.close()
    else:
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        what = "wal_checkpoint(TRUNCATE)"
    return f"{what} in {time.perf_counter() - started:.1f} s"


async def bench_read(backend: str, url: str, total: int) -> list[ReadResult]:
    progress(f"  filling a fresh database with {total:,} events ({FILL_CONCURRENCY} appenders x {FILL_BATCH}/append)")
    fill_rate = await fill_store(url, total)
    progress(f"  filled at {fill_rate:,.0f} events/s")
    cpu = CpuMeter(server=backend == "postgres")
    results = []
    passes = (
        (READ_COLD, True),
        (None, None),  # settle
        (READ_DECODE, True),
        (READ_ONLY, False),
    )
    for test, decode in passes:
        if test is None:
            progress(f"  settled: {await settle(backend, url)}")
            continue
        result = await timed_read(backend, url, total, test=test, decode=bool(decode), cpu=cpu)
        if test == READ_COLD:
            result.fill_events_per_s = fill_rate
        progress(
            f"  {result.test:<34} {result.events_per_s:>10,.0f} ev/s  ({result.events:,} in {result.seconds:.2f} s)  "
            f"RSS before {result.rss_before / 2**20:.0f} MB, peak {result.rss_peak / 2**20:.0f} MB"
        )
        results.append(result)
    return results


async def bench_pg_baseline(dsn: str, duration: float, warmup: float, cpu: CpuMeter) -> WriteResult:
    """64 connections, each running one-row INSERTs (one implicit transaction per INSERT)."""
    concurrency = 64
    payloads = [state_changed_payload(uuid.uuid4(), i) for i in range(PAYLOAD_POOL)]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE baseline (id bigserial PRIMARY KEY, stream text NOT NULL, data bytea NOT NULL)"
        )
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        # Each worker holds its own connection for the whole run: releasing to the pool after
        # every INSERT would add asyncpg's reset query (another round trip) to each transaction.
        connections = [await pool.acquire() for _ in range(concurrency)]
        try:
            streams = [f"flow-run-baseline-{w}" for w in range(concurrency)]

            def insert(w: int, i: int) -> Awaitable[object]:
                return connections[w].execute(
                    "INSERT INTO baseline (stream, data) VALUES ($1, $2)",
                    streams[w],
                    payloads[(w * 7 + i) % PAYLOAD_POOL],
                )

            result = await run_load(
                backend="postgres",
                test="baseline: plain INSERT/tx",
                concurrency=concurrency,
                events_per_call=1,
                duration=duration,
                warmup=warmup,
                call=insert,
                cpu=cpu,
            )
        finally:
            for c in connections:
                await pool.release(c)
    finally:
        await pool.close()
    progress(describe(result))
    return result


# -- databases --------------------------------------------------------------------------------


def replace_database(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path="/" + name))


def asyncpg_dsn(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


@contextlib.asynccontextmanager
async def postgres_databases(admin_url: str, *suffixes: str) -> AsyncIterator[list[str]]:
    """Fresh databases (one per suffix), dropped on exit whatever happens."""
    token = uuid.uuid4().hex[:10]
    names = [f"runlog_bench_{token}_{s}" for s in suffixes]
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    created: list[str] = []
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
        yield [replace_database(admin_url, name) for name in names]
    finally:
        for name in created:
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # noqa: BLE001
                progress(f"WARNING: could not drop database {name}: {exc}")
        await admin.close()


async def postgres_info(admin_url: str) -> dict[str, str]:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        info = {}
        for setting in ("server_version", "synchronous_commit", "fsync", "shared_buffers", "max_connections"):
            info[setting] = await conn.fetchval(f"SHOW {setting}")
        return info
    finally:
        await conn.close()


def decode_cost_us(rounds: int = 5) -> float:
    """Microseconds schema.events.decode takes per event on this payload mix (best of rounds)."""
    payloads = [state_changed_payload(uuid.uuid4(), i) for i in range(PAYLOAD_POOL)]
    decode = schema_events.decode
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(40):
            for data in payloads:
                decode(data)
        best = min(best, (time.perf_counter() - started) / (40 * len(payloads)))
    return best * 1e6


# -- report -----------------------------------------------------------------------------------


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def fmt_cpu(result: WriteResult | ReadResult) -> str:
    client = f"{result.cpu_client:.0f}%" if result.cpu_client is not None else "-"
    server = f"{result.cpu_server:.0f}%" if result.cpu_server is not None else "-"
    return f"{client} / {server}"


@dataclass
class Check:
    backend: str
    target: str
    measured: str
    ok: bool


def checks_for(
    backend: str, writes: list[WriteResult], reads: list[ReadResult], baseline: WriteResult | None
) -> list[Check]:
    checks: list[Check] = []
    errors = sum(r.errors for r in writes if not r.test.startswith("baseline"))
    checks.append(Check(backend, "no append errors", f"{errors} errors", errors == 0))
    at64 = next(
        (r for r in writes if r.concurrency == 64 and r.events_per_call == 1 and not r.test.startswith("baseline")),
        None,
    )
    if at64 is not None and backend == "sqlite":
        checks.append(
            Check(
                backend,
                f">= {SQLITE_MIN_APPENDS_64:,} appends/s at 64 appenders",
                f"{at64.calls_per_s:,.0f} appends/s",
                at64.calls_per_s >= SQLITE_MIN_APPENDS_64,
            )
        )
    if at64 is not None and backend == "postgres":
        if baseline is not None:
            checks.append(
                Check(
                    backend,
                    "64 appenders beat the plain-INSERT baseline",
                    f"{at64.calls_per_s:,.0f} vs {baseline.calls_per_s:,.0f} tx/s",
                    at64.calls_per_s > baseline.calls_per_s,
                )
            )
        checks.append(
            Check(
                backend,
                f"p99 <= {PG_MAX_P99_MS_64:g} ms at 64 appenders",
                f"{at64.p99_ms:.2f} ms",
                at64.p99_ms <= PG_MAX_P99_MS_64,
            )
        )
    decoded = next((r for r in reads if r.test == READ_DECODE), None)
    if decoded is not None:
        checks.append(
            Check(
                backend,
                f"read_all + decode >= {READ_MIN_EVENTS_PER_S:,} events/s",
                f"{decoded.events_per_s:,.0f} events/s",
                decoded.events_per_s >= READ_MIN_EVENTS_PER_S,
            )
        )
        peak = max(r.rss_peak for r in reads) / 2**20
        checks.append(
            Check(backend, f"RSS < {READ_MAX_RSS_MB:g} MB while reading", f"peak {peak:.0f} MB", peak < READ_MAX_RSS_MB)
        )
    return checks


def print_report(
    args: argparse.Namespace,
    versions: dict[str, str],
    writes: list[WriteResult],
    reads: list[ReadResult],
    checks: list[Check],
) -> None:
    print()
    print("### runlog event store benchmark")
    print()
    cpu_model = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    memory = psutil.virtual_memory().total / 2**30
    print(
        f"- machine: {os.cpu_count()} CPUs{f' ({cpu_model})' if cpu_model else ''}, {memory:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}; client and server on the same CPUs"
    )
    print(f"- Python {platform.python_version()}, asyncpg {asyncpg.__version__}")
    for line in versions.values():
        print(f"- {line}")
    sizes = [len(state_changed_payload(uuid.uuid4(), step)) for step in range(len(_LIFECYCLE))]
    decode_us = decode_cost_us()
    print(
        f"- {args.duration:g} s per write test after a {args.warmup:g} s warm-up; each appender has its own stream; "
        f"payload: FlowRunStateChanged of {min(sizes)}-{max(sizes)} bytes as stored (MessagePack); "
        f"schema.events.decode alone takes {decode_us:.2f} us/event (a ceiling of {1e6 / decode_us:,.0f} events/s)"
    )
    print(
        "- baseline: 64 asyncpg connections from one pool, each held by one worker, running "
        "`INSERT INTO baseline (stream, data)` in autocommit (one transaction per INSERT)"
    )
    print(
        "- replay: fill with 1000-event appends, read once (first read after fill), settle "
        "(PostgreSQL: VACUUM + CHECKPOINT), then the measured reads; each read opens a fresh store"
    )
    print()
    if writes:
        print(
            "| backend | test | concurrency | calls/s | events/s | p50 ms | p99 ms | errors | "
            "mean batch (req/tx) | CPU client / server |"
        )
        print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for r in writes:
            batch = f"{r.mean_batch:.1f}" if r.mean_batch is not None else "-"
            print(
                f"| {r.backend} | {r.test} | {r.concurrency} | {fmt_int(r.calls_per_s)} | {fmt_int(r.events_per_s)} | "
                f"{fmt_ms(r.p50_ms)} | {fmt_ms(r.p99_ms)} | {r.errors} | {batch} | {fmt_cpu(r)} |"
            )
        print()
    if reads:
        print(
            "| backend | replay | events | events/s | seconds | RSS before | peak RSS | CPU client / server | "
            "fill rate (events/s) |"
        )
        print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
        for r in reads:
            fill = fmt_int(r.fill_events_per_s) if r.fill_events_per_s else "-"
            print(
                f"| {r.backend} | {r.test} | {r.events:,} | {fmt_int(r.events_per_s)} | {r.seconds:.2f} | "
                f"{r.rss_before / 2**20:.0f} MB | {r.rss_peak / 2**20:.0f} MB | {fmt_cpu(r)} | {fill} |"
            )
        print()
    if checks:
        print("| backend | target | measured | result |")
        print("|---|---|---|---|")
        for c in checks:
            print(f"| {c.backend} | {c.target} | {c.measured} | {'PASS' if c.ok else '**MISS**'} |")
        print()
        missed = [c for c in checks if not c.ok]
        print(f"{len(checks) - len(missed)}/{len(checks)} targets met." if missed else f"All {len(checks)} targets met.")


# -- main -------------------------------------------------------------------------------------


async def run_backend(
    backend: str, args: argparse.Namespace
) -> tuple[list[WriteResult], list[ReadResult], WriteResult | None]:
    progress(f"== {backend}")
    cpu = CpuMeter(server=backend == "postgres")
    writes: list[WriteResult] = []
    reads: list[ReadResult] = []
    baseline: WriteResult | None = None
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="runlog-bench-") as tmp:
            writes += await bench_appends(backend, f"sqlite:///{tmp}/append.db", args.duration, args.warmup, cpu)
            if args.read_events:
                reads += await bench_read(backend, f"sqlite:///{tmp}/read.db", args.read_events)
    else:
        async with postgres_databases(args.postgres_url, "append", "read") as (append_url, read_url):
            writes += await bench_appends(backend, append_url, args.duration, args.warmup, cpu)
            baseline = await bench_pg_baseline(asyncpg_dsn(append_url), args.duration, args.warmup, cpu)
            writes.append(baseline)
            if args.read_events:
                reads += await bench_read(backend, read_url, args.read_events)
    return writes, reads, baseline


async def main_async(args: argparse.Namespace) -> int:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    versions: dict[str, str] = {}
    if "sqlite" in backends:
        versions["sqlite"] = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL: the store's settings)"
    if "postgres" in backends:
        info = await postgres_info(args.postgres_url)
        versions["postgres"] = (
            f"PostgreSQL {info['server_version']} on the same machine (synchronous_commit={info['synchronous_commit']}, "
            f"fsync={info['fsync']}, shared_buffers={info['shared_buffers']})"
        )
    for line in versions.values():
        progress(line)
    writes: list[WriteResult] = []
    reads: list[ReadResult] = []
    checks: list[Check] = []
    for backend in backends:
        w, r, baseline = await run_backend(backend, args)
        writes += w
        reads += r
        checks += checks_for(backend, w, r, baseline)
    print_report(args, versions, writes, reads, checks)
    return 0


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def non_negative_int(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("RUNLOG_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin URL; the benchmark creates and drops its own databases there (default: %(default)s)",
    )
    parser.add_argument("--duration", type=positive_float, default=5.0, help="seconds per write test (default: 5)")
    parser.add_argument(
        "--warmup", type=float, default=0.5, help="unmeasured seconds before each write test (default: 0.5)"
    )
    parser.add_argument(
        "--read-events",
        type=non_negative_int,
        default=1_000_000,
        help="events to fill and replay; 0 skips (default: 1,000,000)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
