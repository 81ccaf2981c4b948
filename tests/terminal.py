"""Run the runlog CLI on a pseudo-terminal and read what a person would see (progress bars)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

RUNLOG = [sys.executable, "-c", "from runlog.api.cli import main; main()"]


def run_on_terminal(env: dict[str, str], *command: str, timeout: float = 60) -> str:
    """``runlog COMMAND`` with its standard streams on a terminal; everything it wrote there."""
    full_env = {**os.environ, **env, "TERM": "xterm", "COLUMNS": "100"}
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([*RUNLOG, *command], env=full_env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=timeout)
    os.close(controller)
    return b"".join(chunks).decode(errors="replace")
