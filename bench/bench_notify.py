"""Notification latency: a flow run's Failed state accepted -> a webhook receiver got the alert.

    python -m bench.bench_notify [--target runlog|prefect|both] [--backend sqlite|postgres|both]
                                 [--runs N] [--burst N] [--prefect-python /work/prefect-venv/bin/python]

Each target is started by bench_server's machinery (fresh database, free port) and set up
through the stock Prefect client, the way a user would: a CustomWebhookNotificationBlock
pointing at a receiver on 127.0.0.1 (this process), and an Automation that sends it on every
`prefect.flow-run.Failed` event. Then, over the REST API:

  sequential  --runs flow runs, one at a time: create (Pending), set Running, then set Failed
              and wait until the receiver has the alert naming that run;
  burst       --burst runs brought to Running, then all set Failed at once.

Latency is measured from just before the Failed set_state request is sent (the event is
appended while it is in flight) to the moment the receiver's handler sees the request, both on
this process's monotonic clock. Reported: p50 / p99 / max and how many alerts never arrived
within --timeout; and, to tell the write path's share from the notifier's, the p50 / p99 of
the Failed set_state's own answer (the alert cannot come sooner than the event is appended). Progress to stderr, markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bench.bench_server import DEFAULT_ADMIN_URL, DEFAULT_PREFECT_PYTHON, percentile, progress, running_server

BODY_TEMPLATE = "{{ flow_run.id }}"


class Receiver:
    """An HTTP receiver on 127.0.0.1 that notes when each run's alert arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        seen = time.monotonic()
        self.requests += 1
        body = await request.json()
        run_id = str(body.get("text", "")).strip()
        self.arrived.setdefault(run_id, seen)
        if run_id in self.waiters:
            self.waiters[run_id].set()
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def expect(self, run_id: str) -> asyncio.Event:
        event = self.waiters.setdefault(run_id, asyncio.Event())
        if run_id in self.arrived:
            event.set()
        return event


async def configure(api_url: str, receiver: Receiver) -> None:
    """The user's set-up, through the stock client: a webhook block and an automation."""
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        block = CustomWebhookNotificationBlock(name="bench", url=receiver.url, json_data={"text": "{{body}}"})
        block_id = await block.save("bench-hook", overwrite=True)
        await Automation(
            name="bench-failed",
            trigger=EventTrigger(
                match={"prefect.resource.id": "prefect.flow-run.*"},
                expect={"prefect.flow-run.Failed"},
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[SendNotification(block_document_id=block_id, subject="failed", body=BODY_TEMPLATE)],
        ).acreate()


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    """The Failed set_state's own latency (request sent -> answer), same runs."""
    lost: int = 0

    def row(self, label: str) -> str:
        values = sorted(self.values)
        if not values:
            return f"| {label} | - | - | - | {self.lost} | - |"
        p50, p99 = percentile(values, 0.50) * 1000, percentile(values, 0.99) * 1000
        answered = sorted(self.answered)
        set_state = f"{percentile(answered, 0.50) * 1000:,.0f} / {percentile(answered, 0.99) * 1000:,.0f}"
        return f"| {label} | {p50:,.0f} | {p99:,.0f} | {values[-1] * 1000:,.0f} | {self.lost} | {set_state} |"


async def _post(session: aiohttp.ClientSession, url: str, body: dict) -> dict:
    # 503 and 429 are retried, as the Prefect client retries them (Prefect's server on SQLite
    # answers 503 "database is locked" while its services write).
    for attempt in range(10):
        async with session.post(url, json=body) as resp:
            if resp.status in (429, 503) and attempt < 9:
                await asyncio.sleep(0.1 * 2**attempt)
                continue
            if resp.status >= 300:
                raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")
            return await resp.json()
    raise AssertionError("unreachable")


def _state(kind: str) -> dict:
    return {"state": {"type": kind.upper(), "name": kind.capitalize()}, "force": False}


async def running_run(session: aiohttp.ClientSession, base: str, flow_id: str) -> str:
    run = await _post(session, f"{base}/flow_runs/", {"flow_id": flow_id, "state": _state("pending")["state"]})
    await _post(session, f"{base}/flow_runs/{run['id']}/set_state", _state("running"))
    return run["id"]


async def fail(session: aiohttp.ClientSession, base: str, receiver: Receiver, run_id: str, timeout: float,
               into: Latencies) -> None:
    arrived = receiver.expect(run_id)
    sent = time.monotonic()
    await _post(session, f"{base}/flow_runs/{run_id}/set_state", _state("failed"))
    into.answered.append(time.monotonic() - sent)
    try:
        await asyncio.wait_for(arrived.wait(), timeout)
    except TimeoutError:
        into.lost += 1
        return
    into.values.append(receiver.arrived[run_id] - sent)


async def measure(target: str, backend: str, args: argparse.Namespace) -> tuple[Latencies, Latencies]:
    async with Receiver() as receiver, running_server(target, backend, args) as server:
        await configure(server.base, receiver)
        sequential, burst = Latencies(), Latencies()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            flow = await _post(session, f"{server.base}/flows/", {"name": f"bench-notify-{uuid.uuid4().hex[:6]}"})
            # One alert first, unmeasured: the automation may take a moment to be loaded.
            await fail(session, server.base, receiver, await running_run(session, server.base, flow["id"]),
                       args.timeout, Latencies())
            progress(f"  {target}/{backend}: sequential, {args.runs} runs")
            for _ in range(args.runs):
                run_id = await running_run(session, server.base, flow["id"])
                await fail(session, server.base, receiver, run_id, args.timeout, sequential)
            progress(f"  {target}/{backend}: burst of {args.burst}")
            run_ids = [await running_run(session, server.base, flow["id"]) for _ in range(args.burst)]
            await asyncio.gather(*(fail(session, server.base, receiver, r, args.timeout, burst) for r in run_ids))
        return sequential, burst


async def main_async(args: argparse.Namespace) -> int:
    targets = ["runlog", "prefect"] if args.target == "both" else [args.target]
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows = []
    for backend in backends:
        for target in targets:
            try:
                sequential, burst = await measure(target, backend, args)
            except Exception as exc:  # noqa: BLE001 - one target failing still reports the others
                progress(f"  {target}/{backend} failed: {exc!r}")
                rows.append(f"| {target} {backend} | failed: {exc!r} | | | | |")
                continue
            rows.append(sequential.row(f"{target} {backend}, sequential ({args.runs})"))
            rows.append(burst.row(f"{target} {backend}, burst of {args.burst}"))
    print("| Failed -> receiver | p50 ms | p99 ms | max ms | lost | set_state answered p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("runlog", "prefect", "both"), default="both")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one alert")
    parser.add_argument("--prefect-python", default=DEFAULT_PREFECT_PYTHON)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--runlog-command", default=None)
    parser.add_argument("--keep-logs", default=None)
    parser.add_argument("--wait-quiet", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
