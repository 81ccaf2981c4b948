"""``runlog database ...`` against both backends."""

from __future__ import annotations

import pytest

from runlog.eventstore import migrate

from . import isolate_runlog_env
from .cli_runner import run_cli


@pytest.fixture
def database(monkeypatch, tmp_path, store_url):
    isolate_runlog_env(monkeypatch, tmp_path)
    monkeypatch.setenv("RUNLOG_DATABASE_URL", store_url)
    return store_url


def test_upgrade_current_downgrade_reset_and_history(database, backend):
    head = migrate.head_revision(backend)
    newest = migrate.load_migrations(backend)[-1]
    result = run_cli("database", "current")
    assert result.exit_code == 0 and f"revision 0 (behind; head is {head})" in result.output

    result = run_cli("database", "upgrade", "-y", "-r", "1")
    assert result.exit_code == 0, result.output
    assert "Applied 0001_events." in result.output and "upgraded to revision 1" in result.output
    result = run_cli("database", "upgrade", "-y")
    assert f"upgraded to revision {head}" in result.output
    assert f"already at revision {head}; nothing to do" in run_cli("database", "upgrade", "-y").output
    assert f"revision {head} (up to date)" in run_cli("database", "current").output

    history = run_cli("database", "history")
    assert history.exit_code == 0 and "events" in history.output and "not applied" not in history.output

    result = run_cli("database", "downgrade", "-y", "-r", "-1")
    assert result.exit_code == 0 and f"Reverted {newest.revision:04d}_{newest.name}." in result.output
    assert "not applied" in run_cli("database", "history").output

    result = run_cli("database", "downgrade", "-y", "-r", "base")
    assert "downgraded to revision 0" in result.output
    result = run_cli("database", "reset", "-y")
    assert result.exit_code == 0 and f"Reverted 0 migration(s), applied {head}." in result.output


def test_answering_no_changes_nothing(database):
    run_cli("database", "upgrade", "-y")
    for command, word in (("downgrade", "Downgrade"), ("reset", "Reset")):
        result = run_cli("database", command, input="n\n")
        assert result.exit_code == 0 and f"{word} aborted." in result.output
    assert "(up to date)" in run_cli("database", "current").output
    result = run_cli("database", "upgrade", input="n\n")
    assert "Upgrade aborted." in result.output


def test_output_masks_the_password(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNLOG_HOME", str(tmp_path))
    monkeypatch.setenv("RUNLOG_DATABASE_URL", "postgresql://runlog:hunter2@127.0.0.1:1/runlog")
    result = run_cli("database", "current")
    assert result.exit_code == 1
    assert "Error:" in result.output and "hunter2" not in result.output and "********" in result.output


@pytest.mark.parametrize("revision", ["99", "abc"])
def test_a_bad_revision_is_a_clear_error(database, revision):
    result = run_cli("database", "upgrade", "-y", "-r", revision)
    assert result.exit_code == 1 and result.output.startswith("Error: revision")
