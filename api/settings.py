"""runlog's settings: what each one is, where its value comes from, and the profiles file.

A value comes from the environment (``RUNLOG_*``), else from the selected profile in
``$RUNLOG_HOME/profiles.toml`` (Prefect's format), else from the defaults. ``load_settings``
resolves and validates them all into a frozen ``Settings``; the CLI's ``config`` and ``profile``
groups and the admin API read the same catalogue (``SETTINGS``) so they cannot drift apart.
"""

from __future__ import annotations

import base64
import difflib
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

import tomli_w

from runlog.eventstore.errors import InvalidDatabaseURL
from runlog.eventstore.urls import mask_url, parse_database_url

from .errors import SettingsError

HOME_VAR = "RUNLOG_HOME"
PROFILE_VAR = "RUNLOG_PROFILE"
DEFAULT_HOME = "~/.runlog"
DEFAULT_PROFILE = "default"
PROFILES_FILE = "profiles.toml"
HOME_PLACEHOLDER = "${RUNLOG_HOME}"

Source = Literal["env", "profile", "defaults"]


# -- the catalogue ---------------------------------------------------------------------------

# Each parser takes the raw string (with ${RUNLOG_HOME} already expanded) and returns the typed
# value, or raises ValueError saying what is wrong; _parse() adds the setting's name and value.


def _parse_api_url(raw: str) -> str | None:
    raw = raw.strip()
    if not raw:
        return None  # an empty value unsets it, e.g. to override a profile from the env
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL, such as http://127.0.0.1:4200/api")
    return raw


def _parse_database_url(raw: str) -> str:
    try:
        parse_database_url(raw)
    except InvalidDatabaseURL as exc:
        # Most of its messages mask the URL already; this catches the ones that quote it as is.
        raise ValueError(str(exc).replace(raw, mask_url(raw))) from None
    return raw.strip()


def _parse_host(raw: str) -> str:
    raw = raw.strip()
    if not raw or any(c.isspace() for c in raw):
        raise ValueError("expected a host name or IP address, such as 127.0.0.1 or 0.0.0.0")
    return raw


def _whole_number(raw: str, low: int, high: int | None, *, unreadable: str, out_of_range: str) -> int:
    """``raw`` as an int from ``low`` to ``high`` (None: no bound); ValueError with the message that fits."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError(unreadable) from None
    if value < low or (high is not None and value > high):
        raise ValueError(out_of_range)
    return value


_PORT = "expected a port number between 1 and 65535"


def _parse_port(raw: str) -> int:
    return _whole_number(raw, 1, 65535, unreadable=_PORT, out_of_range=_PORT)


def _parse_size(raw: str) -> int:
    return _whole_number(
        raw, 1024, None, unreadable="expected a whole number of bytes, e.g. 10485760 for 10 MB",
        out_of_range="expected at least 1024 bytes",
    )


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expected one of true, false, yes, no, 1, 0")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?$")
_UNIT_SECONDS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _parse_duration(raw: str) -> float:
    """Seconds, from a number of seconds or a number with a unit: 90s, 30m, 24h, 2d."""
    match = _DURATION.match(raw.strip().lower())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else 0.0
    if seconds <= 0:
        raise ValueError("expected a positive duration: seconds, or a number with s, m, h or d, such as 24h")
    return seconds


def _parse_serve_base(raw: str) -> str:
    """A URL path for the web UI: ``/``, or segments without a trailing slash."""
    base = "/" + raw.strip().strip("/")
    if any(c.isspace() or c in "?#%" for c in base) or "//" in base:
        raise ValueError("expected a URL path such as / or /prefect")
    for own in ("/api", "/metrics", "/runlog"):
        if base == own or base.startswith(own + "/"):
            raise ValueError(f"{own} is runlog's own; choose a path outside /api, /metrics and /runlog")
    return base


def _parse_auth_string(raw: str) -> str | None:
    """``user:password`` for HTTP Basic authentication, as Prefect's auth string; empty unsets it."""
    if not raw:
        return None  # an empty value unsets it, e.g. to override a profile from the env
    user, sep, password = raw.partition(":")
    if not sep or not password:
        raise ValueError("expected user:password (the password must not be empty)")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise ValueError("expected user:password without control characters")
    return raw


def _parse_max_age(raw: str) -> float | None:
    """A duration, or "off" (also empty, none, never) to keep forever: None."""
    if raw.strip().lower() in ("", "off", "none", "never"):
        return None
    return _parse_duration(raw)


def _parse_fernet_key(raw: str) -> str:
    """A Fernet key: 32 bytes in URL-safe base64 (``Fernet.generate_key()``), as Prefect's."""
    key = raw.strip()
    try:
        if len(base64.urlsafe_b64decode(key.encode())) == 32:
            return key
    except ValueError:
        pass
    raise ValueError("expected a Fernet key: 32 bytes in URL-safe base64 (44 characters)")


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _parse_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
    return level


def _parse_base_urls(raw: str) -> tuple[tuple[str, str], ...] | None:
    """KIND=URL pairs, comma-separated: the notifier sends that kind's requests to URL's
    scheme and host instead of the vendor's (tests, proxies, self-hosted servers)."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, url = item.partition("=")
        if not sep:
            raise ValueError("expected KIND=URL pairs separated by commas, such as slack=http://127.0.0.1:9000")
        from runlog.notifier.channels import channel_kind  # the senders' modules: only when this setting is set

        slug = channel_kind(name.strip()).slug  # ValueError naming the known kinds
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the base URL for {name.strip()} must be an http:// or https:// URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError(f"the base URL for {name.strip()} must hold no credentials, query or fragment")
        pairs[slug] = url.strip()
    return tuple(sorted(pairs.items())) or None


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its environment name, the Settings attribute it fills, its raw default."""

    name: str
    attr: str
    default: str | None  # raw, may contain ${RUNLOG_HOME}; None means "not set"
    parse: Callable[[str], object] = field(repr=False)
    help: str = ""
    secret: bool = False  # never shown: `config view`, errors and reprs say ******** instead

    def shown(self, raw: str) -> str:
        return SECRET_SHOWN if self.secret else mask_url(raw)


SECRET_SHOWN = "********"

SETTINGS: tuple[Setting, ...] = (
    Setting("RUNLOG_API_URL", "api_url", None, _parse_api_url,
            "URL of a runlog server's API, for commands that talk to one"),
    Setting("RUNLOG_DATABASE_URL", "database_url", f"sqlite:///{HOME_PLACEHOLDER}/runlog.db",
            _parse_database_url, "the event store: sqlite:///PATH or postgresql://..."),
    Setting("RUNLOG_SERVER_HOST", "server_host", "127.0.0.1", _parse_host,
            "address the server listens on"),
    Setting("RUNLOG_SERVER_PORT", "server_port", "4200", _parse_port,
            "port the server listens on"),
    Setting("RUNLOG_SERVER_MAX_BODY_SIZE", "server_max_body_size", "10485760", _parse_size,
            "largest request body the server accepts, in bytes; larger ones get 413"),
    Setting("RUNLOG_DATABASE_MIGRATE_ON_START", "migrate_on_start", "true", _parse_bool,
            "upgrade the database schema when the server starts"),
    Setting("RUNLOG_SERVER_BLOCKS_REGISTER_ON_START", "server_blocks_register_on_start", "true", _parse_bool,
            "register Prefect's built-in block types and schemas when `runlog server start` starts, as Prefect's does"),
    Setting("RUNLOG_LOGGING_LEVEL", "logging_level", "INFO", _parse_level,
            "lowest level that is logged"),
    Setting("RUNLOG_UI_URL", "ui_url", None, _parse_api_url,
            "base URL of the UI that notification links (the ui_url filter) point at; default: the server's own"),
    Setting("RUNLOG_NOTIFIER_BASE_URLS", "notifier_base_urls", None, _parse_base_urls,
            "KIND=URL,...: send a channel kind's requests to URL instead of the vendor's host"),
    Setting("RUNLOG_NOTIFIER_ENABLED", "notifier_enabled", "true", _parse_bool,
            "send notifications from `runlog server start` (else run `runlog notifier start`)"),
    Setting("RUNLOG_NOTIFIER_MAX_AGE", "notifier_max_age", "24h", _parse_duration,
            "how long an undelivered notification is retried before it is dead-lettered (30m, 24h, 2d)"),
    Setting("RUNLOG_NOTIFIER_RETRY_BACKOFF", "notifier_retry_backoff", "5s", _parse_duration,
            "wait before a failed notification's first retry; each next wait is three times longer"),
    Setting("RUNLOG_NOTIFIER_RETRY_MAX_BACKOFF", "notifier_retry_max_backoff", "1h", _parse_duration,
            "longest wait between two retries of a failed notification (a Retry-After is honoured up to 1h)"),
    Setting("RUNLOG_METRICS_ENABLED", "metrics_enabled", "true", _parse_bool,
            "serve Prometheus metrics at GET /metrics (else it answers 404)"),
    Setting("RUNLOG_UI_ENABLED", "ui_enabled", "true", _parse_bool,
            "serve Prefect's web UI (from the prefect package: pip install 'runlog[ui]')"),
    Setting("RUNLOG_UI_API_URL", "ui_api_url", None, _parse_api_url,
            "the API URL the web UI calls; default: this server's /api at the address the browser used"),
    Setting("RUNLOG_UI_SERVE_BASE", "ui_serve_base", "/", _parse_serve_base,
            "URL path the web UI is served under (v2 under its /v2); a copy of the bundle is kept under "
            "RUNLOG_HOME/ui"),
    Setting("RUNLOG_SERVER_API_AUTH_STRING", "server_api_auth_string", None, _parse_auth_string,
            "user:password that every API request, websocket and runlog page must present (HTTP Basic); "
            "Prefect clients set PREFECT_API_AUTH_STRING to it, runlog's CLI RUNLOG_API_AUTH_STRING", secret=True),
    Setting("RUNLOG_API_AUTH_STRING", "api_auth_string", None, _parse_auth_string,
            "user:password runlog's CLI sends to the server at RUNLOG_API_URL", secret=True),
    Setting("RUNLOG_SERVER_API_CSRF_PROTECTION_ENABLED", "server_api_csrf_protection_enabled", "false", _parse_bool,
            "require a CSRF token (GET /api/csrf-token, then the Prefect-Csrf-Token and Prefect-Csrf-Client "
            "headers) on every API request that changes something, as Prefect's setting"),
    Setting("RUNLOG_SERVER_API_CSRF_TOKEN_EXPIRATION", "server_api_csrf_token_expiration", "1h", _parse_duration,
            "how long a CSRF token stays valid after it is issued"),
    Setting("RUNLOG_SERVER_ENCRYPTION_KEY", "server_encryption_key", None, _parse_fernet_key,
            "Fernet key that encrypts block documents at rest; by default one is generated once "
            "and kept in the database", secret=True),
    # The server's background services (Prefect's defaults; `runlog server start` runs them).
    Setting("RUNLOG_SERVICES_LATE_RUNS_ENABLED", "services_late_runs_enabled", "true", _parse_bool,
            "mark Scheduled runs that missed their start time Late"),
    Setting("RUNLOG_SERVICES_LATE_RUNS_LOOP_SECONDS", "services_late_runs_loop_seconds", "5", _parse_duration,
            "how often late runs are looked for"),
    Setting("RUNLOG_SERVICES_LATE_RUNS_AFTER_SECONDS", "services_late_runs_after_seconds", "15", _parse_duration,
            "how long past its scheduled time a Scheduled run becomes Late"),
    Setting("RUNLOG_SERVICES_PAUSE_EXPIRATIONS_ENABLED", "services_pause_expirations_enabled", "true", _parse_bool,
            "fail Paused runs whose pause timeout has passed"),
    Setting("RUNLOG_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS", "services_pause_expirations_loop_seconds", "5",
            _parse_duration, "how often expired pauses are looked for"),
    Setting("RUNLOG_SERVICES_CANCELLATION_CLEANUP_ENABLED", "services_cancellation_cleanup_enabled", "true",
            _parse_bool, "cancel the subflows and task runs of cancelled runs; end Cancelling runs that time out"),
    Setting("RUNLOG_SERVICES_CANCELLATION_CLEANUP_LOOP_SECONDS", "services_cancellation_cleanup_loop_seconds", "20",
            _parse_duration, "how often the cancellation cleanup runs"),
    Setting("RUNLOG_SERVICES_CANCELLATION_CLEANUP_CANCELLING_TIMEOUT_SECONDS",
            "services_cancellation_cleanup_cancelling_timeout_seconds", "300", _parse_duration,
            "how long a run may stay Cancelling before it is made Cancelled"),
    Setting("RUNLOG_SERVICES_SCHEDULER_ENABLED", "services_scheduler_enabled", "true", _parse_bool,
            "create the Scheduled runs of deployments' active schedules"),
    Setting("RUNLOG_SERVICES_SCHEDULER_LOOP_SECONDS", "services_scheduler_loop_seconds", "60", _parse_duration,
            "how often the scheduler goes over every deployment"),
    Setting("RUNLOG_SERVICES_SCHEDULER_RECENT_LOOP_SECONDS", "services_scheduler_recent_loop_seconds", "5",
            _parse_duration, "how often the scheduler looks at the deployments changed since its last round"),
    Setting("RUNLOG_SERVICES_FOREMAN_ENABLED", "services_foreman_enabled", "true", _parse_bool,
            "mark workers OFFLINE and pools and queues NOT_READY as Prefect's foreman does"),
    Setting("RUNLOG_SERVICES_FOREMAN_LOOP_SECONDS", "services_foreman_loop_seconds", "15", _parse_duration,
            "how often worker, work pool and queue statuses are checked"),
    Setting("RUNLOG_SERVICES_RETENTION_ENABLED", "services_retention_enabled", "false", _parse_bool,
            "prune old run log lines and the old worker heartbeats and polls no view needs"),
    Setting("RUNLOG_SERVICES_RETENTION_LOOP_SECONDS", "services_retention_loop_seconds", "1h", _parse_duration,
            "how often retention runs"),
    Setting("RUNLOG_SERVICES_RETENTION_LOGS_MAX_AGE", "services_retention_logs_max_age", "30d", _parse_max_age,
            "run log lines (POST /logs/) older than this, by their timestamp, are deleted; off keeps them"),
    Setting("RUNLOG_SERVICES_RETENTION_HEARTBEATS_MAX_AGE", "services_retention_heartbeats_max_age", "7d",
            _parse_max_age, "worker heartbeats and queue polls older than this are deleted from the log, "
            "but never one a view is made from (a worker's first and last, a queue's last poll); off keeps them"),
    Setting("RUNLOG_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS", "deployments_concurrency_slot_wait_seconds", "30",
            _parse_duration, "how far ahead a deployment run that finds its concurrency limit full is "
            "rescheduled (AwaitingConcurrencySlot)"),
)
SETTINGS_BY_NAME: Mapping[str, Setting] = MappingProxyType({s.name: s for s in SETTINGS})
SETTING_NAMES: tuple[str, ...] = tuple(SETTINGS_BY_NAME)
DEFAULTS: Mapping[str, str | None] = MappingProxyType({s.name: s.default for s in SETTINGS})

# These say where the profiles are and which one to use, so they cannot live in a profile.
# Other RUNLOG_* names in the environment (RUNLOG_TEST_* belong to the test suite) are ignored:
# load_settings only ever looks up the names in SETTINGS.
_ENV_ONLY = {HOME_VAR, PROFILE_VAR}


def get_setting(name: str) -> Setting:
    """The setting called NAME, or a SettingsError that suggests the closest known name."""
    if name in SETTINGS_BY_NAME:
        return SETTINGS_BY_NAME[name]
    if name in _ENV_ONLY:
        raise SettingsError(f"{name} can only be set in the environment, not in a profile")
    hint = difflib.get_close_matches(name, SETTING_NAMES, n=1)
    suggestion = f"did you mean {hint[0]!r}?" if hint else f"known settings: {', '.join(SETTING_NAMES)}"
    raise SettingsError(f"unknown setting {name!r}; {suggestion}")


def expand_home(raw: str, home: Path) -> str:
    return raw.replace(HOME_PLACEHOLDER, str(home))


def validate_value(name: str, raw: str, home: Path, *, origin: str = "") -> object:
    """The typed value of setting NAME given RAW, or a SettingsError naming both and the problem."""
    setting = get_setting(name)
    try:
        return setting.parse(expand_home(raw, home))
    except ValueError as exc:
        where = f" (from {origin})" if origin else ""
        raise SettingsError(f"invalid value {setting.shown(raw)!r} for {name}{where}: {exc}") from None


# -- resolved settings -----------------------------------------------------------------------


class SettingSource(NamedTuple):
    """Where a setting's value came from, as written there (before ${RUNLOG_HOME} expansion)."""

    raw: str | None
    source: Source


@dataclass(frozen=True, repr=False)
class Settings:
    """Every setting resolved and typed for one profile, plus where each value came from."""

    home: Path
    profile: str
    api_url: str | None
    database_url: str
    server_host: str
    server_port: int
    server_max_body_size: int
    migrate_on_start: bool
    logging_level: str
    notifier_enabled: bool
    notifier_max_age: float
    """Seconds."""
    ui_url: str | None = None
    notifier_retry_backoff: float = 5.0
    """Seconds."""
    notifier_retry_max_backoff: float = 3600.0
    """Seconds."""
    # (channel kind slug, base URL) pairs, sorted; a tuple so that Settings stays hashable.
    notifier_base_urls: tuple[tuple[str, str], ...] | None = None
    server_encryption_key: str | None = None
    server_api_auth_string: str | None = None
    api_auth_string: str | None = None
    server_api_csrf_protection_enabled: bool = False
    server_api_csrf_token_expiration: float = 3600.0
    """Seconds."""
    metrics_enabled: bool = True
    server_blocks_register_on_start: bool = True
    ui_enabled: bool = True
    ui_api_url: str | None = None
    ui_serve_base: str = "/"
    deployments_concurrency_slot_wait_seconds: float = 30.0
    """Seconds."""
    services_late_runs_enabled: bool = True
    services_late_runs_loop_seconds: float = 5.0
    services_late_runs_after_seconds: float = 15.0
    services_pause_expirations_enabled: bool = True
    services_pause_expirations_loop_seconds: float = 5.0
    services_cancellation_cleanup_enabled: bool = True
    services_cancellation_cleanup_loop_seconds: float = 20.0
    services_cancellation_cleanup_cancelling_timeout_seconds: float = 300.0
    services_scheduler_enabled: bool = True
    services_scheduler_loop_seconds: float = 60.0
    services_scheduler_recent_loop_seconds: float = 5.0
    services_foreman_enabled: bool = True
    services_foreman_loop_seconds: float = 15.0
    """Seconds."""
    services_retention_enabled: bool = False
    services_retention_loop_seconds: float = 3600.0
    services_retention_logs_max_age: float | None = 30 * 86400.0
    """Seconds; None keeps them."""
    services_retention_heartbeats_max_age: float | None = 7 * 86400.0
    """Seconds; None keeps them."""
    # compare=False also keeps the (unhashable) mapping out of __hash__.
    sources: Mapping[str, SettingSource] = field(default_factory=dict, compare=False)

    def source(self, name: str) -> SettingSource:
        """(raw value, "env" | "profile" | "defaults") for setting NAME."""
        get_setting(name)
        return self.sources[name]

    def value(self, name: str) -> object:
        """The typed value of setting NAME."""
        return getattr(self, get_setting(name).attr)

    @property
    def ui_base_url(self) -> str:
        """Where notification links point: RUNLOG_UI_URL, else this server's own address (a
        wildcard listening address becomes loopback, which at least names the port)."""
        if self.ui_url:
            return self.ui_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(self.server_host, self.server_host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}"

    def display(self, name: str) -> str | None:
        """The value as configured, with ${RUNLOG_HOME} expanded and any password masked."""
        raw = self.source(name).raw
        return None if raw is None else get_setting(name).shown(expand_home(raw, self.home))

    def __repr__(self) -> str:
        # Settings end up in log lines and tracebacks; the database password must not.
        fields = ", ".join(
            f"{s.attr}={SECRET_SHOWN!r}" if s.secret and getattr(self, s.attr) is not None
            else f"{s.attr}={_masked_repr(getattr(self, s.attr))}"
            for s in SETTINGS
        )
        return f"Settings(home={str(self.home)!r}, profile={self.profile!r}, {fields})"


def _masked_repr(value: object) -> str:
    return repr(mask_url(value)) if isinstance(value, str) else repr(value)


def resolve_home(env: Mapping[str, str] | None = None) -> Path:
    """$RUNLOG_HOME as an absolute path (default ~/.runlog); it is read from the environment only."""
    env = os.environ if env is None else env
    return Path(os.path.expanduser(env.get(HOME_VAR) or DEFAULT_HOME)).absolute()


def load_settings(profile: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting: env beats the profile, which beats the defaults.

    PROFILE (e.g. from ``runlog -p``) picks the profile, else $RUNLOG_PROFILE, else the file's
    active one. Raises SettingsError for an unknown profile, an unknown name in the profile,
    or a malformed value.
    """
    env = os.environ if env is None else env
    home = resolve_home(env)
    profiles = read_profiles(home)
    name = select_profile(profiles, profile, env)
    stored = profiles.get(name)
    for key in stored:
        if key not in SETTINGS_BY_NAME:
            raise SettingsError(
                f"profile {name!r} in {profiles_path(home)} sets unknown setting {key!r}; "
                f"remove it with 'runlog -p {name} config unset {key}'"
            )

    values: dict[str, object] = {}
    sources: dict[str, SettingSource] = {}
    for setting in SETTINGS:
        if setting.name in env:
            raw, source, origin = env[setting.name], "env", "the environment"
        elif setting.name in stored:
            raw, source, origin = stored[setting.name], "profile", f"profile {name!r}"
        else:
            raw, source, origin = setting.default, "defaults", "the defaults"
        sources[setting.name] = SettingSource(raw, source)
        values[setting.attr] = None if raw is None else validate_value(setting.name, raw, home, origin=origin)
    return Settings(home=home, profile=name, sources=MappingProxyType(sources), **values)  # type: ignore[arg-type]


# -- profiles --------------------------------------------------------------------------------

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Profiles:
    """The contents of profiles.toml: the active profile's name and each profile's entries."""

    active: str = DEFAULT_PROFILE
    profiles: dict[str, dict[str, str]] = field(default_factory=lambda: {DEFAULT_PROFILE: {}})

    def get(self, name: str) -> dict[str, str]:
        """Profile NAME's entries (the live dict), or a SettingsError naming the known profiles."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise SettingsError(f"unknown profile {name!r}; known profiles: {known}") from None


def profiles_path(home: Path) -> Path:
    return home / PROFILES_FILE


def check_profile_name(name: str) -> str:
    if not _PROFILE_NAME.match(name):
        raise SettingsError(
            f"invalid profile name {name!r}: use only letters, digits, '-' and '_'"
        )
    return name


def select_profile(profiles: Profiles, requested: str | None, env: Mapping[str, str] | None = None) -> str:
    """The name of the profile to use: REQUESTED, else $RUNLOG_PROFILE, else the active one."""
    env = os.environ if env is None else env
    name = requested or env.get(PROFILE_VAR) or profiles.active
    profiles.get(name)  # raises for an unknown name
    return name


def read_profiles(home: Path) -> Profiles:
    """profiles.toml under HOME; when there is none, the single empty profile "default"."""
    path = profiles_path(home)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return Profiles()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from None

    active = data.get("active", DEFAULT_PROFILE)
    tables = data.get("profiles", {})
    if not isinstance(active, str) or not isinstance(tables, dict):
        raise SettingsError(f"{path}: expected 'active = \"NAME\"' and [profiles.NAME] tables")
    profiles: dict[str, dict[str, str]] = {}
    for name, entries in tables.items():
        if not isinstance(entries, dict):
            raise SettingsError(f"{path}: profiles.{name} is not a table")
        profiles[name] = {key: _entry(path, name, key, value) for key, value in entries.items()}
    return Profiles(active=active, profiles=profiles)


def _entry(path: Path, profile: str, key: str, value: object) -> str:
    # Values are strings in Prefect's format, but a hand-written `PORT = 4200` or `X = true`
    # means the obvious thing, so accept it rather than make someone add quotes.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    raise SettingsError(f"{path}: profiles.{profile}.{key} must be a string, not {type(value).__name__}")


def write_profiles(home: Path, profiles: Profiles) -> None:
    """Replace profiles.toml atomically, so a crash or a concurrent reader never sees half a file.

    Two commands writing at once still race (the last one wins); that is fine for a file a
    person edits by hand-typed commands.
    """
    home.mkdir(parents=True, exist_ok=True)
    path = profiles_path(home)
    text = tomli_w.dumps({"active": profiles.active, "profiles": profiles.profiles})
    # mkstemp creates the file readable by its owner only, which suits a file that may hold
    # database passwords; it sits in the same directory so os.replace is a rename, not a copy.
    fd, tmp = tempfile.mkstemp(prefix=".profiles-", suffix=".toml.tmp", dir=home)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
