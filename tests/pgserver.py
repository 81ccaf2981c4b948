"""Finding (or starting) the PostgreSQL server the tests run against.

RUNLOG_TEST_POSTGRES_URL names an admin connection; when it is set, that server is used as is.
Otherwise the default is postgres@127.0.0.1:5432 (RUNLOG_TEST_POSTGRES_PROBE_PORT changes the
probed port). When nothing usable answers there, `ensure_postgres()`:

  1. starts the machine's Debian cluster configured on that port (`pg_ctlcluster ... start`),
     if there is one; else
  2. creates a throwaway cluster with initdb in a temp dir on a free port (trust auth,
     127.0.0.1 only), running initdb/pg_ctl as an unprivileged user when we are root.

Throwaway clusters are stopped and deleted by `stop_started_postgres()`, which also runs at
exit. A cluster started with pg_ctlcluster is the machine's own and is left running.
Each test gets a fresh database created from the admin URL and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import asyncpg

from .servers import unused_port

DEFAULT_PORT = 5432
DEFAULT_ADMIN_URL = f"postgresql://postgres@127.0.0.1:{DEFAULT_PORT}/postgres"


def _log(message: str) -> None:
    print(f"pgserver: {message}", file=sys.stderr, flush=True)


def probe_port() -> int:
    return int(os.environ.get("RUNLOG_TEST_POSTGRES_PROBE_PORT") or DEFAULT_PORT)


def local_url(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def admin_url() -> str:
    return os.environ.get("RUNLOG_TEST_POSTGRES_URL") or local_url(probe_port())


async def _reachable(url: str) -> str | None:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        return str(exc) or type(exc).__name__
    await conn.close()
    return None


def reachable(url: str) -> str | None:
    """None when `url` accepts a connection, else why not."""
    return asyncio.run(_reachable(url))


def _wait_reachable(url: str, seconds: float) -> str | None:
    deadline = time.monotonic() + seconds
    while True:
        problem = reachable(url)
        if problem is None or time.monotonic() > deadline:
            return problem
        time.sleep(0.5)


def _run(cmd: list[str], *, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kw
    )


def _tail(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or "") + (proc.stdout or "")
    return " ".join(text.strip().splitlines()[-3:]) or f"exit {proc.returncode}"


# --- 1. the machine's own cluster (Debian's pg_ctlcluster) ---------------------------------


def _cluster_port(version: str) -> int:
    try:
        with open(f"/etc/postgresql/{version}/main/postgresql.conf") as conf:
            for line in conf:
                found = re.match(r"\s*port\s*=\s*(\d+)", line)
                if found:
                    return int(found.group(1))
    except OSError:
        pass
    return DEFAULT_PORT


def _start_debian_cluster(port: int) -> str | None:
    """Start the configured `<version>/main` cluster listening on `port`; None on success.

    Note: `pg_ctlcluster ... start` (run by `ensure_postgres` only when nothing listens on `port`).
    """
    if shutil.which("pg_ctlcluster") is None:
        return "no pg_ctlcluster"
    versions = [path.split("/")[3] for path in glob.glob("/etc/postgresql/*/main")]
    versions = [v for v in versions if _cluster_port(v) == port]
    if not versions:
        return f"no cluster in /etc/postgresql/*/main configured on port {port}"
    version = max(versions, key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")])
    cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
    try:
        proc = _run(cmd)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(cmd)}: {exc}"
    problem = _wait_reachable(local_url(port), 30)
    if problem is None:
        done = "started" if proc.returncode == 0 else f"{' '.join(cmd)} exited {proc.returncode}, but"
        _log(f"{done} the machine's cluster {version}/main answers on port {port}")
        return None
    return f"{' '.join(cmd)}: {_tail(proc) if proc.returncode else problem}"


# --- 2. a throwaway cluster made with initdb ------------------------------------------------


def find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")])
    return candidates[-1] if candidates else None


def _version(binary: str) -> str:
    try:
        return _run([binary, "--version"], timeout=10).stdout.strip() or binary
    except (OSError, subprocess.SubprocessError):
        return binary


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _unprivileged_user() -> str | None:
    """Whom to run initdb/pg_ctl as: None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither user 'postgres' nor 'nobody' exists")


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    if user is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *cmd]
    import shlex

    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(cmd)]


@dataclass
class ThrowawayServer:
    url: str
    port: int
    workdir: str
    user: str | None
    pg_ctl: str

    @property
    def datadir(self) -> str:
        return os.path.join(self.workdir, "data")

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            for mode in ("fast", "immediate"):
                cmd = _as_user(self.user, [self.pg_ctl, "-D", self.datadir, "-m", mode, "-w", "stop"])
                try:
                    if _run(cmd, timeout=60, cwd=self.workdir).returncode == 0:
                        break
                except (OSError, subprocess.TimeoutExpired):
                    pass
        shutil.rmtree(self.workdir, ignore_errors=True)


_STARTED: list[ThrowawayServer] = []
_ATEXIT_REGISTERED = False


def start_throwaway_postgres(port: int | None = None) -> ThrowawayServer:
    """initdb + pg_ctl start a fresh trust-auth cluster on 127.0.0.1; raises on failure."""
    global _ATEXIT_REGISTERED
    initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
    user = _unprivileged_user()
    # As root the other user must reach the dir: use /tmp rather than a possibly private TMPDIR.
    workdir = tempfile.mkdtemp(prefix="runlog-pg-", dir="/tmp" if user else None)
    server = ThrowawayServer("", 0, workdir, user, pg_ctl)
    try:
        datadir, sockdir, logfile = server.datadir, os.path.join(workdir, "sock"), os.path.join(workdir, "log")
        os.mkdir(sockdir)
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (workdir, sockdir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        proc = _run(
            _as_user(user, [initdb, "-D", datadir, "-A", "trust", "-U", "postgres",
                            "-E", "UTF8", "--locale=C", "--no-sync"]),
            cwd=workdir, env=env,
        )
        if proc.returncode:
            raise RuntimeError(f"initdb failed: {_tail(proc)}")
        for attempt in range(3):
            # PostgreSQL takes its port from its configuration and cannot report one it picked:
            # choose an unused one, and retry on another if something took it meanwhile.
            server.port = port or unused_port()
            with open(os.path.join(datadir, "postgresql.conf"), "a") as conf:
                conf.write(
                    "\n# runlog test suite\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"port = {server.port}\n"
                    f"unix_socket_directories = '{sockdir}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\n"
                )
            proc = _run(
                _as_user(user, [pg_ctl, "-D", datadir, "-l", logfile, "-w", "-t", "60", "start"]),
                cwd=workdir, env=env,
            )
            if proc.returncode == 0 or port is not None:
                break  # a fixed port will not get better by retrying; a random one may
        if proc.returncode:
            try:
                with open(logfile) as log:
                    detail = " ".join(log.read().strip().splitlines()[-3:])
            except OSError:
                detail = _tail(proc)
            raise RuntimeError(f"pg_ctl start failed: {detail}")
        server.url = local_url(server.port)
        problem = _wait_reachable(server.url, 30)
        if problem is not None:
            raise RuntimeError(f"started but not reachable at {server.url}: {problem}")
    except BaseException:
        server.stop()
        raise
    _STARTED.append(server)
    if not _ATEXIT_REGISTERED:
        atexit.register(stop_started_postgres)
        _ATEXIT_REGISTERED = True
    _log(
        f"started throwaway {_version(initdb)} at {server.url} "
        f"(data in {workdir}, run as {user or 'current user'}; stopped at exit)"
    )
    return server


def stop_started_postgres(url: str | None = None) -> None:
    """Stop and delete the throwaway clusters this process started (only `url`'s, if given)."""
    for server in list(reversed(_STARTED)):
        if url is None or server.url == url:
            _STARTED.remove(server)
            server.stop()


# --- the entry point ------------------------------------------------------------------------


def ensure_postgres(port: int | None = None) -> tuple[str | None, str | None]:
    """(admin URL, None) when a server answers (after starting one if need be), else (None, why).

    `port` overrides the probed local port (default: RUNLOG_TEST_POSTGRES_PROBE_PORT or 5432).
    """
    explicit = os.environ.get("RUNLOG_TEST_POSTGRES_URL")
    if explicit:
        problem = reachable(explicit)
        return (explicit, None) if problem is None else (None, f"no PostgreSQL at {explicit}: {problem}")

    port = port or probe_port()
    url = local_url(port)
    problem = reachable(url)
    if problem is None:
        return url, None
    reasons = [f"no PostgreSQL at {url}: {problem}"]

    if not _port_open(port):  # something answering but refusing us: the cluster is up already
        cluster_problem = _start_debian_cluster(port)
        if cluster_problem is None:
            return url, None
        reasons.append(cluster_problem)

    try:
        return start_throwaway_postgres().url, None
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        reasons.append(f"throwaway cluster: {exc}")
    return None, "; ".join(reasons)
