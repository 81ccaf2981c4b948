"""The server's time-based services are each switched and timed by a RUNLOG_SERVICES_* setting."""

from __future__ import annotations

import pytest

from runlog.api import keys
from runlog.api.errors import SettingsError
from runlog.api.settings import load_settings

from ..servers import serve

TIMED = ("late_runs", "pause_expirations", "cancellation_cleanup")


async def test_the_app_runs_every_time_based_service_by_default(env) -> None:
    async with serve(env) as server:
        assert set(TIMED) <= set(server.app[keys.SERVICES].leading)


async def test_a_disabled_service_is_not_started(env) -> None:
    off = {**env, "RUNLOG_SERVICES_LATE_RUNS_ENABLED": "false", "RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED": "no"}
    async with serve(off) as server:
        names = set(server.app[keys.SERVICES].leading)
    assert "late_runs" not in names and "cancellation_cleanup" not in names
    assert "pause_expirations" in names


def test_service_settings_have_prefects_defaults_and_take_units(tmp_path) -> None:
    defaults = load_settings(env={"RUNLOG_HOME": str(tmp_path)})
    assert (defaults.services_late_runs_loop_seconds, defaults.services_late_runs_after_seconds) == (5.0, 15.0)
    assert defaults.services_pause_expirations_loop_seconds == 5.0
    assert defaults.services_cancellation_cleanup_loop_seconds == 20.0
    assert defaults.services_cancellation_cleanup_cancelling_timeout_seconds == 300.0
    tuned = load_settings(env={"RUNLOG_HOME": str(tmp_path), "RUNLOG_SERVICES_LATE_RUNS_AFTER_SECONDS": "1m"})
    assert tuned.services_late_runs_after_seconds == 60.0
    with pytest.raises(SettingsError, match="RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS"):
        load_settings(env={"RUNLOG_HOME": str(tmp_path), "RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS": "0"})


async def test_the_manual_clock_server_fixture_runs_no_time_based_service_unless_asked(server) -> None:
    """The in-process ``server`` fixture steps on real time but reads a manual clock: its
    time-based services are off unless the test asks (tests/api/conftest.py)."""
    assert not set(TIMED) & set(server.app[keys.SERVICES].leading)


@pytest.mark.services
async def test_a_test_marked_services_gets_them_on_its_manual_clock(server) -> None:
    assert set(TIMED) <= set(server.app[keys.SERVICES].leading)


async def test_retention_is_off_by_default_and_runs_when_enabled(env) -> None:
    async with serve(env) as server:
        assert "retention" not in server.app[keys.SERVICES].leading
    async with serve({**env, "RUNLOG_SERVICES_RETENTION_ENABLED": "true"}) as server:
        assert "retention" in server.app[keys.SERVICES].leading


def test_retention_ages_take_units_and_off(tmp_path) -> None:
    defaults = load_settings(env={"RUNLOG_HOME": str(tmp_path)})
    assert defaults.services_retention_enabled is False
    assert (defaults.services_retention_logs_max_age, defaults.services_retention_heartbeats_max_age) == (
        30 * 86400.0, 7 * 86400.0)
    tuned = load_settings(env={"RUNLOG_HOME": str(tmp_path), "RUNLOG_SERVICES_RETENTION_LOGS_MAX_AGE": "off",
                               "RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE": "12h"})
    assert (tuned.services_retention_logs_max_age, tuned.services_retention_heartbeats_max_age) == (None, 43200.0)
    with pytest.raises(SettingsError, match="RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE"):
        load_settings(env={"RUNLOG_HOME": str(tmp_path), "RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE": "soon"})
