"""The Tx handles both backends give projections: the writer's transaction and read handles."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """Turn ``?`` placeholders into PostgreSQL's ``$1, $2, ...`` (our own constant SQL only)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _m: f"${next(counter)}", sql)


class SqliteTx:
    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return list(await self._conn.execute_fetchall(sql, args))

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, args)


class PostgresTx:
    dialect: Literal["postgres"] = "postgres"
    adds_as_deltas = True
    """Amounts added to a table of counts that has deltas are appended there (tables.persist)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return await self._conn.fetch(numbered(sql), *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(numbered(sql), *args)

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(numbered(sql), args)

    async def upsert_set(self, table: Any, rows: list[tuple[Any, ...]]) -> None:
        """Upsert ``rows`` (whole rows of a ``tables.Table``) in one statement, one array of the
        table's row type, rather than a statement per row (``tables.persist``): the server
        plans and runs one INSERT for the set, where asyncpg's executemany has it bind and
        execute the statement once per row (the async projections' writes: the event feed's two
        rows per event, the run history's row per run). Setting every column where a row may
        have changed only some costs PostgreSQL nothing: an update is HOT or not by whether an
        indexed column's value changed, not by which columns the statement names. A table with
        columns the backend keeps besides the declared ones (``own``) is not that row type."""
        if table.own:
            await self._conn.executemany(numbered(table.upsert_sql), rows)
        else:
            await self._conn.execute(table.upsert_set_sql(), rows)

    async def copy_new(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> bool:
        """Insert ``rows`` into ``table`` with COPY (binary), the cheapest way PostgreSQL takes
        many rows: about half the server's CPU of an upsert of the same set and a third of the
        client's. All or nothing, in a savepoint: False, with nothing written, when a row's key
        is already in the table (the caller then upserts them)."""
        import asyncpg  # this backend's driver, as postgres.py's; the SQLite install never gets here

        try:
            async with self._conn.transaction():  # a savepoint inside the caller's transaction
                await self._conn.copy_records_to_table(table, records=rows, columns=list(columns))
        except asyncpg.UniqueViolationError:
            return False
        return True
