"""`runlog config` and `runlog profile`: output, profiles.toml effects and clean errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from runlog.api.cli import cli
from runlog.api.commands import config, profile
from runlog.api.settings import load_settings

from . import isolate_runlog_env

PG_URL = "postgresql+asyncpg://runlog:hunter2@db.example:5432/runlog"
MASKED_PG_URL = "postgresql+asyncpg://runlog:********@db.example:5432/runlog"


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_runlog_env(monkeypatch, tmp_path)


def runlog_cli() -> click.Group:
    # api.cli registers every group in main(); the database and events groups are not ours
    # to import here, so add only the two under test.
    for group in (config.group, profile.group):
        cli.add_command(group)
    return cli


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(runlog_cli(), list(args), input=input, env=env)


def ok(*args: str, **kwargs) -> Result:
    result = run(*args, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str, message: str, **kwargs) -> Result:
    """The command exits 1 with one clean 'Error: ...' line containing MESSAGE."""
    result = run(*args, **kwargs)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output
    return result


def stored(home: Path) -> dict:
    return tomllib.loads((home / "profiles.toml").read_text())


# -- config set / unset ----------------------------------------------------------------------


def test_config_set_creates_the_file_and_reports_each_key(home: Path) -> None:
    result = ok("config", "set", "RUNLOG_SERVER_PORT=4300", "runlog_server_host=0.0.0.0")
    assert result.stdout.splitlines() == [
        "Set 'RUNLOG_SERVER_PORT' to '4300'.",
        "Set 'RUNLOG_SERVER_HOST' to '0.0.0.0'.",
        "Updated profile 'default'.",
    ]
    assert stored(home) == {
        "active": "default",
        "profiles": {"default": {"RUNLOG_SERVER_PORT": "4300", "RUNLOG_SERVER_HOST": "0.0.0.0"}},
    }


def test_config_set_masks_the_password_it_prints_but_stores_it(home: Path) -> None:
    result = ok("config", "set", f"RUNLOG_DATABASE_URL={PG_URL}")
    assert f"Set 'RUNLOG_DATABASE_URL' to '{MASKED_PG_URL}'." in result.stdout
    assert "hunter2" not in result.output
    assert stored(home)["profiles"]["default"]["RUNLOG_DATABASE_URL"] == PG_URL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["RUNLOG_SERVER_PORT"], "'RUNLOG_SERVER_PORT' is not KEY=VALUE"),
        (["RUNLOG_SERVER_PROT=4200"], "unknown setting 'RUNLOG_SERVER_PROT'; did you mean 'RUNLOG_SERVER_PORT'?"),
        (["RUNLOG_HOME=/tmp"], "RUNLOG_HOME can only be set in the environment"),
        (["RUNLOG_SERVER_HOST=0.0.0.0", "RUNLOG_SERVER_PORT=http"],
         "invalid value 'http' for RUNLOG_SERVER_PORT: expected a port number between 1 and 65535"),
        ([f"RUNLOG_DATABASE_URL={PG_URL.replace('postgresql+asyncpg', 'mysql')}"],
         "unsupported database URL scheme 'mysql'"),
    ],
)
def test_config_set_refuses_bad_input_and_writes_nothing(home: Path, args: list[str], message: str) -> None:
    result = fails("config", "set", *args, message=message)
    assert "hunter2" not in result.output
    assert not (home / "profiles.toml").exists()


def test_config_set_warns_when_the_environment_overrides_the_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_SERVER_PORT", "9999")
    result = ok("config", "set", "RUNLOG_SERVER_PORT=4300")
    assert result.stderr == (
        "Warning: RUNLOG_SERVER_PORT is also set in the environment, which overrides the profile.\n"
    )
    assert stored(home)["profiles"]["default"] == {"RUNLOG_SERVER_PORT": "4300"}


def test_config_set_writes_into_the_profile_chosen_by_p_or_runlog_profile(home: Path) -> None:
    ok("profile", "create", "dev")
    ok("profile", "create", "ci")
    assert ok("-p", "dev", "config", "set", "RUNLOG_SERVER_PORT=4201").stdout.endswith("Updated profile 'dev'.\n")
    ok("config", "set", "RUNLOG_SERVER_PORT=4202", env={"RUNLOG_PROFILE": "ci"})
    assert stored(home)["profiles"] == {
        "default": {}, "dev": {"RUNLOG_SERVER_PORT": "4201"}, "ci": {"RUNLOG_SERVER_PORT": "4202"},
    }
    fails("-p", "nope", "config", "set", "RUNLOG_SERVER_PORT=1", message="unknown profile 'nope'; known profiles: ci, default, dev")


def test_config_unset_with_yes_removes_the_keys(home: Path) -> None:
    ok("config", "set", "RUNLOG_SERVER_PORT=4300", "RUNLOG_SERVER_HOST=0.0.0.0")
    result = ok("config", "unset", "RUNLOG_SERVER_PORT", "RUNLOG_SERVER_HOST", "-y")
    assert result.stdout.splitlines() == [
        "Unset 'RUNLOG_SERVER_PORT'.", "Unset 'RUNLOG_SERVER_HOST'.", "Updated profile 'default'.",
    ]
    assert stored(home)["profiles"]["default"] == {}


def test_config_unset_asks_first_and_does_nothing_on_no(home: Path) -> None:
    ok("config", "set", "RUNLOG_SERVER_PORT=4300")
    result = ok("config", "unset", "RUNLOG_SERVER_PORT", input="n\n")
    assert "Unset 'RUNLOG_SERVER_PORT' from profile 'default'? [y/N]" in result.stdout
    assert "Nothing changed." in result.stdout
    assert stored(home)["profiles"]["default"] == {"RUNLOG_SERVER_PORT": "4300"}

    result = ok("config", "unset", "RUNLOG_SERVER_PORT", input="y\n")
    assert result.stdout.endswith("Unset 'RUNLOG_SERVER_PORT'.\nUpdated profile 'default'.\n")
    assert stored(home)["profiles"]["default"] == {}


def test_config_unset_of_a_key_not_in_the_profile_is_an_error(home: Path) -> None:
    ok("config", "set", "RUNLOG_SERVER_PORT=4300")
    fails("config", "unset", "RUNLOG_SERVER_PORT", "RUNLOG_SERVER_HOST", "-y",
          message="'RUNLOG_SERVER_HOST' is not set in profile 'default'")
    assert stored(home)["profiles"]["default"] == {"RUNLOG_SERVER_PORT": "4300"}


def test_a_hand_written_unknown_key_is_reported_and_can_be_unset(home: Path) -> None:
    home.mkdir()
    (home / "profiles.toml").write_text('active = "default"\n[profiles.default]\nrunlog_server_prot = "1"\n')
    fails("config", "view", message="sets unknown setting 'runlog_server_prot'; remove it with")
    ok("config", "unset", "runlog_server_prot", "-y")
    assert ok("config", "view").exit_code == 0


# -- config view -----------------------------------------------------------------------------


def test_config_view_shows_profile_home_and_non_default_values_with_sources(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("config", "set", f"RUNLOG_DATABASE_URL={PG_URL}", "RUNLOG_SERVER_PORT=4300")
    monkeypatch.setenv("RUNLOG_SERVER_PORT", "4400")
    result = ok("config", "view")
    assert result.stdout.splitlines() == [
        "RUNLOG_PROFILE='default'",
        f"RUNLOG_HOME='{home}' (from env)",
        f"RUNLOG_DATABASE_URL='{MASKED_PG_URL}' (from profile)",
        "RUNLOG_SERVER_PORT='4400' (from env)",
    ]
    assert "hunter2" not in result.output


def test_config_view_hide_sources_and_show_defaults(home: Path) -> None:
    result = ok("config", "view", "--hide-sources", "--show-defaults")
    assert result.stdout.splitlines() == [
        "RUNLOG_PROFILE='default'",
        f"RUNLOG_HOME='{home}'",
        f"RUNLOG_DATABASE_URL='sqlite:///{home}/runlog.db'",
        "RUNLOG_SERVER_HOST='127.0.0.1'",
        "RUNLOG_SERVER_PORT='4200'",
        "RUNLOG_SERVER_MAX_BODY_SIZE='10485760'",
        "RUNLOG_DATABASE_MIGRATE_ON_START='true'",
        "RUNLOG_SERVER_BLOCKS_REGISTER_ON_START='true'",
        "RUNLOG_LOGGING_LEVEL='INFO'",
        "RUNLOG_NOTIFIER_ENABLED='true'",
        "RUNLOG_NOTIFIER_MAX_AGE='24h'",
        "RUNLOG_NOTIFIER_RETRY_BACKOFF='5s'",
        "RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF='1h'",
        "RUNLOG_METRICS_ENABLED='true'",
        "RUNLOG_UI_ENABLED='true'",
        "RUNLOG_UI_SERVE_BASE='/'",
        "RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED='false'",
        "RUNLOG_SERVER_API_CSRF_TOKEN_EXPIRATION='1h'",
        "RUNLOG_SERVICES_LATE_RUNS_ENABLED='true'",
        "RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS='5'",
        "RUNLOG_SERVICES_LATE_RUNS_AFTER_SECONDS='15'",
        "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_ENABLED='true'",
        "RUNLOG_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS='5'",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED='true'",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_LOOP_SECONDS='20'",
        "RUNLOG_SERVICES_CANCELLATION_CLEANUP_CANCELLING_TIMEOUT_SECONDS='300'",
        "RUNLOG_SERVICES_SCHEDULER_ENABLED='true'",
        "RUNLOG_SERVICES_SCHEDULER_LOOP_SECONDS='60'",
        "RUNLOG_SERVICES_SCHEDULER_RECENT_LOOP_SECONDS='5'",
        "RUNLOG_SERVICES_FOREMAN_ENABLED='true'",
        "RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS='15'",
        "RUNLOG_SERVICES_RETENTION_ENABLED='false'",
        "RUNLOG_SERVICES_RETENTION_LOOP_SECONDS='1h'",
        "RUNLOG_SERVICES_RETENTION_LOGS_MAX_AGE='30d'",
        "RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE='7d'",
        "RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS='30'",
    ]
    with_sources = ok("config", "view", "--show-defaults").stdout
    assert "RUNLOG_SERVER_HOST='127.0.0.1' (from defaults)" in with_sources


def test_config_view_masks_the_auth_strings_and_a_bad_one_is_refused_without_being_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNLOG_SERVER_API_AUTH_STRING", "admin:hunter2")
    ok("config", "set", "RUNLOG_API_AUTH_STRING=admin:hunter2")
    result = ok("config", "view", "--show-sources")
    assert "RUNLOG_SERVER_API_AUTH_STRING='********' (from env)" in result.stdout
    assert "RUNLOG_API_AUTH_STRING='********' (from profile)" in result.stdout
    assert "hunter2" not in result.output
    monkeypatch.setenv("RUNLOG_SERVER_API_AUTH_STRING", "hunter2-without-a-user")
    refused = run("config", "view")
    assert refused.exit_code != 0 and "expected user:password" in refused.output
    assert "hunter2" not in refused.output


def test_config_view_masks_a_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_DATABASE_URL", PG_URL)
    result = ok("config", "view")
    assert f"RUNLOG_DATABASE_URL='{MASKED_PG_URL}' (from env)" in result.stdout
    assert "hunter2" not in result.output


def test_config_view_follows_p_and_runlog_profile(home: Path) -> None:
    ok("profile", "create", "dev")
    ok("-p", "dev", "config", "set", "RUNLOG_SERVER_PORT=4201")
    assert "RUNLOG_SERVER_PORT" not in ok("config", "view").stdout
    dev_view = ok("-p", "dev", "config", "view").stdout
    assert dev_view.startswith("RUNLOG_PROFILE='dev'\n") and "RUNLOG_SERVER_PORT='4201' (from profile)" in dev_view
    assert ok("config", "view", env={"RUNLOG_PROFILE": "dev"}).stdout == dev_view


def test_config_view_reports_a_malformed_env_value_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLOG_SERVER_PORT", "http")
    fails("config", "view", message="invalid value 'http' for RUNLOG_SERVER_PORT (from the environment)")


# -- profile ---------------------------------------------------------------------------------


def test_profile_ls_without_a_file_shows_the_active_default() -> None:
    assert ok("profile", "ls").stdout == "* default\n"


def test_profile_create_use_ls_inspect(home: Path) -> None:
    assert ok("profile", "create", "dev").stdout.startswith("Created profile 'dev'.")
    assert ok("profile", "ls").stdout == "* default\n  dev\n"
    assert ok("profile", "inspect", "dev").stdout == "Profile 'dev' is empty.\n"

    assert ok("profile", "use", "dev").stdout == "Switched to profile 'dev'.\n"
    assert stored(home)["active"] == "dev"
    assert ok("profile", "ls").stdout == "  default\n* dev\n"

    ok("config", "set", f"RUNLOG_DATABASE_URL={PG_URL}", "RUNLOG_SERVER_PORT=4201")
    inspected = ok("profile", "inspect", "dev").stdout
    assert inspected == f"RUNLOG_DATABASE_URL='{MASKED_PG_URL}'\nRUNLOG_SERVER_PORT='4201'\n"
    assert ok("profile", "inspect").stdout == inspected, "NAME defaults to the selected profile"


def test_profile_create_from_copies_the_settings(home: Path) -> None:
    ok("config", "set", "RUNLOG_SERVER_PORT=4300")
    assert ok("profile", "create", "copy", "--from", "default").stdout.startswith(
        "Created profile 'copy' from 'default'."
    )
    assert stored(home)["profiles"]["copy"] == {"RUNLOG_SERVER_PORT": "4300"}
    ok("-p", "copy", "config", "set", "RUNLOG_SERVER_PORT=4301")
    assert stored(home)["profiles"]["default"] == {"RUNLOG_SERVER_PORT": "4300"}, "a copy, not a shared table"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "default"], "profile 'default' already exists"),
        (["create", "my profile"], "invalid profile name 'my profile'"),
        (["create", "x.y"], "invalid profile name 'x.y'"),
        (["create", "new", "--from", "ghost"], "unknown profile 'ghost'; known profiles: default"),
        (["use", "ghost"], "unknown profile 'ghost'; known profiles: default"),
        (["inspect", "ghost"], "unknown profile 'ghost'"),
        (["delete", "ghost", "-y"], "unknown profile 'ghost'"),
        (["delete", "default", "-y"], "profile 'default' is the active profile; switch to another"),
    ],
)
def test_profile_errors_are_clean(home: Path, args: list[str], message: str) -> None:
    fails("profile", *args, message=message)
    assert not (home / "profiles.toml").exists()


def test_profile_delete_asks_first_and_refuses_the_active_one(home: Path) -> None:
    ok("profile", "create", "dev")
    ok("profile", "use", "dev")
    fails("profile", "delete", "dev", "-y", message="profile 'dev' is the active profile")

    result = ok("profile", "delete", "default", input="n\n")
    assert "Delete profile 'default'? [y/N]" in result.stdout and "Nothing changed." in result.stdout
    assert set(stored(home)["profiles"]) == {"default", "dev"}

    assert ok("profile", "delete", "default", input="y\n").stdout.endswith("Deleted profile 'default'.\n")
    assert ok("profile", "ls").stdout == "* dev\n"
    ok("profile", "create", "gone")
    assert ok("profile", "delete", "gone", "-y").stdout == "Deleted profile 'gone'.\n"


def test_profile_use_warns_when_runlog_profile_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ok("profile", "create", "dev")
    monkeypatch.setenv("RUNLOG_PROFILE", "default")
    result = ok("profile", "use", "dev")
    assert result.stderr.startswith("Warning: RUNLOG_PROFILE='default' in the environment")


def test_two_profiles_with_different_databases_and_ports_are_isolated() -> None:
    ok("profile", "create", "a")
    ok("profile", "create", "b")
    ok("-p", "a", "config", "set", "RUNLOG_DATABASE_URL=sqlite:///a.db", "RUNLOG_SERVER_PORT=4001")
    ok("-p", "b", "config", "set", f"RUNLOG_DATABASE_URL={PG_URL}", "RUNLOG_SERVER_PORT=4002")
    view_a = ok("-p", "a", "config", "view").stdout
    view_b = ok("-p", "b", "config", "view").stdout
    assert "sqlite:///a.db" in view_a and "4001" in view_a
    assert "db.example" not in view_a and "4002" not in view_a
    assert MASKED_PG_URL in view_b and "4002" in view_b
    assert "a.db" not in view_b and "4001" not in view_b


FERNET_KEY = "x0cUp6AxoMvIYTI-qv9UVEMTVeHHYGZ-Z2RW6DdCzmA="


def test_the_encryption_key_is_never_shown(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set, viewed, refused or in a repr: the block encryption key reads ********."""
    result = ok("config", "set", f"RUNLOG_SERVER_ENCRYPTION_KEY={FERNET_KEY}")
    assert "Set 'RUNLOG_SERVER_ENCRYPTION_KEY' to '********'." in result.stdout
    assert stored(home)["profiles"]["default"]["RUNLOG_SERVER_ENCRYPTION_KEY"] == FERNET_KEY
    viewed = ok("config", "view", "--show-sources").stdout
    assert "RUNLOG_SERVER_ENCRYPTION_KEY='********' (from profile)" in viewed
    bad = fails("config", "set", "RUNLOG_SERVER_ENCRYPTION_KEY=not-a-key-but-secret", message="expected a Fernet key")
    settings = load_settings()
    assert settings.server_encryption_key == FERNET_KEY and FERNET_KEY not in repr(settings)
    assert FERNET_KEY not in result.output + viewed and "not-a-key-but-secret" not in bad.output
