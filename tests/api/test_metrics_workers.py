"""GET /metrics with `runlog server start --workers 2` (PostgreSQL): whichever process answers a
scrape reports the requests both processes served and both processes' service leadership, and
the metrics directory the server made is gone after it stops.

The test talks over raw connections so that it knows which process accepted each one (the
kernel picks, psutil tells): it can then send requests to both and scrape through each.
"""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..servers import runlog_server, server_env, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROUTE = "/api/flows/count"


class Connection:
    """One keep-alive HTTP/1.1 connection and the server process that accepted it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.local_port = writer.get_extra_info("sockname")[1]
        self.owner: int | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        status_line, *headers = (await self.reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        length = next(int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:"))
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


def owner_of(workers: list[psutil.Process], server_port: int, client_port: int) -> int | None:
    for worker in workers:
        for c in worker.net_connections(kind="tcp"):
            if c.laddr and c.raddr and c.laddr.port == server_port and c.raddr.port == client_port:
                return worker.pid
    return None


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


async def test_a_scrape_of_either_process_sees_both(tmp_path, pg_url) -> None:
    with runlog_server(server_env(tmp_path, pg_url), tmp_path / "server.log", "--workers", "2") as server:
        parent = psutil.Process(server.proc.pid)
        workers = [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        pids = {w.pid for w in workers}
        directory = workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"]
        assert os.path.isdir(directory)
        assert workers[1].environ()["PROMETHEUS_MULTIPROC_DIR"] == directory

        # Open connections until each process has accepted at least one.
        connections: list[Connection] = []
        try:
            async with asyncio.timeout(30):
                while {c.owner for c in connections} != pids:
                    connection = Connection(*await asyncio.open_connection("127.0.0.1", server.port))
                    connections.append(connection)
                    await until(lambda: owner_of(workers, server.port, connection.local_port), timeout=10)
                    connection.owner = owner_of(workers, server.port, connection.local_port)
            by_pid = {pid: next(c for c in connections if c.owner == pid) for pid in pids}
            sent = {pid: 0 for pid in pids}
            for n, pid in enumerate(sorted(pids)):
                for _ in range(5 + 3 * n):  # unequal counts, so the sum cannot come from one process
                    status, _ = await by_pid[pid].request("POST", ROUTE, b"{}")
                    assert status == 200
                    sent[pid] += 1

            # Each process, scraped, reports what both served, and both processes' services.
            for pid, connection in by_pid.items():
                status, body = await connection.request("GET", "/metrics")
                assert status == 200, pid
                found = samples(body.decode())
                counted = found.get(("runlog_http_requests_total",
                                     frozenset({"method": "POST", "route": ROUTE, "status": "200"}.items())))
                assert counted == sum(sent.values()), (pid, sent, counted)
                leading_pids = {dict(labels)["pid"] for name, labels in found if name == "runlog_service_leading"}
                assert leading_pids == {str(p) for p in pids}, (pid, leading_pids)

            # Each singleton service is led by exactly one of the two.
            async def one_leader_each() -> bool:
                _, body = await connections[0].request("GET", "/metrics")
                leaders: dict[str, float] = {}
                for (name, labels), value in samples(body.decode()).items():
                    if name == "runlog_service_leading":
                        service = dict(labels)["service"]
                        leaders[service] = leaders.get(service, 0) + value
                return bool(leaders) and all(total == 1 for total in leaders.values())

            await until(one_leader_each, what="one leader per service")
        finally:
            for connection in connections:
                await connection.close()
        assert server.stop() == 0, server.output()
    assert not os.path.exists(directory)
