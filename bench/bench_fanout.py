"""Fan-out under load: many runs failing, each alert sent to three channels, while other
clients' set_state latency is measured with the notifier on and off.

    python -m bench.bench_fanout [--backend sqlite|postgres|both] [--failing 1000] [--duration 60]
                                 [--channels webhook,mattermost,opsgenie] [--clients 8] [--rate 200]
                                 [--repeat 2] [--batch-paths] [--control] [--notifier-process]
                                 [--interleave SECONDS]

Each run starts a fresh runlog server (bench_server's machinery: its own database, free port)
and three receivers on 127.0.0.1, one per channel, in a process of their own (a real channel's
receiver is not on the loop of the clients being timed; --receivers-in-process serves them on
the bench's loop, as the bench did until 2026-12-07, where each alert's request delays the
timed clients' answers a little). Through the stock Prefect client it saves
one notification block per channel (the vendor kinds point at their receiver through
RUNLOG_NOTIFIER_BASE_URLS, the way a proxy or a test would) and one automation sending every
`prefect.flow-run.Failed` event to all three. Then, for --duration seconds:

  failing  --failing flow runs created, set Running and set Failed, started at an even pace
           over the window (not a burst);
  others   --clients clients doing create -> Running -> Completed at --rate transitions per
           second in all (bench_server's paced load); their set_state latencies are the figure.

After the window the bench waits (up to --drain s) for every alert to arrive and then a moment
more, to see duplicates. Each configuration runs --repeat times with the notifier on and with
RUNLOG_NOTIFIER_ENABLED=false, alternating (on, off, off, on, ...) so that the box's load
drifts evenly over both; every run is a fresh server and database. Reported: the others'
set_state p50 / p99 (median of the runs) both ways and their ratio; with --repeat 2 or
more, their p99 over every run's calls pooled and each pair's ratio (the figure issue 10's
target is judged by: one pair's ratio moves by a third between runs of one code); per channel
the alerts received (each channel must get every failing run exactly once: a loss or a
duplicate is printed loudly and makes the exit status 1) and the Failed -> receiver latency. The
notifier's CPU per delivery is each on run's CPU (server plus PostgreSQL) minus its off
neighbour's, the other clients' transitions that the on run made fewer (a starved run) added
back at the off run's CPU per transition, over the deliveries: it moves far less with the
box's load than the p99 does. --control runs the same with the notifier off in the on runs
too (the failing runs still fail, nobody is told): the ratios it prints are the measure's own
spread, what any change must be judged against. --notifier-process runs the on runs'
notifier as `runlog notifier start` in a process of its own, beside a server with
RUNLOG_NOTIFIER_ENABLED=false on the same database; its CPU (and its PostgreSQL backends') is
counted with the server's. --batch-paths adds, from the server's /metrics over the window and
the drain, how many group-commit batches it wrote, and on PostgreSQL how many went in one
statement on the writer's guesses and how many took the locked transaction, and on SQLite how
long the store's WAL checkpoints (off the writer's connection) took.

--interleave SECONDS runs one server for the whole window instead, its rule enabled and paused
every SECONDS (a paused rule leaves the notifier idle: a read or two a second), so the two arms
share the server, its database and the box's moments, which separate runs do not: the others'
set_state calls are judged by the window they began in (the first second after a switch left
out), and the CPU by window; one run a backend (--repeat does not apply). Use a longer
--duration at the same rate (--failing 2000 --duration 120 --interleave 10). Alerts are
checked per window: a run failing in an enabled window gets one per channel, in a paused one
none (near a switch either). With --control the rule stays enabled throughout.

The default channels are unpaced kinds: Slack's webhooks are paced at one message a second
and Discord's at two (notifier/limits.py), so 1,000 alerts to Slack take 1,000 s by design;
`--channels slack,discord,webhook` runs that shape (and waits for it, see --drain).
Progress to stderr, markdown to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import psutil
from aiohttp import web

from bench.bench_server import (
    DEFAULT_ADMIN_URL, STOP_TIMEOUT, Load, Server, Stats, cpu_of, default_runlog_command, finish, median, percentile,
    postgres_backends, progress, running_server, start_profiler, summarize_profile,
)
from tests.servers import server_env

UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BODY_TEMPLATE = "run {{ flow_run.id }} failed"
WARMUP_SECONDS = 3.0


class Receiver:
    """One channel's receiver: when each request arrived and the ids its body names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[tuple[float, list[str]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        seen = time.monotonic()
        body = await request.read()
        self.requests.append((seen, sorted({m.decode() for m in UUID_RE.findall(body)})))
        # 202 with a requestId: what Opsgenie answers, and a 2xx for every other kind.
        return web.json_response({"requestId": uuid.uuid4().hex, "id": "1"}, status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Tally:
    """One channel's alerts judged against the failing runs: each run's first arrival, how
    often it came, and requests naming none of them."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.expected: dict[str, float] = {}  # run id -> when its Failed set_state was sent
        self.requests: list[tuple[float, list[str]]] = []

    def _judged(self) -> tuple[dict[str, float], Counter[str], int]:
        arrived: dict[str, float] = {}
        count: Counter[str] = Counter()
        unknown = 0
        for seen, ids in self.requests:
            run_id = next((i for i in ids if i in self.expected), None)
            if run_id is None:
                unknown += 1
            else:
                count[run_id] += 1
                arrived.setdefault(run_id, seen)
        return arrived, count, unknown

    @property
    def delivered(self) -> int:
        return len(self._judged()[0])

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self._judged()[1].values())

    @property
    def unknown(self) -> int:
        return self._judged()[2]

    def latencies(self) -> list[float]:
        arrived = self._judged()[0]
        return sorted(arrived[r] - self.expected[r] for r in arrived)


class ReceiversInProcess:
    """The receivers on the bench's own event loop, beside the clients it times (how the bench
    ran until 2026-12-07: the alerts' requests then share that loop with the figure)."""

    def __init__(self, names: list[str]) -> None:
        self._receivers = [Receiver(name) for name in names]
        self.tallies: list[Tally] = []

    async def start(self) -> None:
        for receiver in self._receivers:
            await receiver.start()
        self.tallies = [Tally(r.name, r.url) for r in self._receivers]
        for tally, receiver in zip(self.tallies, self._receivers):
            tally.requests = receiver.requests  # the same list: nothing to fetch

    async def refresh(self) -> None:
        pass

    async def stop(self) -> None:
        for receiver in self._receivers:
            await receiver.stop()


class ReceiversProcess:
    """The receivers in a process of their own (`--serve-receivers`), as a real Slack is not on
    the loop of the clients being timed; clock readings compare, CLOCK_MONOTONIC being the
    machine's. What arrived is fetched from its control URL."""

    def __init__(self, names: list[str]) -> None:
        self._names = names
        self._proc: asyncio.subprocess.Process | None = None
        self._control = ""
        self.tallies: list[Tally] = []

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_fanout", "--serve-receivers", ",".join(self._names),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"the receivers' process exited ({await self._proc.wait()}) before serving")
        info = json.loads(line)
        self._control = info["control"]
        self.tallies = [Tally(name, info["urls"][name]) for name in self._names]

    async def refresh(self) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.get(self._control) as resp:
                got = await resp.json()
        for tally in self.tallies:
            tally.requests = got[tally.name]  # [seen, ids] pairs, as the receiver keeps them

    async def stop(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # its cue to stop
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()


async def serve_receivers(names: list[str]) -> None:
    """The receivers' process: one receiver per channel and a control URL answering what each
    has received; one JSON line with the URLs on stdout, then serves until stdin closes."""
    receivers = {name: Receiver(name) for name in names}
    for receiver in receivers.values():
        await receiver.start()

    async def requests(_: web.Request) -> web.Response:
        return web.json_response({name: r.requests for name, r in receivers.items()})

    app = web.Application()
    app.router.add_get("/requests", requests)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    control = f"http://127.0.0.1:{runner.addresses[0][1]}/requests"
    print(json.dumps({"control": control, "urls": {n: r.url for n, r in receivers.items()}}), flush=True)
    try:
        await asyncio.to_thread(sys.stdin.buffer.read)
    finally:
        await runner.cleanup()
        for receiver in receivers.values():
            await receiver.stop()


# A channel: (block type slug in RUNLOG_NOTIFIER_BASE_URLS or None, a function making the stock
# client's block for a receiver). Vendor kinds send to their vendor's host, rebased onto the
# receiver by the base-URL setting; the custom webhook's URL is the receiver's own.
def _webhook(r: Tally):
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    return CustomWebhookNotificationBlock(name="bench", url=r.url + "/hook", json_data={"text": "{{body}}"})


def _mattermost(r: Tally):
    from prefect.blocks.notifications import MattermostWebhook
    return MattermostWebhook(hostname="chat.example.com", token="bench-token")


def _opsgenie(r: Tally):
    from prefect.blocks.notifications import OpsgenieWebhook
    return OpsgenieWebhook(apikey="bench-key")


def _slack(r: Tally):
    from prefect.blocks.notifications import SlackWebhook
    return SlackWebhook(url="https://hooks.slack.com/services/T000/B000/bench")


def _discord(r: Tally):
    from prefect.blocks.notifications import DiscordWebhook
    return DiscordWebhook(webhook_id="1", webhook_token="bench-token")


CHANNELS = {
    "webhook": (None, _webhook),
    "mattermost": ("mattermost-webhook", _mattermost),
    "opsgenie": ("opsgenie-webhook", _opsgenie),
    "slack": ("slack-webhook", _slack),
    "discord": ("discord-webhook", _discord),
}


async def configure(api_url: str, receivers: list[Tally]) -> str:
    """One block per channel and one automation sending every Failed run to all of them; its id."""
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        actions = []
        for receiver in receivers:
            block_id = await CHANNELS[receiver.name][1](receiver).save(f"bench-{receiver.name}", overwrite=True)
            actions.append(SendNotification(block_document_id=block_id, subject="failed", body=BODY_TEMPLATE))
        automation = await Automation(
            name="bench-fanout",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"}, expect={"prefect.flow-run.Failed"},
                posture=Posture.Reactive, threshold=1,
            ),
            actions=actions,
        ).acreate()
    return str(automation.id)


BURST_GAP_SECONDS = 0.010


def tail_bursts(latencies: list[float], finished: list[float], q: float = 0.99) -> tuple[int, int, int]:
    """How the slowest (1 - q) of the requests came: how many there were, how many of them ended
    within BURST_GAP_SECONDS of another slow one in runs of three or more (a stall answers what
    waited behind it at once), and the longest such run. Scattered slow requests point at a busy
    loop; bursts at stalls."""
    if not latencies:
        return 0, 0, 0
    threshold = percentile(sorted(latencies), q)
    ends = sorted(end for end, latency in zip(finished, latencies) if latency >= threshold)
    in_bursts = longest = 0
    run = 1
    for previous, end in zip(ends, ends[1:] + [float("inf")]):
        if end - previous <= BURST_GAP_SECONDS:
            run += 1
            continue
        if run >= 3:
            in_bursts += run
        longest = max(longest, run)
        run = 1
    return len(ends), in_bursts, longest


@dataclass
class RunResult:
    backend: str
    notifier: bool
    p50: float
    p99: float
    transitions: int
    errors: int
    failing_sent: int
    failing_errors: int
    channels: list[tuple[str, int, int, int, list[float]]] = field(default_factory=list)  # name, got, dup, unknown, lat
    load: str = ""
    server_cpu: float = 0.0  # seconds, the runlog server's process over the window and the drain
    pg_cpu: float = 0.0  # seconds, the PostgreSQL backends serving its database (0 on SQLite)
    batches: dict[str, float] = field(default_factory=dict)  # --batch-paths: over the window and the drain
    tail: tuple[int, int, int] = (0, 0, 0)  # tail_bursts of the others' set_state
    p999: float = 0.0  # ms, the others' set_state: the stalls that hold every client show here
    slowest: float = 0.0  # ms
    latencies: list[float] = field(default_factory=list, repr=False)  # s, the others' set_state, sorted
    sends: bool = False  # the notifier ran: an on run, not in a --control set

    def tail_note(self) -> str:
        slow, in_bursts, longest = self.tail
        return f"{in_bursts} of {slow} (longest {longest})"

    @property
    def cpu(self) -> float:
        return self.server_cpu + self.pg_cpu

    def batch_note(self) -> str:
        if not self.batches:
            return "-"
        note = f"{self.batches['batches']:,.0f}"
        if self.backend == "postgres":
            note += (f" ({self.batches['one_statement']:,.0f} one statement, "
                     f"{self.batches.get('one_statement_retried', 0.0):,.0f} at the second try, "
                     f"{self.batches['locked']:,.0f} locked)")
        elif "checkpoints" in self.batches:
            copies = self.batches["checkpoints"]
            long = copies - self.batches.get("checkpoints_short", 0.0)
            note += (f" (WAL copied {copies:,.0f} times off the writer, {self.batches['checkpoints_seconds']:.2f} s, "
                     f"{long:,.0f} over {float(LONG_BUCKET) * 1000:.0f} ms)")
        return note

    def gc_note(self) -> str:
        if "gc_full" not in self.batches:
            return "-"
        full = self.batches["gc_full"]
        long = full - self.batches.get("gc_short", 0.0)
        return f"{full:,.0f} ({self.batches['gc_full_seconds']:.2f} s, {long:,.0f} over {float(LONG_BUCKET) * 1000:.0f} ms)"

    def problems(self, expected: int) -> list[str]:
        out = []
        if self.failing_sent != expected or self.failing_errors:
            out.append(f"{self.failing_sent} of {expected} runs set Failed ({self.failing_errors} errors)")
        if self.errors:
            out.append(f"{self.errors} errors in the other clients' requests")
        if self.sends:
            for name, got, dup, unknown, _ in self.channels:
                if got != expected:
                    out.append(f"{name}: {expected - got} of {expected} alerts LOST")
                if dup:
                    out.append(f"{name}: {dup} alerts DUPLICATED")
                if unknown:
                    out.append(f"{name}: {unknown} requests naming no failing run")
        return out


async def _post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    async with session.post(url, json=body) as resp:
        if resp.status >= 300:
            raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")
        return await resp.json()


LONG_BUCKET = "0.025"  # a full collection or a SQLite checkpoint counted as long past this (a bucket's bound)


async def batch_counts(server_base: str) -> dict[str, float]:
    """The server's batch counters from /metrics: batches written, and PostgreSQL's by path; its
    full garbage collections: how many, their pauses summed, how many within LONG_BUCKET s; and
    SQLite's WAL checkpoints off the writer, counted the same way."""
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"runlog_eventstore_batch_appends_count": "batches",
              "runlog_eventstore_batch_paths_total": "path",
              "runlog_gc_full_collection_seconds_count": "gc_full",
              "runlog_gc_full_collection_seconds_sum": "gc_full_seconds",
              "runlog_gc_full_collection_seconds_bucket": "gc_bucket",
              "runlog_eventstore_sqlite_checkpoint_seconds_count": "checkpoints",
              "runlog_eventstore_sqlite_checkpoint_seconds_sum": "checkpoints_seconds",
              "runlog_eventstore_sqlite_checkpoint_seconds_bucket": "checkpoints_bucket"}
    counts: dict[str, float] = {"batches": 0.0, "one_statement": 0.0, "locked": 0.0}
    async with aiohttp.ClientSession() as session:
        async with session.get(server_base.removesuffix("/api") + "/metrics") as resp:
            text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            kind = wanted.get(sample.name)
            if kind == "batches":
                counts["batches"] += sample.value
            elif kind in ("gc_full", "gc_full_seconds", "checkpoints", "checkpoints_seconds"):
                counts[kind] = counts.get(kind, 0.0) + sample.value
            elif kind in ("gc_bucket", "checkpoints_bucket") and sample.labels.get("le") == LONG_BUCKET:
                short = "gc_short" if kind == "gc_bucket" else "checkpoints_short"
                counts[short] = counts.get(short, 0.0) + sample.value
            elif kind == "path":
                counts[sample.labels.get("path", "")] = counts.get(sample.labels.get("path", ""), 0.0) + sample.value
    return counts


def _state(kind: str) -> dict:
    return {"state": {"type": kind.upper(), "name": kind.capitalize()}, "force": False}


async def failing_load(base: str, flow_id: str, receivers: list[Tally], count: int, seconds: float) -> tuple[int, int]:
    """COUNT runs failing at an even pace over SECONDS: how many were set Failed, and errors."""
    sent = errors = 0
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one() -> None:
            nonlocal sent, errors
            try:
                run = await _post(session, f"{base}/flow_runs/", {"flow_id": flow_id, "state": _state("pending")["state"]})
                await _post(session, f"{base}/flow_runs/{run['id']}/set_state", _state("running"))
                started = time.monotonic()
                for receiver in receivers:
                    receiver.expected[run["id"]] = started
                answer = await _post(session, f"{base}/flow_runs/{run['id']}/set_state", _state("failed"))
                if answer.get("status") != "ACCEPT":
                    raise RuntimeError(f"Failed not accepted: {answer.get('status')}")
                sent += 1
            except Exception as exc:  # noqa: BLE001 - counted and shown, the bench goes on
                errors += 1
                if errors <= 3:
                    progress(f"    failing run error: {exc!r}")

        tasks = []
        t0 = time.monotonic()
        interval = seconds / count
        for i in range(count):
            delay = t0 + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return sent, errors


def receivers_host(args: argparse.Namespace) -> ReceiversInProcess | ReceiversProcess:
    return ReceiversInProcess(args.channels) if args.receivers_in_process else ReceiversProcess(args.channels)


def base_urls(receivers: list[Tally]) -> str:
    """RUNLOG_NOTIFIER_BASE_URLS pointing the vendor kinds at their receivers."""
    return ",".join(f"{CHANNELS[r.name][0]}={r.url}" for r in receivers if CHANNELS[r.name][0])


def notifier_env(enabled: bool, bases: str) -> dict[str, str]:
    """The notifier's settings for a runlog process of the bench."""
    env = {"RUNLOG_NOTIFIER_ENABLED": "true" if enabled else "false"}
    if bases:
        env["RUNLOG_NOTIFIER_BASE_URLS"] = bases
    return env


async def start_others(server: Server, args: argparse.Namespace) -> tuple[dict, Stats, Load, list[asyncio.Task[None]]]:
    """The failing runs' flow, and the other clients started and warmed up."""
    async with aiohttp.ClientSession() as session:
        flow = await _post(session, f"{server.base}/flows/", {"name": f"bench-fanout-{uuid.uuid4().hex[:6]}"})
    stats = Stats()
    load = Load(server.base, args.clients, stats, shared_flow=False, rate=args.rate)
    stats.measure_from = time.perf_counter() + WARMUP_SECONDS
    tasks = load.start()
    await asyncio.sleep(WARMUP_SECONDS)
    return flow, stats, load, tasks


async def one_run(backend: str, notifier: bool, args: argparse.Namespace) -> RunResult:
    host = receivers_host(args)
    try:
        await host.start()  # in the try: a start that fails half-way still stops what it started
        receivers = host.tallies
        bases = base_urls(receivers)
        sends = notifier and not args.control
        alone = sends and args.notifier_process
        args.server_env = notifier_env(sends and not alone, bases)
        async with running_server("runlog", backend, args) as server, \
                notifier_process(server, args, bases) if alone else contextlib.nullcontext() as notifying:
            await configure(server.base, receivers)
            flow, stats, load, tasks = await start_others(server, args)
            cpu0 = psutil.cpu_times()
            server_cpu0 = server.cpu_seconds()
            notifier_cpu0 = notifier_cpu(notifying)
            backends = await postgres_backends(server)
            pg_cpu0 = cpu_of(backends)
            batches0 = await batch_counts(server.base) if args.batch_paths else {}
            label = _arm(notifier, sends)
            profiler = None
            if args.profile:
                profiler = start_profiler(server, args.duration, args.profile,
                                          f"{backend}-notifier-{label}-{server.port}")
            progress(f"  {backend}, notifier {label}: {args.failing} runs failing over {args.duration:g}s, "
                     f"{args.clients} other clients at {args.rate:g} transitions/s")
            sent, failing_errors = await failing_load(server.base, flow["id"], receivers, args.failing, args.duration)
            await finish(tasks, load)
            cpu1 = psutil.cpu_times()
            if profiler is not None:
                await asyncio.to_thread(profiler[0].wait)
                progress(f"    profile {profiler[1]}:\n      " + "\n      ".join(summarize_profile(profiler[1])))
            busy = sum(cpu1) - sum(cpu0) - (cpu1.idle - cpu0.idle)
            load_note = f"machine busy {100 * busy / max(sum(cpu1) - sum(cpu0), 1e-9) * (os.cpu_count() or 1):.0f}% of one core, loadavg {os.getloadavg()[0]:.1f}"
            if sends:
                deadline = time.monotonic() + args.drain
                await host.refresh()
                while time.monotonic() < deadline and any(r.delivered < sent for r in receivers):
                    await asyncio.sleep(0.2)
                    await host.refresh()
                await asyncio.sleep(2.0)  # a late duplicate would show up here
                await host.refresh()
            server_cpu = server.cpu_seconds() - server_cpu0 + notifier_cpu(notifying) - notifier_cpu0
            batches = {}
            if args.batch_paths:
                batches1 = await batch_counts(server.base)
                batches = {key: batches1.get(key, 0.0) - batches0.get(key, 0.0) for key in batches1}
            pg_cpu = sum(cpu_of(backends).values()) - sum(pg_cpu0.get(pid, 0.0) for pid in cpu_of(backends))
            latencies = sorted(stats.set_state_latency)
            result = RunResult(
                backend, notifier, percentile(latencies, 0.50) * 1000, percentile(latencies, 0.99) * 1000,
                len(latencies), sum(stats.errors.values()), sent, failing_errors, load=load_note,
                server_cpu=server_cpu, pg_cpu=pg_cpu, batches=batches,
                tail=tail_bursts(stats.set_state_latency, stats.set_state_finished),
                p999=percentile(latencies, 0.999) * 1000, slowest=latencies[-1] * 1000 if latencies else 0.0,
                latencies=latencies, sends=sends,
            )
            result.channels = [(r.name, r.delivered, r.duplicates, r.unknown, r.latencies()) for r in receivers]
            got = ", ".join(f"{r.name} {r.delivered}" for r in receivers) if sends else "-"
            progress(f"    set_state p50 {result.p50:.1f} ms p99 {result.p99:.1f} ms p99.9 {result.p999:.1f} ms "
                     f"max {result.slowest:.1f} ms over {result.transitions} "
                     f"transitions; alerts: {got}; server CPU {server_cpu:.1f} s, PostgreSQL {pg_cpu:.1f} s; "
                     f"batches {result.batch_note()}; full collections {result.gc_note()}; "
                     f"slowest 1 % in bursts {result.tail_note()}; {load_note}")
            for problem in result.problems(args.failing):
                progress(f"    !!! {problem}")
            return result
    finally:
        await host.stop()


SETTLE_SECONDS = 1.0
"""--interleave: the others' calls starting this soon after a switch count in neither arm (an
idle matcher looks for a resumed rule once a second, then catches up)."""
EDGE_SECONDS = 0.5
"""--interleave: a failing run this close to a switch may or may not be alerted."""


@dataclass
class Window:
    start: float  # time.monotonic()
    end: float
    on: bool
    cpu: float = 0.0  # server plus PostgreSQL CPU seconds over the window


async def interleaved_run(backend: str, args: argparse.Namespace) -> int:
    """--interleave: one server, the notifier's rule enabled and paused every --interleave
    seconds while the load runs, so the on and off windows share the server, its database and
    the box's moments; the others' set_state is judged by the window its call began in. With
    --control the rule stays enabled in every window. Prints markdown; 1 on a lost or
    duplicated alert or a failed request."""
    host = receivers_host(args)
    try:
        await host.start()
        receivers = host.tallies
        args.server_env = notifier_env(True, base_urls(receivers))
        async with running_server("runlog", backend, args) as server:
            automation_id = await configure(server.base, receivers)
            flow, stats, load, tasks = await start_others(server, args)
            async with aiohttp.ClientSession() as session:
                backends = await postgres_backends(server)
                windows: list[Window] = []
                offset = time.perf_counter() - time.monotonic()  # the load's clock against the receivers'

                def cpu() -> float:
                    return server.cpu_seconds() + sum(cpu_of(backends).values())

                async def switch() -> None:
                    on = True
                    while True:
                        started, used = time.monotonic(), cpu()
                        windows.append(Window(started, float("inf"), on))
                        await asyncio.sleep(args.interleave)
                        on = not on
                        async with session.patch(f"{server.base}/automations/{automation_id}",
                                                 json={"enabled": on or args.control}) as resp:
                            if resp.status >= 300:
                                raise RuntimeError(f"PATCH automation: {resp.status} {await resp.text()}")
                        windows[-1].end = time.monotonic()
                        windows[-1].cpu = cpu() - used

                progress(f"  {backend}, interleaved every {args.interleave:g}s{' (control)' if args.control else ''}: "
                         f"{args.failing} runs failing over {args.duration:g}s, {args.clients} other clients at "
                         f"{args.rate:g} transitions/s")
                switching = asyncio.create_task(switch())
                try:
                    sent, failing_errors = await failing_load(server.base, flow["id"], receivers, args.failing,
                                                              args.duration)
                finally:
                    switching.cancel()
                    (switched,) = await asyncio.gather(switching, return_exceptions=True)
                await finish(tasks, load)
                if isinstance(switched, Exception):  # a switch the server refused: the windows are wrong
                    raise switched
            windows = [w for w in windows if w.end != float("inf")]
            await asyncio.sleep(5.0)  # the last alerts, and a late duplicate
            await host.refresh()
    finally:
        await host.stop()

    def window_of(at: float, among: list[Window]) -> Window | None:
        return next((w for w in among if w.start <= at < w.end), None)

    def arms(among: list[Window]) -> tuple[list[float], list[float]]:
        """The others' set_state latencies begun in AMONG's enabled and paused windows, sorted."""
        picked: dict[bool, list[float]] = {True: [], False: []}
        for latency, finished in zip(stats.set_state_latency, stats.set_state_finished):
            began = finished - latency - offset
            window = window_of(began, among)
            if window is not None and began - window.start >= SETTLE_SECONDS:
                picked[window.on].append(latency)
        return sorted(picked[True]), sorted(picked[False])

    on, off = arms(windows)
    halves = []
    for half in (windows[: len(windows) // 2], windows[len(windows) // 2:]):
        half_on, half_off = arms(half)
        if half_on and half_off:
            p99_on, p99_off = percentile(half_on, 0.99) * 1000, percentile(half_off, 0.99) * 1000
            halves.append(f"{p99_on / p99_off:.2f} ({p99_off:.2f} / {p99_on:.2f} ms)")
    failed = bool(failing_errors or stats.errors or sent != args.failing)
    lines = [f"Command: `python -m bench.bench_fanout {' '.join(sys.argv[1:])}`", ""]
    if args.control:
        lines += ["**Control (--control): the rule stayed enabled in every window; the ratios are the measure's own "
                  "spread.**", ""]
    lines += [f"{backend}: {len(windows)} windows of {args.interleave:g} s, the first {SETTLE_SECONDS:g} s after each "
              f"switch left out; {sent} of {args.failing} runs set Failed ({failing_errors} errors), "
              f"{sum(stats.errors.values())} errors in the others' requests.", "",
              "| arm | others' set_state calls | p50 ms | p99 ms | p99.9 ms | server + PostgreSQL CPU s a window |",
              "|---|--:|--:|--:|--:|--:|"]
    paused = "rule left enabled (a paused window's place)" if args.control else "rule paused"
    for label, values, flag in (("rule enabled", on, True), (paused, off, False)):
        cpus = [w.cpu for w in windows if w.on == flag]
        if not values:
            lines.append(f"| {label} | 0 | - | - | - | - |")
            continue
        p50, p99, p999 = (percentile(values, q) * 1000 for q in (0.5, 0.99, 0.999))
        lines.append(f"| {label} | {len(values):,} | {p50:.2f} | {p99:.2f} | {p999:.2f} | "
                     f"{median(cpus) if cpus else 0:.2f} |")
    if on and off:
        ratio = percentile(on, 0.99) / percentile(off, 0.99)
        lines += ["", f"p99 enabled / paused: **{ratio:.2f}**; each half of the windows (paused / enabled): "
                      f"{', '.join(halves)}"]
    lines += ["", "| channel | alerts | runs alerted twice | runs failing in an enabled window (clear of a switch) "
                  "not alerted | in a paused one alerted |", "|---|--:|--:|--:|--:|"]
    for tally in receivers:
        arrived, _count, _unknown = tally._judged()
        lost = alerted_paused = 0
        for run_id, at in tally.expected.items():
            window = window_of(at, windows)
            if window is None or at - window.start < EDGE_SECONDS or window.end - at < EDGE_SECONDS:
                continue
            if (window.on or args.control) and run_id not in arrived:
                lost += 1
            elif not (window.on or args.control) and run_id in arrived:
                alerted_paused += 1
        lines.append(f"| {tally.name} | {len(arrived):,} | {tally.duplicates} | {lost} | {alerted_paused} |")
        if tally.duplicates or lost:
            failed = True
            progress(f"    !!! {tally.name}: {lost} alerts LOST, {tally.duplicates} DUPLICATED")
    print("\n".join(lines))
    return 1 if failed else 0


NOTIFIER_START_SECONDS = 2.0
"""How long --notifier-process gives `runlog notifier start` to take the lead before the load."""


@contextlib.asynccontextmanager
async def notifier_process(server: Server, args: argparse.Namespace, bases: str) -> AsyncIterator[subprocess.Popen]:
    """``runlog notifier start`` on the server's database, beside a server that does not notify
    (--notifier-process); its log next to the server's."""
    workdir = os.path.dirname(server.log_path)
    env = server_env(workdir, server.database_url, **notifier_env(True, bases))
    base = shlex.split(args.runlog_command) if args.runlog_command else default_runlog_command()
    log_path = os.path.join(workdir, "notifier.log")
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([*base, "notifier", "start"], env=env, cwd=workdir, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        await asyncio.sleep(NOTIFIER_START_SECONDS)
        if proc.poll() is not None:
            with open(log_path, errors="replace") as log:
                raise RuntimeError(f"runlog notifier start exited with {proc.returncode}:\n{log.read()[-2000:]}")
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def notifier_cpu(proc: subprocess.Popen | None) -> float:
    """CPU seconds of the --notifier-process process so far (0 without one)."""
    if proc is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(proc.pid).cpu_times()
        return times.user + times.system
    return 0.0


def _arm(notifier: bool, sends: bool) -> str:
    return "on" if sends else "off, as on" if notifier else "off"


def _pairs(results: list[RunResult]) -> list[tuple[RunResult, RunResult]]:
    """The (on, off) runs next to each other: the runs alternate on, off, off, on, ..."""
    pairs = []
    for i in range(0, len(results) - 1, 2):
        pair = results[i:i + 2]
        on = next((r for r in pair if r.notifier), None)
        off = next((r for r in pair if not r.notifier), None)
        if on is not None and off is not None:
            pairs.append((on, off))
    return pairs


def _per_delivery(results: list[RunResult], deliveries: int) -> str:
    """The notifier's CPU per delivery, ms: for each on run and the off run next to it (the
    runs alternate on, off, off, on, ...), the on run's CPU minus the off run's, the other
    clients' transitions it made fewer added back at the off run's CPU per transition (that
    includes the failing runs' own requests, so it adds back a little too much); the median
    of the pairs, and each pair's figure."""
    figures = []
    for on, off in _pairs(results):
        if not off.transitions or not deliveries:
            continue
        starved = (off.transitions - on.transitions) * off.cpu / off.transitions
        figures.append((on.cpu - off.cpu + starved) * 1000 / deliveries)
    if not figures:
        return "-"
    return f"{median(figures):.2f} ({', '.join(f'{f:.2f}' for f in figures)})"


def _pooled(results: list[RunResult]) -> str | None:
    """With two runs or more each way: the others' p99 over all the on runs' set_state calls
    together against all the off runs', and each pair's own ratio. With nothing changed
    (--control) one pair's ratio moves by up to a third; the pooled p99 rests on every run's
    calls, not on one run's slowest 120."""
    on = sorted(x for r in results if r.notifier for x in r.latencies)
    off = sorted(x for r in results if not r.notifier for x in r.latencies)
    ratios = [on_run.p99 / off_run.p99 for on_run, off_run in _pairs(results)]
    if len(ratios) < 2 or not on or not off:
        return None
    p99_on, p99_off = percentile(on, 0.99) * 1000, percentile(off, 0.99) * 1000
    return (f"{p99_off:.1f} | {p99_on:.1f} | {p99_on / p99_off:.2f} | {percentile(off, 0.999) * 1000:.1f} | "
            f"{percentile(on, 0.999) * 1000:.1f} | {', '.join(f'{x:.2f}' for x in ratios)} | "
            f"{sum(1 for x in ratios if x <= 1.2)} of {len(ratios)}")


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:,.0f}" if values else "-"


async def main_async(args: argparse.Namespace) -> int:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if args.interleave:
        return max([await interleaved_run(backend, args) for backend in backends])
    out = [f"Command: `python -m bench.bench_fanout {' '.join(sys.argv[1:])}`", "",
           f"uptime at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", ""]
    summary = ["| backend | set_state p50 ms, notifier off | on | p99 ms, off | on | p99 on/off | "
               "server + PostgreSQL CPU s, off | on | notifier CPU ms per delivery | runs |",
               "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    deliveries = ["| backend | channel | alerts received (of failing x runs) | lost | duplicated | "
                  "Failed -> receiver p50 ms | p99 ms | max ms |", "|---|---|--:|--:|--:|--:|--:|--:|"]
    runs = ["| backend | notifier | set_state p50 ms | p99 ms | p99.9 ms | max ms | transitions | errors | server CPU s | "
            "PostgreSQL CPU s | batches | full collections (pauses) | slowest 1 % in bursts of 3+ | load |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|"]
    pooled = ["| backend | p99 ms, notifier off | on | p99 on/off | p99.9 ms, off | on | each pair's p99 on/off | "
              "pairs within 20 % |", "|---|--:|--:|--:|--:|--:|---|--:|"]
    failed = False
    for backend in backends:
        results: list[RunResult] = []
        for i in range(args.repeat):
            order = (True, False) if i % 2 == 0 else (False, True)
            for notifier in order:
                try:
                    results.append(await one_run(backend, notifier, args))
                except Exception as exc:  # noqa: BLE001 - reported, the other runs go on
                    progress(f"  !!! {backend} notifier {'on' if notifier else 'off'} failed: {exc!r}")
                    failed = True
        on = [r for r in results if r.notifier]
        off = [r for r in results if not r.notifier]
        for r in results:
            runs.append(f"| {backend} | {_arm(r.notifier, r.sends)} | {r.p50:.1f} | {r.p99:.1f} | "
                        f"{r.p999:.1f} | {r.slowest:.1f} | "
                        f"{r.transitions:,} | {r.errors} | {r.server_cpu:.1f} | {r.pg_cpu:.1f} | {r.batch_note()} | {r.gc_note()} | "
                        f"{r.tail_note()} | {r.load} |")
            if r.problems(args.failing):
                failed = True
        if on and off:
            p99_on, p99_off = median([r.p99 for r in on]), median([r.p99 for r in off])
            summary.append(
                f"| {backend} | {median([r.p50 for r in off]):.1f} | {median([r.p50 for r in on]):.1f} | "
                f"{p99_off:.1f} | {p99_on:.1f} | {p99_on / p99_off:.2f} | "
                f"{median([r.cpu for r in off]):.1f} | {median([r.cpu for r in on]):.1f} | "
                f"{_per_delivery(results, args.failing * len(args.channels))} | {len(off)} + {len(on)} |"
            )
            row = _pooled(results)
            if row is not None:
                pooled.append(f"| {backend} | {row} |")
        for index, name in enumerate(args.channels):
            got = sum(r.channels[index][1] for r in on)
            dup = sum(r.channels[index][2] for r in on)
            lat = sorted(x for r in on for x in r.channels[index][4])
            expected = args.failing * len(on)
            deliveries.append(
                f"| {backend} | {name} | {got:,} of {expected:,} | {expected - got} | {dup} | {_ms(lat, 0.5)} | "
                f"{_ms(lat, 0.99)} | {lat[-1] * 1000 if lat else 0:,.0f} |"
            )
    if args.control:
        out += ["**Control (--control): the notifier was off in every run; the 'on' columns are the runs "
                "in its place. The ratios are what the measure gives with nothing changed.**", ""]
    if args.notifier_process and not args.control:
        out += ["**--notifier-process: in the on runs the notifier ran as `runlog notifier start` beside a "
                "server that did not notify; its CPU is counted with the server's.**", ""]
    out += ["Other clients' set_state (medians of the runs):", "", *summary, ""]
    if len(pooled) > 2:
        out += ["Other clients' set_state, every run's calls pooled (with --repeat 2 or more):", "", *pooled, ""]
    if not args.control:
        out += ["Alerts, all notifier-on runs together:", "", *deliveries, ""]
    out += ["Each run:", "", *runs]
    print("\n".join(out))
    if failed:
        print("\n**!!! LOST, DUPLICATED OR FAILED: see the lines marked !!! above (stderr) !!!**")
    return 1 if failed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--failing", type=int, default=1000, help="runs failing over the window")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds over which they fail")
    parser.add_argument("--channels", default="webhook,mattermost,opsgenie",
                        help=f"comma-separated, from {', '.join(CHANNELS)}")
    parser.add_argument("--clients", type=int, default=8, help="other clients measuring set_state")
    parser.add_argument("--rate", type=float, default=200.0, help="their transitions per second in all")
    parser.add_argument("--repeat", type=int, default=2, help="runs each way, alternating")
    parser.add_argument("--control", action="store_true",
                        help="the notifier off in the 'on' runs too: what the ratios are with nothing changed")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the last alerts")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--runlog-command", default=None)
    parser.add_argument("--keep-logs", default=None)
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    parser.add_argument("--batch-paths", action="store_true",
                        help="count the group-commit batches from the server's /metrics (PostgreSQL: by path)")
    parser.add_argument("--receivers-in-process", action="store_true",
                        help="serve the receivers on the bench's own event loop, beside the timed clients "
                             "(the bench's shape before 2026-12-07), not in a process of their own")
    parser.add_argument("--notifier-process", action="store_true",
                        help="in the on runs, the server does not notify and `runlog notifier start` does, beside it")
    parser.add_argument("--interleave", type=float, default=0.0, metavar="SECONDS",
                        help="one server for the whole window, the rule enabled and paused every SECONDS "
                             "(the on and off arms share the server and the box's moments; one run, --repeat "
                             "does not apply)")
    parser.add_argument("--serve-receivers", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="py-spy the server over each window into DIR (needs py-spy) and print where its time went")
    args = parser.parse_args(argv)
    if args.interleave and (args.notifier_process or args.profile or args.batch_paths):
        parser.error("--interleave runs one server with the notifier inside it: not with --notifier-process, "
                     "--profile or --batch-paths")
    args.channels = [c.strip() for c in args.channels.split(",") if c.strip()]
    unknown = [c for c in args.channels if c not in CHANNELS]
    if unknown or len(set(args.channels)) != len(args.channels):
        parser.error(f"--channels: each once, from {', '.join(CHANNELS)}")
    args.prefect_python = ""
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_receivers is not None:
        asyncio.run(serve_receivers(args.serve_receivers.split(",")))
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
