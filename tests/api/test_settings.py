"""api.settings: precedence, validation, profiles.toml reading and writing, profile isolation."""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
from pathlib import Path

import pytest

from runlog.api.errors import SettingsError
from runlog.api.settings import (
    DEFAULTS,
    SETTING_NAMES,
    Profiles,
    load_settings,
    profiles_path,
    read_profiles,
    resolve_home,
    write_profiles,
)

from . import isolate_runlog_env

PG_URL = "postgresql+asyncpg://runlog:hunter2@db.example:5432/runlog"


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_runlog_env(monkeypatch, tmp_path)


def write(home: Path, active: str = "default", **profiles: dict[str, str]) -> None:
    write_profiles(home, Profiles(active=active, profiles=dict(profiles) or {"default": {}}))


# -- defaults and precedence ------------------------------------------------------------------


def test_without_a_profiles_file_the_default_profile_and_defaults_apply(home: Path) -> None:
    s = load_settings()
    assert s.home == home
    assert s.profile == "default"
    assert s.api_url is None
    assert s.database_url == f"sqlite:///{home}/runlog.db"
    assert s.database_url.startswith("sqlite:////")  # four slashes: an absolute path
    assert (s.server_host, s.server_port, s.migrate_on_start, s.logging_level) == ("127.0.0.1", 4200, True, "INFO")
    assert {n: s.source(n).source for n in SETTING_NAMES} == dict.fromkeys(SETTING_NAMES, "defaults")
    assert not profiles_path(home).exists(), "loading settings must not create the file"


def test_setting_names_and_defaults_are_exposed() -> None:
    assert SETTING_NAMES == (
        "RUNLOG_API_URL",
        "RUNLOG_DATABASE_URL",
        "RUNLOG_SERVER_HOST",
        "RUNLOG_SERVER_PORT",
        "RUNLOG_SERVER_MAX_BODY_SIZE",
        "RUNLOG_DATABASE_MIGRATE_ON_START",
        "RUNLOG_SERVER_BLOCKS_REGISTER_ON_START",
        "RUNLOG_LOGGING_LEVEL",
        "RUNLOG_UI_URL",
        "RUNLOG_NOTIFIER_BASE_URLS",
        "RUNLOG_NOTIFIER_ENABLED",
        "RUNLOG_NOTIFIER_MAX_AGE",
        "RUNLOG_NOTIFIER_RETRY_BACKOFF",
        "RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF",
        "RUNLOG_METRICS_ENABLED",
        "RUNLOG_UI_ENABLED",
        "RUNLOG_UI_API_URL",
        "RUNLOG_UI_SERVE_BASE",
        "RUNLOG_SERVER_API_AUTH_STRING",
        "RUNLOG_API_AUTH_STRING",
        "RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED",
        "RUNLOG_SERVER_API_CSRF_TOKEN_EXPIRATION",
        "RUNLOG_SERVER_ENCRYPTION_KEY",
        "RUNLOG_SERVICES_LATE_RUNS_ENABLED",
        "RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS",
        "RUNLOG_SERVICES_LATE_RUNS_AFTER_SECONDS",
        "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_ENABLED",
        "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_LOOP_SECONDS",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_CANCELLING_TIMEOUT_SECONDS",
        "RUNLOG_SERVICES_SCHEDULER_ENABLED",
        "RUNLOG_SERVICES_SCHEDULER_LOOP_SECONDS",
        "RUNLOG_SERVICES_SCHEDULER_RECENT_LOOP_SECONDS",
        "RUNLOG_SERVICES_FOREMAN_ENABLED",
        "RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS",
        "RUNLOG_SERVICES_RETENTION_ENABLED",
        "RUNLOG_SERVICES_RETENTION_LOOP_SECONDS",
        "RUNLOG_SERVICES_RETENTION_LOGS_MAX_AGE",
        "RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE",
        "RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS",
    )
    assert DEFAULTS["RUNLOG_DATABASE_URL"] == "sqlite:///${RUNLOG_HOME}/runlog.db"
    assert DEFAULTS["RUNLOG_SERVER_PORT"] == "4200"
    assert DEFAULTS["RUNLOG_API_URL"] is None


def test_runlog_home_defaults_to_dot_runlog_and_is_absolute() -> None:
    assert resolve_home({}) == Path.home() / ".runlog"
    assert resolve_home({"RUNLOG_HOME": "relative/dir"}).is_absolute()


PRECEDENCE = [
    # name, attr, profile value, env value, typed profile value, typed env value
    ("RUNLOG_API_URL", "api_url", "http://profile:4200/api", "https://env.example/api",
     "http://profile:4200/api", "https://env.example/api"),
    ("RUNLOG_DATABASE_URL", "database_url", "sqlite+aiosqlite:///profile.db", PG_URL,
     "sqlite+aiosqlite:///profile.db", PG_URL),
    ("RUNLOG_SERVER_HOST", "server_host", "0.0.0.0", "::1", "0.0.0.0", "::1"),
    ("RUNLOG_SERVER_PORT", "server_port", "5000", "6000", 5000, 6000),
    ("RUNLOG_DATABASE_MIGRATE_ON_START", "migrate_on_start", "no", "TRUE", False, True),
    ("RUNLOG_LOGGING_LEVEL", "logging_level", "debug", "Warning", "DEBUG", "WARNING"),
    ("RUNLOG_NOTIFIER_BASE_URLS", "notifier_base_urls", "slack=http://127.0.0.1:9000",
     " pagerduty = https://proxy.example/pd , ms-teams-webhook=http://[::1]:81",
     (("slack-webhook", "http://127.0.0.1:9000"),),
     (("ms-teams-webhook", "http://[::1]:81"), ("pager-duty-webhook", "https://proxy.example/pd"))),
    ("RUNLOG_NOTIFIER_ENABLED", "notifier_enabled", "false", "yes", False, True),
    ("RUNLOG_NOTIFIER_MAX_AGE", "notifier_max_age", "30m", "3600", 1800.0, 3600.0),
    ("RUNLOG_NOTIFIER_RETRY_BACKOFF", "notifier_retry_backoff", "1s", "0.5", 1.0, 0.5),
    ("RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF", "notifier_retry_max_backoff", "5m", "30s", 300.0, 30.0),
    ("RUNLOG_METRICS_ENABLED", "metrics_enabled", "false", "yes", False, True),
    ("RUNLOG_UI_ENABLED", "ui_enabled", "false", "yes", False, True),
    ("RUNLOG_UI_API_URL", "ui_api_url", "https://runlog.example/api", "http://10.0.0.5:4200/api",
     "https://runlog.example/api", "http://10.0.0.5:4200/api"),
    ("RUNLOG_UI_SERVE_BASE", "ui_serve_base", "/prefect/", "ui", "/prefect", "/ui"),
    ("RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS", "services_foreman_loop_seconds", "1s", "2m", 1.0, 120.0),
    ("RUNLOG_SERVICES_FOREMAN_ENABLED", "services_foreman_enabled", "false", "yes", False, True),
    ("RUNLOG_SERVICES_SCHEDULER_LOOP_SECONDS", "services_scheduler_loop_seconds", "30", "2m", 30.0, 120.0),
    ("RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS", "deployments_concurrency_slot_wait_seconds", "10s", "1m",
     10.0, 60.0),
]


@pytest.mark.parametrize(("name", "attr", "in_profile", "in_env", "profile_value", "env_value"), PRECEDENCE)
def test_env_beats_profile_beats_defaults(
    home: Path, monkeypatch: pytest.MonkeyPatch,
    name: str, attr: str, in_profile: str, in_env: str, profile_value: object, env_value: object,
) -> None:
    write(home, default={name: in_profile})
    s = load_settings()
    assert (getattr(s, attr), s.source(name)) == (profile_value, (in_profile, "profile"))

    monkeypatch.setenv(name, in_env)
    s = load_settings()
    assert (getattr(s, attr), s.source(name)) == (env_value, (in_env, "env"))

    monkeypatch.delenv(name)
    write(home, default={})
    s = load_settings()
    assert s.source(name).source == "defaults"
    assert s.value(name) == getattr(s, attr)


def test_an_explicit_env_mapping_replaces_os_environ(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_SERVER_PORT", "1111")
    s = load_settings(env={"RUNLOG_HOME": str(home), "RUNLOG_SERVER_PORT": "2222"})
    assert s.server_port == 2222


def test_empty_api_url_in_env_unsets_the_profiles_value(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home, default={"RUNLOG_API_URL": "http://127.0.0.1:4200/api"})
    monkeypatch.setenv("RUNLOG_API_URL", "")
    assert load_settings().api_url is None


def test_profile_values_may_reference_runlog_home(home: Path) -> None:
    write(home, default={"RUNLOG_DATABASE_URL": "sqlite+aiosqlite:///${RUNLOG_HOME}/other.db"})
    s = load_settings()
    assert s.database_url == f"sqlite+aiosqlite:///{home}/other.db"
    assert s.source("RUNLOG_DATABASE_URL").raw == "sqlite+aiosqlite:///${RUNLOG_HOME}/other.db"


@pytest.mark.parametrize(
    "url",
    [PG_URL, "postgresql://u@localhost/db", "sqlite+aiosqlite:///runlog.db",
     "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true", "sqlite:////var/lib/runlog.db"],
)
def test_prefect_style_database_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("RUNLOG_DATABASE_URL", url)
    assert load_settings().database_url == url


@pytest.mark.parametrize("word,value", [("true", True), ("YES", True), ("1", True), ("False", False), ("no", False), ("0", False)])
def test_booleans_accept_common_spellings(monkeypatch: pytest.MonkeyPatch, word: str, value: bool) -> None:
    monkeypatch.setenv("RUNLOG_DATABASE_MIGRATE_ON_START", word)
    assert load_settings().migrate_on_start is value


def test_unknown_runlog_names_in_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_NOT_A_SETTING", "whatever")
    monkeypatch.setenv("RUNLOG_TEST_SOMETHING", "x")
    assert load_settings().server_port == 4200


def test_hand_written_integer_and_boolean_entries_are_read_as_strings(home: Path) -> None:
    home.mkdir()
    profiles_path(home).write_text(
        'active = "default"\n[profiles.default]\nRUNLOG_SERVER_PORT = 4300\n'
        "RUNLOG_DATABASE_MIGRATE_ON_START = false\n"
    )
    s = load_settings()
    assert (s.server_port, s.migrate_on_start) == (4300, False)


# -- validation ------------------------------------------------------------------------------

INVALID = [
    ("RUNLOG_API_URL", "ftp://files.example", "http:// or https://"),
    ("RUNLOG_API_URL", "localhost:4200", "http:// or https://"),
    ("RUNLOG_API_URL", "http://host:99999/api", "not a valid URL"),
    ("RUNLOG_DATABASE_URL", "mysql://root:hunter2@db/runlog", "unsupported database URL scheme"),
    ("RUNLOG_DATABASE_URL", "runlog.db", "is not a database URL"),
    ("RUNLOG_DATABASE_URL", "postgresql://u:hunter2@db:port/x", "not a valid PostgreSQL URL"),
    ("RUNLOG_SERVER_HOST", "my host", "host name or IP address"),
    ("RUNLOG_SERVER_PORT", "http", "port number between 1 and 65535"),
    ("RUNLOG_SERVER_PORT", "0", "port number between 1 and 65535"),
    ("RUNLOG_SERVER_PORT", "65536", "port number between 1 and 65535"),
    ("RUNLOG_DATABASE_MIGRATE_ON_START", "maybe", "true, false, yes, no, 1, 0"),
    ("RUNLOG_LOGGING_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("RUNLOG_NOTIFIER_BASE_URLS", "carrier-pigeon=http://h", "unknown channel kind 'carrier-pigeon'"),
    ("RUNLOG_NOTIFIER_BASE_URLS", "slack", "KIND=URL pairs"),
    ("RUNLOG_NOTIFIER_BASE_URLS", "slack=file:///tmp/x", "http:// or https://"),
    ("RUNLOG_NOTIFIER_BASE_URLS", "slack=http://u:hunter2@proxy", "no credentials"),
    ("RUNLOG_NOTIFIER_ENABLED", "sometimes", "true, false, yes, no, 1, 0"),
    ("RUNLOG_NOTIFIER_MAX_AGE", "a day", "positive duration"),
    ("RUNLOG_NOTIFIER_MAX_AGE", "0h", "positive duration"),
    ("RUNLOG_NOTIFIER_RETRY_BACKOFF", "0", "positive duration"),
    ("RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF", "soon", "positive duration"),
    ("RUNLOG_METRICS_ENABLED", "sometimes", "true, false, yes, no, 1, 0"),
    ("RUNLOG_UI_ENABLED", "sometimes", "true, false, yes, no, 1, 0"),
    ("RUNLOG_UI_API_URL", "ftp://host/api", "http:// or https://"),
    ("RUNLOG_UI_SERVE_BASE", "/api", "/api is runlog's own"),
    ("RUNLOG_UI_SERVE_BASE", "/runlog/ui", "/runlog is runlog's own"),
    ("RUNLOG_UI_SERVE_BASE", "/my ui", "URL path"),
]


def _masked(value: str) -> str:
    return value.replace("hunter2", "********")


@pytest.mark.parametrize(("name", "value", "problem"), INVALID)
def test_a_malformed_env_value_names_the_setting_the_value_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert name in message and repr(_masked(value)) in message and problem in message
    assert "environment" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(("name", "value", "problem"), INVALID)
def test_a_malformed_profile_value_names_the_profile(home: Path, name: str, value: str, problem: str) -> None:
    write(home, active="staging", staging={name: value})
    with pytest.raises(SettingsError, match="profile 'staging'") as info:
        load_settings()
    assert name in str(info.value) and problem in str(info.value)
    assert "hunter2" not in str(info.value)


def test_an_unknown_name_in_a_profile_is_refused(home: Path) -> None:
    write(home, default={"RUNLOG_SERVER_PROT": "4200"})
    with pytest.raises(SettingsError, match="unknown setting 'RUNLOG_SERVER_PROT'"):
        load_settings()


def test_an_unknown_profile_is_an_error_naming_the_known_ones(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home, default={}, staging={})
    with pytest.raises(SettingsError, match=r"unknown profile 'prod'; known profiles: default, staging"):
        load_settings("prod")
    monkeypatch.setenv("RUNLOG_PROFILE", "prod")
    with pytest.raises(SettingsError, match="unknown profile 'prod'"):
        load_settings()


def test_a_broken_profiles_file_is_a_settings_error(home: Path) -> None:
    home.mkdir()
    profiles_path(home).write_text("active = [unclosed\n")
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings()


# -- profiles --------------------------------------------------------------------------------


def test_profile_argument_beats_runlog_profile_which_beats_active(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home, active="a", a={"RUNLOG_SERVER_PORT": "1001"}, b={"RUNLOG_SERVER_PORT": "1002"},
          c={"RUNLOG_SERVER_PORT": "1003"})
    assert (load_settings().profile, load_settings().server_port) == ("a", 1001)
    monkeypatch.setenv("RUNLOG_PROFILE", "b")
    assert (load_settings().profile, load_settings().server_port) == ("b", 1002)
    assert (load_settings("c").profile, load_settings("c").server_port) == ("c", 1003)


def test_two_profiles_are_isolated(home: Path) -> None:
    """Loading one profile never shows another's database URL or port, in values, sources or repr."""
    other_url = "postgresql+asyncpg://prod:s3cret@prod-db:5432/runlog"
    write(
        home,
        active="dev",
        dev={"RUNLOG_DATABASE_URL": "sqlite:///${RUNLOG_HOME}/dev.db", "RUNLOG_SERVER_PORT": "4201"},
        prod={"RUNLOG_DATABASE_URL": other_url, "RUNLOG_SERVER_PORT": "4301"},
    )
    dev, prod = load_settings("dev"), load_settings("prod")
    assert (dev.database_url, dev.server_port) == (f"sqlite:///{home}/dev.db", 4201)
    assert (prod.database_url, prod.server_port) == (other_url, 4301)
    dev_text = repr(dev) + repr(dict(dev.sources))
    assert "prod-db" not in dev_text and "4301" not in dev_text
    prod_text = repr(prod) + repr(dict(prod.sources))
    assert "dev.db" not in prod_text and "4201" not in prod_text


def test_settings_are_frozen_and_their_repr_masks_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_DATABASE_URL", PG_URL)
    s = load_settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.server_port = 1  # type: ignore[misc]
    assert "hunter2" not in repr(s) and "runlog:********@db.example" in repr(s)
    assert s.display("RUNLOG_DATABASE_URL") == PG_URL.replace("hunter2", "********")


def test_write_profiles_is_atomic_private_and_in_prefects_format(home: Path) -> None:
    write(home, active="dev", default={}, dev={"RUNLOG_SERVER_PORT": "4201"})
    path = profiles_path(home)
    assert tomllib.loads(path.read_text()) == {
        "active": "dev",
        "profiles": {"default": {}, "dev": {"RUNLOG_SERVER_PORT": "4201"}},
    }
    assert os.listdir(home) == ["profiles.toml"], "no temporary file is left behind"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_profiles(home) == Profiles(active="dev", profiles={"default": {}, "dev": {"RUNLOG_SERVER_PORT": "4201"}})


def test_the_ui_url_defaults_to_the_servers_own_address(tmp_path):
    from runlog.api.settings import load_settings

    base = {"RUNLOG_HOME": str(tmp_path)}
    assert load_settings(env=base).ui_base_url == "http://127.0.0.1:4200"
    assert load_settings(env=base | {"RUNLOG_SERVER_HOST": "0.0.0.0", "RUNLOG_SERVER_PORT": "8080"}).ui_base_url == (
        "http://127.0.0.1:8080"
    )
    assert load_settings(env=base | {"RUNLOG_UI_URL": "https://runlog.example/"}).ui_base_url == "https://runlog.example"
