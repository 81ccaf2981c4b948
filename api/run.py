"""``runlog run COMMAND``: run a command against an embedded runlog server on the local database.

The server is served in this process, on an event loop in a second thread, from a socket bound
before the child starts: the child can import Prefect (about a second) while the server opens
the database, and a request it sends early waits in the socket's backlog instead of failing.
The child is spawned with every signal unblocked; this process blocks SIGINT, SIGTERM, SIGHUP
and SIGCHLD in every thread and takes them with sigwaitinfo(), which says who sent each one:
a signal from another process (``kill``) is forwarded to the child, while a Ctrl-C from the
terminal already reached the child, which shares our process group, and is not sent twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import RunlogError
from .settings import Settings

if TYPE_CHECKING:  # asyncio is imported by the server's thread, after the child is spawned
    import asyncio

# Forwarded to the child when another process sends them to us.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Where a child's exit is noticed without waiting for SIGCHLD (which a blocked, defaulted
# SIGCHLD always delivers on Linux; this is only a backstop).
POLL_SECONDS = 1.0
# Signals whose ignored disposition Python sets for itself; the child starts with defaults.
_RESET_TO_DEFAULT = tuple(s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s)


def _listen_loopback() -> socket.socket:
    """A listening socket on a free port of 127.0.0.1 (as api/server.py's listen(), whose
    module imports the whole app)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise RunlogError(f"cannot listen on a loopback port: {exc.strerror or exc}") from None
    return sock


def embedded_settings(settings: Settings) -> Settings:
    """The settings the embedded server runs with: no time-based services.

    It lives only as long as one command, and several may share one SQLite file; scheduling,
    late runs, pause timeouts, cancellation cleanup and pool health are the standing server's
    work (Prefect's temporary server runs none of its services either).
    """
    return dataclasses.replace(
        settings,
        services_late_runs_enabled=False,
        services_pause_expirations_enabled=False,
        services_cancellation_cleanup_enabled=False,
        services_scheduler_enabled=False,
        services_foreman_enabled=False,
    )


class EmbeddedServer:
    """The runlog app on a loopback socket, served by an event loop in a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        # Only the socket here: the app's imports (most of a second) happen on the thread,
        # while the child starts, not before it.
        self._settings = embedded_settings(settings)
        self._sock = _listen_loopback()
        self.api_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/api"
        self._stop_requested = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set by the thread, with _stopping
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="runlog-embedded-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish in-flight requests and close the store (committing every acknowledged append)."""
        # The flag first: a thread that has not published its loop yet sees it once it has.
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server ended already
                loop.call_soon_threadsafe(stopping.set)
        if self._thread.ident is not None:  # started
            self._thread.join()
        if self._failure is not None:
            raise self._failure

    @property
    def failure(self) -> BaseException | None:
        """Why the server stopped on its own, if it did."""
        return self._failure

    def _main(self) -> None:
        loop = None
        try:
            import asyncio
            import sys

            # Not api/commands/common.py, whose click and rich.progress the server does not use.
            from .logging import command_logging_level, configure_logging
            from .server import _new_event_loop

            # As for the CLI's other commands: warnings and errors only, on stderr, never on the
            # child's stdout.
            configure_logging(command_logging_level(self._settings.logging_level), stream=sys.stderr)
            loop = _new_event_loop()
            asyncio.set_event_loop(loop)
            self._stopping = asyncio.Event()
            self._loop = loop
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the main thread, which prints it
            self._failure = exc
            # Wake the main thread out of sigtimedwait(): the child must not wait on a server
            # that is not coming (say, the database's schema is behind).
            os.kill(os.getpid(), signal.SIGCHLD)
        finally:
            if loop is not None:
                loop.close()
            self._sock.close()

    async def _serve(self) -> None:
        from aiohttp import web

        from .app import create_app

        # Deliveries a notification rule records here are sent by the standing server or
        # `runlog notifier start`, as in the CLI's other in-process uses.
        runner = web.AppRunner(create_app(self._settings, standing=False), access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, self._sock).start()
            if not self._stop_requested.is_set():
                await self._stopping.wait()
        finally:
            await runner.cleanup()


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block the forwarded signals and SIGCHLD in this thread and every thread started inside."""
    mask = {*FORWARDED, signal.SIGCHLD}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    try:
        yield
    finally:
        # Drop what is still pending (a SIGCHLD from the ended child), then restore the mask.
        while signal.sigtimedwait(mask, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Start ARGV (looked up on PATH) with ENV, our stdio and a clean signal mask; its pid."""
    try:
        return os.posix_spawnp(
            argv[0], list(argv), dict(env), setsigmask=(), setsigdef=_RESET_TO_DEFAULT,
        )
    except FileNotFoundError:
        raise ChildNotStarted(127, f"command not found: {argv[0]}") from None
    except PermissionError:
        raise ChildNotStarted(126, f"permission denied: {argv[0]}") from None
    except OSError as exc:
        raise ChildNotStarted(126, f"cannot run {argv[0]}: {exc.strerror or exc}") from None


class ChildNotStarted(RunlogError):
    """The command could not be executed; ``status`` is the shell's code for why (127, 126)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def wait_forwarding(pid: int, server: EmbeddedServer | None = None) -> int:
    """Wait for child PID, forwarding signals other processes send us; its exit code (128+N
    when signal N ended it). Should SERVER fail, the child is sent SIGTERM. Call inside
    ``signals_blocked()``."""
    watched = {*FORWARDED, signal.SIGCHLD}
    terminated = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return exit_code(status)
        if server is not None and server.failure is not None and not terminated:
            terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        info = signal.sigtimedwait(watched, POLL_SECONDS)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        # si_pid is 0 for a signal the kernel raised, such as the terminal's Ctrl-C (SIGINT),
        # Ctrl-\ (SIGQUIT) or hang-up (SIGHUP), which the whole foreground group (the child
        # too) received already. Anything another process sent was meant for the command.
        if info.si_pid != 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, info.si_signo)


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N after signal N."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
