"""Tests of the outer layer: settings, profiles, logging and the runlog CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def isolate_runlog_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point RUNLOG_HOME at a fresh directory and drop RUNLOG_* variables from the real shell.

    RUNLOG_TEST_* stay: they configure the test suite itself, not runlog.
    """
    for name in list(os.environ):
        if name.startswith("RUNLOG_") and not name.startswith("RUNLOG_TEST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "runlog-home"
    monkeypatch.setenv("RUNLOG_HOME", str(home))
    return home
