"""What worker heartbeats cost the server: every heartbeat is an event (a row in the log and
the worker's row rewritten), so this measures the server's CPU per heartbeat and what 100
workers heartbeating every 30 s (Prefect's default interval) cost in percent of one core.

    python -m bench.bench_heartbeats [--backend sqlite|postgres] [--workers 100] [--rounds 20]
                                     [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

A ``runlog server start`` is started on a fresh database (a SQLite file, or a PostgreSQL
database created and dropped here); one pool is created, then --workers workers heartbeat
--rounds times each, over REST (POST /work_pools/{name}/workers/heartbeat, what a worker
without the channel sends) and over the worker channel websocket (worker.heartbeat.v1 frames,
what Prefect 3.8 workers send), as fast as the server answers. The server's CPU time (psutil)
over each phase (on PostgreSQL also the CPU of the backends serving its database, shown
apart), divided by the heartbeats sent, is the cost of one; the steady cost of
W workers every I seconds is W / I heartbeats per second times that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import psutil

from tests.servers import runlog_server, server_env


async def database_cpu(admin_url: str, name: str | None) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend serving database NAME (none for SQLite)."""
    if name is None:
        return {}
    conn = await asyncpg.connect(admin_url)
    try:
        pids = [r[0] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)]
    finally:
        await conn.close()
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out[pid] = sum(psutil.Process(pid).cpu_times()[:2])
    return out


def used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def cpu_seconds(pid: int) -> float:
    proc = psutil.Process(pid)
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


async def rest_phase(base: str, workers: int, rounds: int) -> int:
    async with aiohttp.ClientSession() as session:
        async def worker(index: int) -> None:
            for _ in range(rounds):
                async with session.post(f"{base}/work_pools/bench/workers/heartbeat",
                                        json={"name": f"rest-{index}", "heartbeat_interval_seconds": 30}) as r:
                    assert r.status == 204, await r.text()

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return workers * rounds


async def channel_phase(base: str, workers: int, rounds: int) -> int:
    """Each worker opens its channel (its hello is a heartbeat) and sends ``rounds`` heartbeat
    frames; returns the heartbeats sent, hellos included."""
    url = base.replace("http", "ws", 1) + "/work_pools/bench/workers/connect"
    async with aiohttp.ClientSession() as session:
        sockets = []
        for index in range(workers):
            ws = await session.ws_connect(url, protocols=("prefect",))
            await ws.send_json({"type": "auth", "token": None})
            await ws.receive_json()
            consumer = str(uuid.uuid4())
            await ws.send_json({"type": "worker.hello.v1", "id": str(uuid.uuid4()), "sent_at": "2026-01-01T00:00:00Z",
                                "payload": {"consumer_id": consumer, "worker_name": f"ws-{index}", "worker_type": "process",
                                            "heartbeat_interval_seconds": 30,
                                            "supported_channel_versions": ["work_pool_worker_channel.v1"],
                                            "requested_capabilities": ["worker_heartbeat.v1", "work_pool_snapshot.v1"]}})
            await ws.receive_json()
            sockets.append((ws, consumer, index))
        frames = [
            {"type": "worker.heartbeat.v1", "id": str(uuid.uuid4()), "sent_at": "2026-01-01T00:00:00Z",
             "payload": {"consumer_id": consumer, "worker_name": f"ws-{index}", "heartbeat_interval_seconds": 30}}
            for _ws, consumer, index in sockets
        ]
        for _ in range(rounds):
            for (ws, _consumer, _index), frame in zip(sockets, frames):
                await ws.send_json(frame)
        await asyncio.sleep(0)
        for ws, _c, _i in sockets:
            await ws.close()
        return workers * (rounds + 1)


async def wait_for_heartbeats(base: str, prefix: str, workers: int, since: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            async with session.post(f"{base}/work_pools/bench/workers/filter", json={"limit": 200}) as r:
                listed = await r.json()
            mine = [w for w in listed if w["name"].startswith(prefix)]
            if len(mine) == workers and all(w["last_heartbeat_time"] >= since for w in mine):
                return
            await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        name = f"bench_heartbeats_{uuid.uuid4().hex[:8]}"
        if args.backend == "postgres":
            admin = await asyncpg.connect(args.admin_url)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            url = args.admin_url.rsplit("/", 1)[0] + f"/{name}"
        else:
            url = f"sqlite:///{workdir}/bench.db"
        try:
            env = server_env(workdir, url, RUNLOG_NOTIFIER_ENABLED="false")
            with runlog_server(env, Path(workdir) / "server.log") as running:
                base = running.url
                async with aiohttp.ClientSession() as session:
                    async with session.post(f"{base}/work_pools/", json={"name": "bench", "type": "process"}) as r:
                        assert r.status == 201, await r.text()
                db = name if args.backend == "postgres" else None
                await rest_phase(base, args.workers, 1)  # the workers exist: measure steady heartbeats
                db0 = await database_cpu(args.admin_url, db)
                cpu0, t0 = cpu_seconds(running.proc.pid), time.perf_counter()
                sent = await rest_phase(base, args.workers, args.rounds)
                rest_cpu, rest_wall = cpu_seconds(running.proc.pid) - cpu0, time.perf_counter() - t0
                rest_db = used(db0, await database_cpu(args.admin_url, db))

                await channel_phase(base, args.workers, 1)
                since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                db0 = await database_cpu(args.admin_url, db)
                cpu0 = cpu_seconds(running.proc.pid)
                channel_frames = await channel_phase(base, args.workers, args.rounds)
                await wait_for_heartbeats(base, "ws-", args.workers, since)
                await asyncio.sleep(1)  # the last frames of each socket are handled before its close
                channel_cpu = cpu_seconds(running.proc.pid) - cpu0
                channel_db = used(db0, await database_cpu(args.admin_url, db))
        finally:
            if args.backend == "postgres":
                admin = await asyncpg.connect(args.admin_url)
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()

    rate = 100 / args.interval
    for label, count, cpu, db_cpu in (("REST", sent, rest_cpu, rest_db), ("channel", channel_frames, channel_cpu, channel_db)):
        per, per_all = cpu / count, (cpu + db_cpu) / count
        print(f"{args.backend} {label:8} {count:6d} heartbeats  server CPU {cpu:6.2f} s  "
              f"{per * 1000:6.3f} ms/heartbeat  100 workers every {args.interval:g} s: {100 * rate * per:5.2f}% of one core"
              + (f"; with PostgreSQL's own CPU ({db_cpu:.2f} s) {per_all * 1000:6.3f} ms, {100 * rate * per_all:5.2f}%"
                 if args.backend == "postgres" else ""))
    print(f"{args.backend} REST wall {rest_wall:.2f} s ({sent / rest_wall:.0f} heartbeats/s with {args.workers} concurrent workers)")


if __name__ == "__main__":
    asyncio.run(main())
