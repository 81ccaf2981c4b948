"""`runlog run COMMAND`: the command runs against runlog, its stdio, exit code and signals pass
through, and the runs of a real Prefect flow land in the local database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..servers import ROOT, RUNLOG, runlog_server, server_env

# A child that reports what it was given: the API URL, and whether a server answers there.
PROBE = (
    "import os, sys, httpx; url = os.environ['PREFECT_API_URL']; "
    "print(json.dumps({'url': url, 'health': httpx.get(url + '/health', timeout=30).status_code}))"
)


def run_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """runlog's settings for DATABASE_URL and a Prefect client that knows no server of its own."""
    env = {k: v for k, v in server_env(tmp_path, database_url).items() if not k.startswith("PREFECT_")}
    return env | {
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra,
    }


def runlog_run(env: dict[str, str], *command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RUNLOG, "run", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, **kwargs,
    )


def flow_runs(env: dict[str, str]) -> list[dict]:
    listed = subprocess.run(
        [*RUNLOG, "flow-run", "ls", "-o", "json", "--limit", "50"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120, check=True,
    )
    return json.loads(listed.stdout)


def test_the_child_gets_prefect_api_url_of_a_serving_runlog(tmp_path, sqlite_url):
    done = runlog_run(run_env(tmp_path, sqlite_url), sys.executable, "-c", "import json; " + PROBE)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith("/api")
    assert seen["health"] == 200
    # The one line on stderr: where the runs went and how to push them.
    assert "runs recorded in the local database" in done.stderr
    assert "runlog events push --to URL" in done.stderr


@pytest.mark.parametrize("code", [0, 1, 3, 77])
def test_the_exit_code_is_the_childs(tmp_path, sqlite_url, code):
    done = runlog_run(run_env(tmp_path, sqlite_url), "-q", "--", sys.executable, "-c", f"raise SystemExit({code})")
    assert done.returncode == code
    assert done.stderr == ""  # -q: no line of runlog's own


def test_a_child_killed_by_a_signal_exits_128_plus_the_signal(tmp_path, sqlite_url):
    done = runlog_run(
        run_env(tmp_path, sqlite_url), "-q", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    )
    assert done.returncode == 128 + signal.SIGKILL


def test_a_command_that_does_not_exist_exits_127(tmp_path, sqlite_url):
    done = runlog_run(run_env(tmp_path, sqlite_url), "no-such-command-runlog-test")
    assert done.returncode == 127
    assert "command not found: no-such-command-runlog-test" in done.stderr


def test_stdin_and_stdout_pass_through(tmp_path, sqlite_url):
    done = runlog_run(
        run_env(tmp_path, sqlite_url), "-q", sys.executable, "-c",
        "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('to stderr')",
        input="hello\nworld\n",
    )
    assert done.returncode == 0
    assert done.stdout == "HELLO\nWORLD\n"
    assert done.stderr == "to stderr"


def test_options_after_the_command_belong_to_the_command(tmp_path, sqlite_url):
    done = runlog_run(run_env(tmp_path, sqlite_url), "-q", sys.executable, "-c", "import sys; print(sys.argv[1:])", "-q", "--x")
    assert done.stdout.strip() == "['-q', '--x']"


# A child that says when its handlers are in place, then waits for a signal and reports it.
WAITER = """
import signal, sys, time
def got(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(3)
signal.signal(signal.SIGINT, got)
signal.signal(signal.SIGTERM, got)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_sent_to_runlog_run_reaches_the_child_once(tmp_path, sqlite_url, signum):
    proc = subprocess.Popen(
        [*RUNLOG, "run", "-q", sys.executable, "-c", WAITER], cwd=ROOT, env=run_env(tmp_path, sqlite_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == f"got {signal.Signals(signum).name}\n", err
    assert proc.returncode == 3


def test_with_runlog_api_url_the_child_is_pointed_at_that_server(tmp_path, sqlite_url):
    with runlog_server(server_env(tmp_path, sqlite_url), tmp_path / "server.log") as running:
        # The local database is another file: nothing may be served from it.
        env = run_env(tmp_path, f"sqlite:///{tmp_path}/unused.db", RUNLOG_API_URL=running.url)
        done = runlog_run(env, sys.executable, "-c", "import json; " + PROBE)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"url": running.url, "health": 200}
    assert f"runs sent to {running.url}" in done.stderr
    assert not (tmp_path / "unused.db").exists()


def test_a_prefect_flow_run_lands_in_the_local_database(tmp_path, store_url):
    env = run_env(tmp_path, store_url)
    done = runlog_run(env, sys.executable, "-m", "tests.compat.flows", "two_tasks")
    assert done.returncode == 0, done.stderr
    flow_run_id = json.loads(done.stdout.strip().splitlines()[-1])["flow_run_id"]
    # Afterwards, with no server running, the CLI reads the run from the same database.
    [run] = [r for r in flow_runs(env) if r["id"] == flow_run_id]
    assert run["state"]["type"] == "COMPLETED"


def test_two_at_once_over_one_sqlite_file(tmp_path, sqlite_url):
    env = run_env(tmp_path, sqlite_url)
    procs = [
        subprocess.Popen(
            [*RUNLOG, "run", "-q", sys.executable, "-m", "tests.compat.flows", "two_tasks"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    ids = {json.loads(out.strip().splitlines()[-1])["flow_run_id"] for out, _ in outputs}
    assert len(ids) == 2
    states = {r["id"]: r["state"]["type"] for r in flow_runs(env)}
    assert {states[i] for i in ids} == {"COMPLETED"}


def test_runs_acknowledged_before_the_child_is_killed_are_kept(tmp_path, store_url):
    """The child creates a run, says so, and is SIGKILLed: runlog run still closes the store
    cleanly and the run is in the database afterwards."""
    script = (
        "import asyncio, os, signal\n"
        "from prefect import flow, get_client\n"
        "@flow(name='killed-flow')\n"
        "def killed(): pass\n"
        "async def main():\n"
        "    async with get_client() as client:\n"
        "        run = await client.create_flow_run(killed)\n"
        "    print(run.id, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    env = run_env(tmp_path, store_url)
    done = runlog_run(env, "-q", sys.executable, "-c", script)
    assert done.returncode == 128 + signal.SIGKILL, done.stderr
    flow_run_id = done.stdout.strip()
    assert flow_run_id in {r["id"] for r in flow_runs(env)}


def test_a_server_that_cannot_start_stops_the_child_and_says_why(tmp_path, sqlite_url):
    """A database whose schema is behind, with migration on start turned off: the child (which
    would otherwise sleep ten minutes, past runlog_run's timeout) is sent SIGTERM and runlog run
    exits 1 with the reason."""
    env = run_env(tmp_path, sqlite_url, RUNLOG_DATABASE_MIGRATE_ON_START="false")
    done = runlog_run(env, sys.executable, "-c", WAITER.replace("time.sleep(120)", "time.sleep(600)"))
    # SIGTERM may come before the child's handler is in place (then it prints nothing).
    assert done.stdout in ("", "ready\ngot SIGTERM\n")
    assert done.returncode == 1
    assert "Error:" in done.stderr and "RUNLOG_DATABASE_MIGRATE_ON_START is false" in done.stderr


# Waits for a SIGINT, then reports how many arrived within a second of the first.
COUNTER = """
import signal, sys, time
count = 0
def got(signum, frame):
    global count
    count += 1
signal.signal(signal.SIGINT, got)
print("ready", flush=True)
while not count:
    time.sleep(0.01)
time.sleep(1)
print("sigints", count, flush=True)
sys.exit(3)
"""


def _controlling_terminal() -> None:
    """In the child, after setsid(): make its standard input, the pty, its controlling terminal."""
    import fcntl
    import termios

    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_c_on_the_terminal_reaches_the_child_and_runlog_run_waits_for_it(tmp_path, sqlite_url):
    """The terminal sends SIGINT to runlog run and the child alike (one process group): the
    child handles it, and runlog run, rather than dying of it, exits with the child's code."""
    import pty

    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*RUNLOG, "run", "-q", sys.executable, "-c", COUNTER], cwd=ROOT, env=run_env(tmp_path, sqlite_url),
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        preexec_fn=_controlling_terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        while b"ready" not in seen:
            seen += os.read(controller, 4096)
        os.write(controller, b"\x03")  # the terminal's interrupt character: SIGINT to the group
        while b"sigints" not in seen or not seen.rstrip().endswith((b"1", b"2", b"3")):
            seen += os.read(controller, 4096)
        assert proc.wait(timeout=60) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    assert b"sigints" in seen, seen


def test_the_profile_named_with_p_chooses_the_local_database(tmp_path, sqlite_url):
    """`runlog -p NAME run ...`: the runs go to that profile's database, which the line names."""
    env = {k: v for k, v in run_env(tmp_path, sqlite_url).items() if k != "RUNLOG_DATABASE_URL"}
    other = f"sqlite:///{tmp_path}/other.db"
    for args in (["profile", "create", "other"], ["-p", "other", "config", "set", f"RUNLOG_DATABASE_URL={other}"]):
        subprocess.run([*RUNLOG, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    done = runlog_run(env, sys.executable, "-c", "pass")
    assert done.returncode == 0, done.stderr
    assert "(profile default)" in done.stderr
    done = subprocess.run([*RUNLOG, "-p", "other", "run", sys.executable, "-c", "pass"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert f"{other} (profile other)" in done.stderr
    assert (tmp_path / "other.db").exists()
