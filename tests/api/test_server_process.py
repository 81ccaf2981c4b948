"""``runlog server start`` as a real process: --port 0, graceful SIGTERM, --host, --workers,
migrations.

Each test starts the CLI in a subprocess, as an operator would (tests/servers.py), and talks to
it over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import httpx
import psutil
import pytest

from runlog.eventstore import migrate, parse_database_url

from ..servers import RUNLOG, ROOT, runlog_server, server_env, until

pytestmark = pytest.mark.slow


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUNLOG, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# -- --port ----------------------------------------------------------------------------------


def listening_ports(proc: psutil.Process) -> list[int]:
    return [c.laddr.port for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]


def test_port_0_listens_on_a_free_port_that_the_banner_names(tmp_path, sqlite_url) -> None:
    with runlog_server(server_env(tmp_path, sqlite_url), tmp_path / "server.log", "--port", "0") as server:
        assert listening_ports(psutil.Process(server.proc.pid)) == [server.port]
        assert server.port not in (0, 4200)
        lines = server.output().splitlines()
        assert lines[0].startswith(f"Starting runlog server on http://127.0.0.1:{server.port}/api, database ")
        assert f"Clients set PREFECT_API_URL=http://127.0.0.1:{server.port}/api" in lines
        assert httpx.get(server.url + "/health", timeout=30).status_code == 200
        assert server.stop() == 0


def test_a_port_in_use_is_refused_with_a_clear_message(tmp_path, sqlite_url) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli(server_env(tmp_path, sqlite_url), "server", "start", "--port", str(port))
    assert done.returncode == 1, done
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Starting runlog server" not in done.stdout  # no banner for a server that is not there
    assert_no_traceback(done.stdout + done.stderr)


# -- SIGTERM ---------------------------------------------------------------------------------


APPEND_LOCK = 125762588864359
"""The PostgreSQL advisory lock every append takes (schema/migrations/postgres/0001_events.up.sql)."""


@contextlib.asynccontextmanager
async def appends_held(database_url: str) -> AsyncIterator[None]:
    """Hold the database's write lock from another connection, as another writer would.

    Appends wait for it (reads do not), so a request that writes stays in flight until the
    block ends: the server is certainly in the middle of those requests meanwhile.
    """
    db = parse_database_url(database_url)
    if db.backend == "sqlite":
        other = sqlite3.connect(db.sqlite_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    conn = await asyncpg.connect(db.postgres_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        yield
    finally:
        await conn.close()  # ends the session, and with it the lock


@dataclass
class Writer:
    """One client: what the server acknowledged to it, before and after the SIGTERM."""

    created: list[str] = field(default_factory=list)
    states: list[tuple[str, str]] = field(default_factory=list)  # (flow run id, state id)
    answers: list[int] = field(default_factory=list)
    answered_after_signal: int = 0
    ended_with: BaseException | None = None
    awaiting_answer: bool = False  # its request's body is on the socket and no answer came yet


def noting_sent_bodies() -> aiohttp.TraceConfig:
    """Marks the Writer passed as trace_request_ctx once its request's body is handed to the
    socket (aiohttp writes it right after this hook, before any other task runs)."""

    async def sent(_session: object, context: object, _params: object) -> None:
        writer = getattr(context, "trace_request_ctx", None)
        if isinstance(writer, Writer):
            writer.awaiting_answer = True

    config = aiohttp.TraceConfig()
    config.on_request_chunk_sent.append(sent)
    return config


async def keep_writing(session: aiohttp.ClientSession, url: str, flow_id: str, me: Writer,
                       signalled: asyncio.Event) -> None:
    """Create runs and move each to RUNNING and COMPLETED, until the server stops taking requests."""

    async def post(path: str, body: dict) -> dict:
        async with session.post(url + path, json=body, trace_request_ctx=me) as response:
            me.awaiting_answer = False
            me.answers.append(response.status)
            me.answered_after_signal += signalled.is_set()
            answer = await response.json()
            assert response.status == 201, answer
            return answer

    try:
        while True:
            run = await post("/flow_runs/", {"flow_id": flow_id})
            me.created.append(run["id"])
            for state in ("RUNNING", "COMPLETED"):
                answer = await post(f"/flow_runs/{run['id']}/set_state", {"state": {"type": state}})
                assert answer["status"] == "ACCEPT", answer
                me.states.append((run["id"], answer["state"]["id"]))
    except aiohttp.ClientConnectionError as exc:
        me.ended_with = exc


def unread_bytes(port: int) -> int:
    """Bytes on 127.0.0.1 TCP connections to PORT that the receiving process has not yet read
    or the other end not yet acknowledged (Linux's /proc/net/tcp queues, both ends)."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        _, local, remote, state, queues, *_ = line.split()
        if state == "01" and port in (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)):
            total += sum(int(q, 16) for q in queues.split(":"))
    return total


def logged(output: str, event: str) -> int:
    """How many JSON log lines of the server's output are EVENT."""
    return sum(1 for line in output.splitlines() if line.startswith("{") and json.loads(line).get("event") == event)


async def test_sigterm_lets_in_flight_requests_finish_exits_0_and_loses_nothing_acknowledged(
    tmp_path, store_url, backend
) -> None:
    """Eight clients write as fast as they can; SIGTERM arrives while each has a write in flight.

    Every in-flight write completes with a 201, each client's next request meets a closed
    connection (never an error answer), the process exits 0, and after a restart on the same
    database every run and state the clients were told about is there.
    """
    env = server_env(tmp_path, store_url, RUNLOG_LOGGING_LEVEL="INFO")  # INFO: the shutdown's lines
    log = tmp_path / "server.log"
    writers = [Writer() for _ in range(8)]
    signalled = asyncio.Event()
    # On SQLite a write waits for the held lock only for the busy timeout (10 s), then is
    # answered 503: every wait while it is held must end well before.
    held_for_at_most = 3.0 if backend == "sqlite" else 60.0
    with runlog_server(env, log) as server:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, trace_configs=[noting_sent_bodies()]) as session:
            async with session.post(server.url + "/flows/", json={"name": "sigterm"}) as response:
                flow_id = (await response.json())["id"]
            tasks = [asyncio.create_task(keep_writing(session, server.url, flow_id, w, signalled)) for w in writers]

            def writing() -> bool:
                assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
                return sum(len(w.states) for w in writers) >= 40

            await until(writing, what="40 acknowledged states")

            async with appends_held(store_url):
                # Every writer has sent a request that writes, and the server has read each of
                # them: all eight are in the server's hands, waiting for the lock.
                await until(lambda: all(w.awaiting_answer for w in writers) and unread_bytes(server.port) == 0,
                            timeout=held_for_at_most, what="every writer's request read by the server")
                assert not any(t.done() for t in tasks)
                signalled.set()
                server.proc.send_signal(signal.SIGTERM)
                await until(lambda: logged(server.output(), "shutdown_started") == 1,
                            timeout=held_for_at_most, what="the graceful shutdown begun")
                # An impatient second signal must not cut the graceful shutdown short.
                server.proc.send_signal(signal.SIGTERM)
                await until(lambda: logged(server.output(), "shutdown_already_in_progress") == 1,
                            timeout=held_for_at_most, what="the second signal handled")
                assert server.proc.poll() is None, "the server must wait for the requests in flight"
            await asyncio.wait_for(asyncio.gather(*tasks), 60)

        assert server.wait() == 0, server.output()
    for writer in writers:
        assert writer.answered_after_signal == 1, "its write in flight completed"
        assert isinstance(writer.ended_with, aiohttp.ClientConnectionError)
        assert all(status == 201 for status in writer.answers), writer.answers
    assert_no_traceback(server.output())

    # Restart on the same database: everything acknowledged before the shutdown is there.
    with runlog_server(env, log) as again, httpx.Client(base_url=again.url, timeout=30) as client:
        for writer in writers:
            for run_id in writer.created:
                assert client.get(f"/flow_runs/{run_id}").status_code == 200, run_id
            for run_id, state_id in writer.states:
                response = client.get(f"/flow_run_states/{state_id}")
                assert response.status_code == 200, (run_id, state_id)
                assert response.json()["state_details"]["flow_run_id"] == run_id
        assert again.stop() == 0


# -- --host ----------------------------------------------------------------------------------


def interface_addresses(family: socket.AddressFamily) -> set[str]:
    """This machine's addresses as psutil (a test dependency only) lists them, link-local aside."""
    found = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == family}
    return {a for a in found if not ipaddress.ip_address(a).is_link_local}


NO_AUTH_WARNING = "Warning: the API has no authentication:"


def test_listening_on_all_interfaces_prints_every_address_clients_can_use_and_warns(tmp_path, sqlite_url) -> None:
    log = tmp_path / "server.log"
    with runlog_server(server_env(tmp_path, sqlite_url), log, "--host", "0.0.0.0") as server:
        lines = server.output().splitlines()
        assert server.stop() == 0
    at = lines.index("Listening on all interfaces. Clients set PREFECT_API_URL to one of:")
    listed = []
    for line in lines[at + 1:]:
        if not line.startswith("  http://"):
            break
        listed.append(line.split()[0])
    expected = interface_addresses(socket.AF_INET)
    assert "127.0.0.1" in expected
    assert sorted(listed) == sorted(f"http://{a}:{server.port}/api" for a in expected)
    assert listed[-1] == f"http://127.0.0.1:{server.port}/api"  # others' addresses first, loopback last
    assert "<this machine" not in server.output()
    (warning,) = [line for line in lines if line.startswith(NO_AUTH_WARNING)]
    assert "anyone who can reach this port can read and change every run" in warning
    assert lines.index(warning) == at + 1 + len(listed)  # in the same banner


def test_listening_on_one_address_prints_its_prefect_api_url(tmp_path, sqlite_url) -> None:
    log = tmp_path / "server.log"
    with runlog_server(server_env(tmp_path, sqlite_url), log) as server:
        lines = server.output().splitlines()
        assert server.stop() == 0
    assert f"Clients set PREFECT_API_URL=http://127.0.0.1:{server.port}/api" in lines
    assert not any(line.startswith(NO_AUTH_WARNING) for line in lines)  # loopback: only this machine


# -- --workers -------------------------------------------------------------------------------


def test_several_workers_on_sqlite_are_refused_with_a_clear_message(tmp_path, sqlite_url) -> None:
    done = run_cli(server_env(tmp_path, sqlite_url), "server", "start", "--port", "0", "--workers", "2")
    assert done.returncode == 1, done
    assert "Error: --workers needs PostgreSQL" in done.stderr
    assert_no_traceback(done.stdout + done.stderr)


def worker_processes(parent: psutil.Process) -> list[psutil.Process]:
    """The parent's server processes (multiprocessing also starts a resource tracker)."""
    return [p for p in parent.children() if "spawn_main" in " ".join(p.cmdline())]


def accepted_connections(proc: psutil.Process, port: int) -> int:
    return sum(
        1 for c in proc.net_connections(kind="tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


@pytest.mark.postgres
async def test_two_workers_on_postgres_share_one_port_and_sigterm_stops_them_all(tmp_path, pg_url) -> None:
    with runlog_server(server_env(tmp_path, pg_url), tmp_path / "server.log", "--workers", "2") as server:
        parent = psutil.Process(server.proc.pid)
        workers = worker_processes(parent)
        assert len(workers) == 2, [p.cmdline() for p in parent.children()]
        for worker in workers:  # both hold the one listening socket
            assert any(c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
                       for c in worker.net_connections(kind="tcp")), worker.pid

        # Both answer: open connections one by one until each worker has accepted one.
        held: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 20
            while not all(accepted_connections(w, server.port) for w in workers):
                assert time.monotonic() < deadline, "one worker never accepted a connection"
                held.append(socket.create_connection(("127.0.0.1", server.port)))
                await asyncio.sleep(0.05)
        finally:
            for sock in held:
                sock.close()

        # Many requests over many connections all succeed, and each sees what the other wrote.
        names = [f"flow-{n}-{uuid.uuid4().hex[:6]}" for n in range(60)]
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection per request
        async with aiohttp.ClientSession(connector=connector) as session:

            async def create(name: str) -> int:
                async with session.post(server.url + "/flows/", json={"name": name}) as response:
                    return response.status

            assert await asyncio.gather(*(create(n) for n in names)) == [201] * len(names)
            for _ in range(10):
                async with session.post(server.url + "/flows/count", json={}) as response:
                    assert await response.json() == len(names)

        # The parent exits 0 only when every worker did (api/server.py checks their statuses).
        assert server.stop() == 0, server.output()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, server.output()
    assert_no_traceback(server.output())


@pytest.mark.postgres
def test_workers_that_cannot_start_make_the_command_fail_without_a_traceback(tmp_path, pg_url) -> None:
    env = server_env(tmp_path, pg_url, RUNLOG_DATABASE_MIGRATE_ON_START="false")
    done = run_cli(env, "server", "start", "--port", "0", "--workers", "2")
    assert done.returncode == 1, done
    assert "runlog database upgrade" in done.stderr
    assert_no_traceback(done.stdout + done.stderr)


# -- migrations at start ---------------------------------------------------------------------


def test_pending_migrations_are_applied_at_start(tmp_path, store_url) -> None:
    env = server_env(tmp_path, store_url)
    assert run_cli(env, "database", "upgrade", "--yes", "--revision", "1").returncode == 0
    head = migrate.head_revision(parse_database_url(store_url).backend)
    assert head > 1
    with runlog_server(env, tmp_path / "server.log") as server:
        # Tables of the later migrations are there: a flow (runs' tables) can be created.
        response = httpx.post(server.url + "/flows/", json={"name": "after-upgrade"}, timeout=30)
        assert response.status_code == 201, response.text
        assert server.stop() == 0, server.output()
    current = run_cli(env, "database", "current")
    assert f"revision {head} (up to date)" in current.stdout, current


def test_without_migrate_on_start_an_empty_database_is_refused_naming_the_upgrade_command(
    tmp_path, store_url
) -> None:
    env = server_env(tmp_path, store_url, RUNLOG_DATABASE_MIGRATE_ON_START="false")
    done = run_cli(env, "server", "start", "--port", "0")
    assert done.returncode == 1, done
    assert "runlog database upgrade" in done.stderr and "revision 0" in done.stderr
    assert "not applied because RUNLOG_DATABASE_MIGRATE_ON_START is false" in done.stderr
    assert_no_traceback(done.stdout + done.stderr)
    current = run_cli(env, "database", "current")
    assert "revision 0" in current.stdout, current  # nothing was created
