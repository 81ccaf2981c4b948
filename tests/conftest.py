"""Fixtures shared by the whole suite: a fresh database on each backend per test.

PostgreSQL tests run against a real server (tests/pgserver.py finds or starts one). Under
CI=true a missing server fails the run instead of skipping, so CI can never pass by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from runlog.eventstore import open_store

from .pgserver import ensure_postgres

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url, problem = ensure_postgres()
    if url is None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is not available: {problem}", pytrace=False)
        pytest.skip(problem or "PostgreSQL unavailable")
    return url


def _replace_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    base = base.rsplit("/", 1)[0] + "/" + name
    return base + ("?" + query if query else "")


@contextlib.contextmanager
def new_pg_database(admin_url: str) -> Iterator[str]:
    """A URL to a new, empty PostgreSQL database on the server of ``admin_url``, dropped after."""
    name = f"runlog_test_{uuid.uuid4().hex[:16]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _replace_database(admin_url, name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def database_for(request: pytest.FixtureRequest, workdir) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """For a fixture parametrized by backend (``request.param``): a SQLite file in WORKDIR, or a
    new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{workdir}/runlog.db"
        return
    with new_pg_database(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@pytest.fixture
def pg_url(postgres_admin_url: str) -> Iterator[str]:
    """A URL to a new, empty PostgreSQL database, dropped after the test."""
    with new_pg_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/runlog.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request) -> str:
    """A fresh database URL on each backend in turn."""
    return request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator:
    async with open_store(store_url) as opened:
        yield opened
