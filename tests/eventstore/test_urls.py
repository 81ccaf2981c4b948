"""Database URL parsing and password masking."""

from __future__ import annotations

import os

import pytest

from runlog.eventstore import InvalidDatabaseURL, mask_url, parse_database_url


@pytest.mark.parametrize(
    ("url", "backend", "path", "in_memory"),
    [
        ("sqlite:///runlog.db", "sqlite", "runlog.db", False),
        ("sqlite:////var/lib/runlog.db", "sqlite", "/var/lib/runlog.db", False),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite", "/tmp/x.db", False),
        ("sqlite://", "sqlite", None, True),
        ("sqlite:///:memory:", "sqlite", None, True),
        ("sqlite+aiosqlite:///file::memory:?cache=shared&uri=true", "sqlite", None, True),
    ],
)
def test_sqlite_urls(url, backend, path, in_memory):
    parsed = parse_database_url(url)
    assert (parsed.backend, parsed.sqlite_path, parsed.in_memory) == (backend, path, in_memory)


def test_sqlite_home_is_expanded():
    assert parse_database_url("sqlite:///~/x.db").sqlite_path == os.path.expanduser("~/x.db")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@localhost:5432/db",
        "postgres://u:p@localhost/db",
        "postgresql+asyncpg://u:p@localhost:5432/db?sslmode=disable",
    ],
)
def test_postgres_urls_become_asyncpg_dsns(url):
    parsed = parse_database_url(url)
    assert parsed.backend == "postgres"
    assert parsed.postgres_dsn.startswith("postgresql://u:p@localhost")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'"),
        ("just-a-path.db", "not a database URL"),
        ("postgresql://u:secret@host:notaport/db", "not a valid PostgreSQL URL"),
        ("postgresql:///db", "names no host"),
        ("sqlite://relative.db", "three slashes"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(InvalidDatabaseURL, match=message) as info:
        parse_database_url(url)
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:s3cret@host:5432/db", "postgresql://user:********@host:5432/db"),
        ("postgresql+asyncpg://user:p%40ss@h/db?x=1", "postgresql+asyncpg://user:********@h/db?x=1"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("sqlite:////tmp/a.db", "sqlite:////tmp/a.db"),
    ],
)
def test_mask_url_hides_only_the_password(url, masked):
    assert mask_url(url) == masked
