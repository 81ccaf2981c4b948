"""A Prefect 3 server's database, opened read-only: its schema version checked, its tables read in
pages of plain values (ids as UUIDs, times as aware UTC datetimes, JSON columns decoded).

This is a foreign database, not runlog's store, so it is read here with the drivers directly:
SQLite through the standard library (a ``file:...?mode=ro`` URI, so the WAL is read where it is
and nothing is ever written), PostgreSQL through asyncpg in one read-only, repeatable-read
transaction (one consistent snapshot for the whole import).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from uuid import UUID

import msgspec

KNOWN_HEADS = {
    "sqlite": {"a3b9c7d2e5f1": "Prefect 3.8.8"},
    "postgres": {"d4a7e1c93f52": "Prefect 3.8.8"},
}
"""The alembic revisions whose schema this importer reads, per backend (they differ)."""

EPOCH = datetime(1970, 1, 1)


class SourceError(Exception):
    """The source database cannot be imported: unreachable, not Prefect's, or a version we do not know."""


Row = dict[str, Any]


def uid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    try:
        return msgspec.convert(value, UUID)  # twice as fast as UUID(text), and ids are most of a row
    except msgspec.ValidationError:
        raise ValueError(f"not an id: {value!r}") from None


def when(value: Any) -> datetime | None:
    """A time as Prefect stored it (SQLite: naive UTC text; PostgreSQL: timestamptz), aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            # Naive UTC text, as SQLite holds every time: parsed as UTC at once, five times
            # faster than parsing and replacing the tzinfo (times are most of a row's cost).
            moment = datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text with an offset of its own
            moment = None
        if moment is not None and moment.tzinfo is UTC:
            return moment
        value = datetime.fromisoformat(value)  # anything else (a date alone keeps no offset)
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def seconds(value: Any) -> float:
    """An interval column (total_run_time): SQLite keeps it as a time after the epoch."""
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        return float(value)
    return (datetime.fromisoformat(value) - EPOCH).total_seconds()


def js(value: Any) -> Any:
    """A JSON column: text on SQLite (and from asyncpg), decoded; None stays None."""
    if isinstance(value, (str, bytes)):
        return _decode_json(value)
    return value


_decode_json = msgspec.json.Decoder().decode


def flag(value: Any) -> bool:
    return bool(value)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Source:
    """The read side of the source database; ``fetch`` runs one query with ``?`` placeholders."""

    dialect: str
    url: str

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        raise NotImplementedError

    async def ids_in(self, sql: str, ids: Sequence[UUID | str]) -> list[Row]:
        """``sql`` with one ``(?)`` standing for a list of ids, as the source's rows hold them
        (``IN`` on SQLite, ``ANY`` on PostgreSQL)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def tables(self) -> set[str]:
        raise NotImplementedError

    async def __aenter__(self) -> Source:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def check_version(self) -> tuple[str, str]:
        """The alembic revision and the Prefect version it belongs to; SourceError for any other."""
        if "alembic_version" not in await self.tables():
            raise SourceError(f"{_redacted(self.url)} is not a Prefect server's database (no alembic_version table)")
        rows = await self.fetch("SELECT version_num FROM alembic_version")
        heads = [str(row["version_num"]) for row in rows]
        known = KNOWN_HEADS[self.dialect]
        if len(heads) != 1 or heads[0] not in known:
            names = ", ".join(f"{head} ({version})" for head, version in known.items())
            raise SourceError(
                f"the Prefect database is at schema revision {', '.join(heads) or 'none'}, which this importer "
                f"does not know; it reads {self.dialect} databases at {names}. Upgrade the database with that "
                "Prefect version's `prefect server database upgrade` first."
            )
        return heads[0], known[heads[0]]


class SqliteSource(Source):
    dialect = "sqlite"

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        if not path.exists():
            raise SourceError(f"no Prefect database at {path}")
        try:
            # mode=ro: SQLite reads the WAL beside the file and never writes (no checkpoint).
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open {path} read-only: {exc}") from None
        self._lock = asyncio.Lock()

    def _run(self, sql: str, args: Sequence[Any]) -> list[Row]:
        cursor = self._db.execute(sql, [str(a) if isinstance(a, UUID) else a for a in args])
        # Plain tuples zipped with the names once per query: a third of sqlite3.Row's cost, and
        # reading the rows is most of what reading the source costs.
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._lock:
            try:
                return await asyncio.to_thread(self._run, sql, args)
            except sqlite3.Error as exc:
                raise SourceError(f"reading the Prefect database failed: {exc}") from None

    async def ids_in(self, sql: str, ids: Sequence[UUID | str]) -> list[Row]:
        # msgspec writes text ids as they are and UUIDs as their text, in C.
        return await self.fetch(sql.replace("(?)", "(SELECT value FROM json_each(?))"), msgspec.json.encode(ids).decode())

    async def tables(self) -> set[str]:
        rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row["name"] for row in rows}

    async def aclose(self) -> None:
        self._db.close()


class PostgresSource(Source):
    dialect = "postgres"

    def __init__(self, url: str, connection: Any, transaction: Any) -> None:
        self.url, self._conn, self._tx = url, connection, transaction

    @classmethod
    async def open(cls, url: str, dsn: str) -> PostgresSource:
        import asyncpg

        try:
            conn = await asyncpg.connect(dsn, timeout=30)
        except (OSError, asyncpg.PostgresError) as exc:
            raise SourceError(f"cannot connect to {_redacted(url)}: {exc}") from None
        # One snapshot for the whole import; read-only, so nothing here can write to Prefect's data.
        tx = conn.transaction(readonly=True, isolation="repeatable_read")
        await tx.start()
        return cls(url, conn, tx)

    @staticmethod
    def _numbered(sql: str) -> str:
        count = 0

        def number(_match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return f"${count}"

        return re.sub(r"\?", number, sql)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        import asyncpg

        try:
            return [dict(row) for row in await self._conn.fetch(self._numbered(sql), *args)]
        except asyncpg.PostgresError as exc:
            raise SourceError(f"reading the Prefect database failed: {exc}") from None

    async def ids_in(self, sql: str, ids: Sequence[UUID | str]) -> list[Row]:
        return await self.fetch(sql.replace(" IN (?)", " = ANY(?::uuid[])"), list(ids))

    async def tables(self) -> set[str]:
        rows = await self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row["tablename"] for row in rows}

    async def aclose(self) -> None:
        if self._conn.is_closed():
            return
        try:
            await self._tx.rollback()
        finally:
            await self._conn.close()


async def open_source(url: str) -> Source:
    """The database a Prefect URL names: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://...``
    (the driver part is optional)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SourceError(f"not a database URL: {url!r} (sqlite+aiosqlite:///path or postgresql+asyncpg://...)")
    dialect = scheme.split("+", 1)[0].lower()
    if dialect == "sqlite":
        path = unquote(rest[1:] if rest.startswith("/") else rest).split("?", 1)[0]
        return SqliteSource(url, Path(path))
    if dialect in ("postgresql", "postgres"):
        return await PostgresSource.open(url, f"postgresql://{rest}")
    raise SourceError(f"unsupported database {scheme!r}: Prefect's server runs on SQLite or PostgreSQL")


__all__ = ["KNOWN_HEADS", "Source", "SourceError", "flag", "js", "open_source", "seconds", "uid", "when"]
