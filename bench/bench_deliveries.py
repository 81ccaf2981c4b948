"""Delivery latency: a delivery scheduled -> the receiver has the request, through the dispatcher.

    python -m bench.bench_deliveries [--backend sqlite|postgres|both] [--count N] [--postgres-url URL]

The dispatcher runs on the service runner as in the server and is woken after each scheduling,
as the rule matcher does; the receiver is a local aiohttp server answering 200 at once. Prints
p50/p99/max in ms, sequential (one at a time) and in bursts of 20 scheduled at once. What it
leaves out is matching the triggering event to its rules (the matcher's share of the issue's
event -> receiver figure).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

from aiohttp import web

from runlog.api.logging import configure_logging
from runlog.commands import deliveries as commands
from runlog.commands.runner import ServiceRunner
from runlog.eventstore import open_store
from runlog.notifier.dispatcher import Dispatcher
from runlog.notifier.seams import Channel
from runlog.notifier.webhook import KIND, JsonWebhookSender
from runlog.projections.registry import inline_projections

from .bench_store import DEFAULT_ADMIN_URL, postgres_databases

BURST = 20


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f}  p99 {p99 * 1000:6.1f}  max {ordered[-1] * 1000:6.1f} ms"


async def measure(url: str, count: int) -> tuple[list[float], list[float]]:
    arrived: dict[str, float] = {}
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        arrived[request.headers["webhook-id"]] = time.perf_counter()
        got.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    channel_id = uuid.uuid4()

    async def channels(_channel: uuid.UUID) -> Channel:
        return Channel(KIND, {"url": f"http://127.0.0.1:{port}/hook"})

    try:
        async with open_store(url, projections=inline_projections()) as store:
            dispatcher = Dispatcher(store, JsonWebhookSender(), channels)
            async with ServiceRunner(store, [dispatcher.service()]):

                async def one() -> tuple[str, float]:
                    start = time.perf_counter()
                    view, _ = await commands.schedule(store, rule_id=uuid.uuid4(), channel_id=channel_id,
                                                      event_id=uuid.uuid4(), subject="Flow run failed", body="x")
                    dispatcher.wake()
                    return str(view.id), start

                async def landed(ids: list[str]) -> None:
                    while not all(i in arrived for i in ids):
                        got.clear()
                        await got.wait()

                sequential = []
                for _ in range(count):
                    delivery, start = await one()
                    await landed([delivery])
                    sequential.append(arrived[delivery] - start)
                bursts = []
                for _ in range(max(count // BURST, 1)):
                    started = await asyncio.gather(*(one() for _ in range(BURST)))
                    await landed([d for d, _ in started])
                    bursts += [arrived[d] - s for d, s in started]
            await dispatcher.aclose()
    finally:
        await runner.cleanup()
    return sequential, bursts


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                sequential, bursts = await measure(f"sqlite:///{scratch}/bench.db", args.count)
        else:
            async with postgres_databases(args.postgres_url, "deliveries") as (url,):
                sequential, bursts = await measure(url, args.count)
        print(f"{backend:8}  sequential ({args.count}):   {percentiles(sequential)}")
        print(f"{backend:8}  bursts of {BURST} ({len(bursts)}): {percentiles(bursts)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--postgres-url", default=DEFAULT_ADMIN_URL)
    asyncio.run(main(parser.parse_args()))
