"""Served runlogs for tests and benchmarks: the one place that starts, waits for and stops them.

- `serve(env)`: the app in this process, on a port the kernel picks (bind port 0, read it back).
- `serve_app(app)`: any aiohttp app served the same way (a stand-in server, say).
- `threaded_http(handler)`: an http.server handler class served from a thread on 127.0.0.1
  (a loopback receiver for tests that are not async: browser and Prefect-client tests).
- `runlog_server(env, log, *args)`: ``runlog server start --port 0`` as a subprocess; the port
  is the one its startup banner names, so no port is ever guessed.
- `unused_port()`: only for what cannot bind port 0 itself and report it (PostgreSQL's
  configuration file, Prefect's server in bench/) or a port nothing must listen on.
- `until(condition)`: wait for something the test can observe, with a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import inspect
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from aiohttp import web

from runlog.api.app import create_app
from runlog.api.settings import load_settings
from runlog.commands.clock import Clock, system_clock

ROOT = Path(__file__).resolve().parents[1]
RUNLOG = [sys.executable, "-c", "from runlog.api.cli import main; main()"]
PREFECT_PYTHON = os.environ.get("RUNLOG_TEST_PREFECT_PYTHON") or sys.executable
"""The Python whose `prefect` runs the flows and the CLI in the compatibility and browser tests:
this one (Prefect 3.8.8, the test extra) unless RUNLOG_TEST_PREFECT_PYTHON names another virtual
environment's, which is how the README's list of working client versions is checked."""
"""``runlog`` of this checkout, whether or not the venv's script is on PATH."""

BANNER = re.compile(r"^Starting runlog server on http://(?P<host>.+):(?P<port>\d+)/api\b", re.MULTILINE)


def unused_port() -> int:
    """A port nothing listened on a moment ago. Another process may take it before the caller
    binds it: use it only where the server cannot bind port 0 and say which port it got."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def until(condition: Callable[[], object | Awaitable[object]], *, timeout: float = 60.0,
                interval: float = 0.01, what: str = "the condition") -> None:
    """Poll CONDITION (a function, sync or async) until it returns something true; fail after
    TIMEOUT seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                held = condition()
                if inspect.isawaitable(held):
                    held = await held
                if held:
                    return
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"{what} did not hold within {timeout} s") from None


# -- in this process ---------------------------------------------------------------------------


class Server:
    def __init__(self, base: str, session: aiohttp.ClientSession, app: web.Application) -> None:
        self.base = base  # e.g. http://127.0.0.1:PORT/api
        self.session = session
        self.app = app

    async def request(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            body = await response.read()
            if response.content_type == "application/json" and body:
                return response.status, await response.json()
            return response.status, body.decode() if body else None


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve APP on 127.0.0.1 and a port the kernel picks; yields http://127.0.0.1:PORT."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        (address,) = runner.addresses  # the socket bound: its port is the one to use
        yield f"http://127.0.0.1:{address[1]}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def threaded_http(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve HANDLER on 127.0.0.1 and a port the kernel picks, from a thread; yields
    http://127.0.0.1:PORT and stops the server (and its thread) on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


BUILTIN_BLOCKS_OFF = {"RUNLOG_SERVER_BLOCKS_REGISTER_ON_START": "false"}
"""The test servers' default: they start with an empty block catalogue, so that a test's blocks
and events are the only ones (tests/api/test_block_catalogue.py and the compat test turn it on)."""


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], *, clock: Clock = system_clock, **options: object) -> AsyncIterator[Server]:
    """The real runlog app with settings from ENV (and create_app's OPTIONS), and a client session
    pointed at it; without Prefect's built-in blocks unless ENV asks for them."""
    app = create_app(load_settings(env=BUILTIN_BLOCKS_OFF | env), clock=clock, **options)  # type: ignore[arg-type]
    async with serve_app(app) as origin, aiohttp.ClientSession() as session:
        yield Server(f"{origin}/api", session, app)


# -- `runlog server start` as a process --------------------------------------------------------


def server_env(workdir: Path | str, database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without its RUNLOG_* settings (RUNLOG_TEST_* aside), for a
    server on DATABASE_URL with RUNLOG_HOME in WORKDIR, logging warnings and errors only, without
    Prefect's built-in blocks unless EXTRA asks for them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLOG_") or k.startswith("RUNLOG_TEST_")}
    return env | BUILTIN_BLOCKS_OFF | {
        "RUNLOG_HOME": str(Path(workdir) / "runlog"), "RUNLOG_DATABASE_URL": database_url,
        "RUNLOG_LOGGING_LEVEL": "WARNING", **extra,
    }


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    log: Path  # the server's standard output and error
    port: int = 0  # 0 until the banner names it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60, signum: int = signal.SIGTERM) -> int:
        """SIGNUM (graceful), then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the server did not stop within {timeout}s:\n{self.output()}") from None


def prefect_client_env(api_url: str, prefect_home: Path | str, **extra: str) -> dict[str, str]:
    """The Prefect client's environment for a test: this process's without any PREFECT_* or
    RUNLOG_* setting, pointed at API_URL with its own PREFECT_HOME, logs sent every 0.5 s."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RUNLOG_"))} | {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.5",
    } | extra


def start_runlog(env: dict[str, str], log: Path, *args: str, command: Sequence[str] = RUNLOG,
                 cwd: Path = ROOT, timeout: float = 60, **popen: object) -> Running:
    """``runlog server start --port 0 ARGS``, once /health answers on the port its banner names.

    ARGS may name a --port of their own. The log file is appended to, so a restart on the same
    file is read from where it begins; on failure the process is stopped and the log shown.
    """
    port_args = [] if any(a == "--port" or a.startswith("--port=") for a in args) else ["--port", "0"]
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*command, "server", "start", *port_args, *args], cwd=cwd, env=env, stdout=out, stderr=out,
            stdin=subprocess.DEVNULL, **popen,  # type: ignore[arg-type]
        )
    running = Running(proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if not running.port:
                with log.open("rb") as text:
                    text.seek(start)
                    found = BANNER.search(text.read().decode(errors="replace"))
                running.port = int(found["port"]) if found else 0
            if running.port:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(running.url + "/health", timeout=1).status_code == 200:
                        return running
            assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{running.output()}"
            assert time.monotonic() < deadline, f"the server did not start within {timeout}s:\n{running.output()}"
            time.sleep(0.05)  # poll interval while waiting for the banner and /health
    except BaseException:
        stop_quietly(running)
        raise


def stop_quietly(running: Running, timeout: float = 60, signum: int = signal.SIGTERM) -> None:
    """Stop the server if it still runs (SIGNUM, then SIGKILL after TIMEOUT), asserting nothing."""
    if running.proc.poll() is None:
        running.proc.send_signal(signum)
        try:
            running.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()


@contextlib.contextmanager
def runlog_server(env: dict[str, str], log: Path, *args: str, **kwargs: object) -> Iterator[Running]:
    """A running ``runlog server start`` (see `start_runlog`), stopped with SIGTERM at the end."""
    running = start_runlog(env, log, *args, **kwargs)  # type: ignore[arg-type]
    try:
        yield running
    finally:
        stop_quietly(running)


def run_flow(env: dict[str, str], scenario: str) -> dict:
    """A flow of tests/compat/flows.py run by the Prefect client in ``env``; its outcome as the
    scenario prints it (flow_run_id, state, ...)."""
    import json

    done = subprocess.run(
        [PREFECT_PYTHON, "-m", "tests.compat.flows", scenario],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"flow {scenario} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1])


class EventStream:
    """The lines `prefect event stream --format text` printed, read as they come."""

    def __init__(self, lines: queue.Queue[str], wait_seconds: float) -> None:
        self._lines, self._wait_seconds = lines, wait_seconds
        self.seen: list[str] = []

    def wait_for(self, text: str) -> str:
        """Read lines until one holds TEXT and return it; fail with all read after waiting too long."""
        while True:
            try:
                line = self._lines.get(timeout=self._wait_seconds)
            except queue.Empty:
                raise AssertionError(f"{text!r} not printed by prefect event stream:\n{''.join(self.seen)}") from None
            self.seen.append(line)
            if text in line:
                return line


@contextlib.contextmanager
def prefect_event_stream(env: dict[str, str], wait_seconds: float = 60) -> Iterator[EventStream]:
    """`prefect event stream --format text` run by the Prefect client with ENV, stopped on leaving."""
    stream = subprocess.Popen(
        [PREFECT_PYTHON, "-m", "prefect", "event", "stream", "--format", "text"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stream.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        yield EventStream(lines, wait_seconds)
    finally:
        stream.terminate()
        stream.wait(timeout=30)
        reader.join(timeout=30)  # it ends at the pipe's end of file
        stream.stdout.close()  # type: ignore[union-attr]


def interrupt_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """Ctrl-C to a process started in a session of its own (and its children), SIGKILL if it
    has not exited within ``timeout``: how the compat tests stop `flow.serve()` and workers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_deployment(server, name: str, serving: subprocess.Popen, log: Path, timeout: float = 90) -> list:
    """The deployments named ``name`` once `flow.serve()` (``serving``, logging to ``log``) has
    created them; fails with its log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.post("/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        if found:
            return found
        assert serving.poll() is None, log.read_text()
        time.sleep(0.5)
    raise AssertionError("flow.serve() never created its deployment:\n" + log.read_text())
