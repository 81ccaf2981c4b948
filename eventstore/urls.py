"""Database URLs: which backend a URL names, where its data lives, and how to show it safely.

Accepted forms (SQLAlchemy's conventions, so Prefect-style URLs work unchanged):

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite+aiosqlite:///...``
* ``sqlite://``, ``sqlite:///:memory:`` and
  ``sqlite+aiosqlite:///file::memory:?cache=shared&uri=true``: an in-memory database
* ``postgresql://user:password@host:port/db``, ``postgres://...``, ``postgresql+asyncpg://...``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from .errors import InvalidDatabaseURL

MASK = "********"

_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    backend: Literal["sqlite", "postgres"]
    raw: str
    sqlite_path: str | None = None  # a filesystem path, or None for an in-memory database
    sqlite_uri: str | None = None  # a sqlite "file:" URI, when the URL asked for one
    postgres_dsn: str | None = None  # what asyncpg accepts

    @property
    def in_memory(self) -> bool:
        return self.backend == "sqlite" and self.sqlite_path is None

    def masked(self) -> str:
        return mask_url(self.raw)


def parse_database_url(url: str) -> DatabaseURL:
    if not isinstance(url, str) or not url.strip():
        raise InvalidDatabaseURL("the database URL is empty")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise InvalidDatabaseURL(
            f"{mask_url(url)!r} is not a database URL; expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    if scheme in _SQLITE_SCHEMES:
        return _parse_sqlite(url, rest)
    if scheme in _POSTGRES_SCHEMES:
        return _parse_postgres(url)
    raise InvalidDatabaseURL(
        f"unsupported database URL scheme {scheme!r} in {mask_url(url)!r}; "
        "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    )


def _parse_sqlite(url: str, rest: str) -> DatabaseURL:
    # After "sqlite://" comes an (empty) host, then "/" and the path, as in SQLAlchemy.
    if rest == "":
        return DatabaseURL("sqlite", url)
    if not rest.startswith("/"):
        raise InvalidDatabaseURL(
            f"{url!r}: a SQLite URL has three slashes before a relative path "
            "(sqlite:///runlog.db) and four before an absolute one (sqlite:////var/runlog.db)"
        )
    path, _, query = rest[1:].partition("?")
    params = parse_qs(query)
    if path in ("", ":memory:") or path.startswith("file::memory:"):
        return DatabaseURL("sqlite", url)
    if path.startswith("file:") and params.get("uri") == ["true"]:
        other = "&".join(p for p in query.split("&") if p and p != "uri=true")
        return DatabaseURL("sqlite", url, sqlite_path=path[5:], sqlite_uri=path + ("?" + other if other else ""))
    return DatabaseURL("sqlite", url, sqlite_path=os.path.expanduser(path))


def _parse_postgres(url: str) -> DatabaseURL:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError as exc:
        raise InvalidDatabaseURL(f"{mask_url(url)!r} is not a valid PostgreSQL URL: {exc}") from None
    if not parts.hostname and "host=" not in parts.query:
        raise InvalidDatabaseURL(f"{mask_url(url)!r} names no host")
    del port
    dsn = urlunsplit(SplitResult("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))
    return DatabaseURL("postgres", url, postgres_dsn=dsn)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ********; anything unparseable is left as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{hostport}{slash}{tail}"
