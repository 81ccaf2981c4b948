"""Running the app: one process, or several sharing one port (PostgreSQL only).

SIGINT and SIGTERM stop accepting connections, let in-flight requests finish (aiohttp's
graceful shutdown), then close the store, which commits every append already queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from runlog.eventstore import EventStoreError
from runlog.projections.collector import freezing_survivors

from . import keys
from .app import create_app
from .errors import RunlogError
from .logging import configure_logging
from .metrics import multiprocess_dir, process_ended
from .notifier import NotifierParts

log = structlog.get_logger("runlog.api")

SHUTDOWN_TIMEOUT = 30.0


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is printed so the banner can name its port.

    Port 0 asks the kernel for a free port; `bound_port(sock)` reads back the one it gave, with
    no gap in which another process could take it (tests and benchmarks start servers so).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise RunlogError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    return sock.getsockname()[1]


async def _ignore_repeated_signals(app: web.Application) -> None:
    """Once the graceful shutdown has begun, a second SIGINT or SIGTERM only logs a line.

    aiohttp would raise GracefulExit again, out of the middle of the shutdown: in-flight
    requests and the store's close would be abandoned and the process would exit with status
    1 (or hang on a database thread). With --workers a Ctrl-C reaches every worker twice, once
    from the terminal and once forwarded by the parent, so this is the common case there.
    """
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, log.info, "shutdown_already_in_progress")
    # From here on a repeated signal is harmless; tests wait for this line before sending one.
    log.info("shutdown_started", pid=os.getpid())


def _run(settings, sock: socket.socket, notifier: NotifierParts | None = None) -> None:  # type: ignore[no-untyped-def]
    configure_logging(settings.logging_level, stream=sys.stderr)
    app = create_app(settings, notifier=notifier)
    app.on_shutdown.append(_ignore_repeated_signals)  # aiohttp's own handlers are removed after cleanup
    app.cleanup_ctx.append(_frozen_survivors)  # the last context: the store and services are open
    web.run_app(
        app,
        sock=sock,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handle_signals=True,
        access_log=None,
        loop=_new_event_loop(),
    )


async def _frozen_survivors(app: web.Application) -> AsyncIterator[None]:
    """Leave what start-up made (modules, the app and its routes, the store, the services) out
    of the garbage collector's passes: it lives as long as the process, and every full pass
    scanned all of it again. In bench_server's SQLite runs the collector's time fell from about
    0.6 to 0.3 s per 20 s run (its full passes from 0.3 to 0.1 s), some 5 % of the server's CPU.
    From then on what survives the collector's older generations is frozen too
    (``FrozenSurvivors``): the caches that fill as the server runs are not scanned again and
    again either."""
    with freezing_survivors(asyncio.get_running_loop()) as survivors:
        app[keys.FROZEN_SURVIVORS] = survivors
        yield


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, else asyncio's loop.

    libuv's loop took a fifth less server CPU per request in bench_server and raised PostgreSQL
    throughput from about 1,450-1,590 to 1,680 transitions/s with 16 clients.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _run_worker(settings, sock: socket.socket) -> None:  # type: ignore[no-untyped-def]
    """A worker process's entry. Like the CLI (api/cli.py), it reports a problem a person can
    act on, such as a schema that is behind, as one line instead of a traceback."""
    try:
        _run(settings, sock)
    except (RunlogError, EventStoreError) as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


def serve(  # type: ignore[no-untyped-def]
    settings, sock: socket.socket, *, workers: int = 1, notifier: NotifierParts | None = None,
) -> None:
    """Serve on SOCK (from `listen`) until SIGINT or SIGTERM, in WORKERS processes; NOTIFIER:
    the sender and channels to notify with (one process only), else the default ones."""
    if workers == 1:
        _run(settings, sock, notifier)
        return
    with contextlib.ExitStack() as stack:
        # Metrics: every worker writes its own in this directory, and a scrape of any sums them.
        metrics_path = stack.enter_context(multiprocess_dir()) if settings.metrics_enabled else None
        _serve_workers(settings, sock, workers, metrics_path)


def _serve_workers(settings, sock: socket.socket, workers: int, metrics_path: str | None) -> None:  # type: ignore[no-untyped-def]
    # Each worker accepts on the one inherited socket; the kernel spreads the connections.
    ctx = multiprocessing.get_context("spawn")
    # A spawned process gets its arguments pickled, and the read-only mappingproxy holding the
    # settings' sources cannot be; a plain dict copy carries the same values.
    picklable = dataclasses.replace(settings, sources=dict(settings.sources))
    procs = [ctx.Process(target=_run_worker, args=(picklable, sock), daemon=False) for _ in range(workers)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    running = {proc.sentinel: proc for proc in procs}
    while running:
        for sentinel in multiprocessing.connection.wait(list(running)):
            proc = running.pop(sentinel)  # type: ignore[call-overload]
            proc.join()
            if metrics_path is not None and proc.pid is not None:
                process_ended(metrics_path, proc.pid)  # it no longer leads anything
    # A worker that could not start (say, the database schema is behind) has printed why; the
    # command must not then report success.
    failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
    if failed:
        raise RunlogError(f"{len(failed)} of {workers} server processes failed (exit codes {failed})")
