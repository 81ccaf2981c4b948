"""Running the app: one process, or several sharing one port (PostgreSQL only).

SIGINT and SIGTERM stop accepting connections, let in-flight requests finish (aiohttp's
graceful shutdown), then close the store, which commits every append already queued.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys

from aiohttp import web

from .app import create_app
from .logging import configure_logging

SHUTDOWN_TIMEOUT = 30.0


def _socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _run(settings, sock: socket.socket) -> None:  # type: ignore[no-untyped-def]
    configure_logging(settings.logging_level, stream=sys.stderr)
    web.run_app(
        create_app(settings),
        sock=sock,
        print=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handle_signals=True,
        access_log=None,
    )


def serve(settings, *, host: str, port: int, workers: int = 1) -> None:  # type: ignore[no-untyped-def]
    sock = _socket(host, port)
    if workers == 1:
        _run(settings, sock)
        return
    # Each worker accepts on the one inherited socket; the kernel spreads the connections.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run, args=(settings, sock), daemon=False) for _ in range(workers)]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for proc in procs:
        proc.join()
