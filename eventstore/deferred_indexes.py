"""Secondary indexes set aside while a bulk writer (an import) fills their tables, and made again
once at the end: making an index is one sort of the table, where keeping it current costs a
b-tree insert per row (on SQLite, storing an import's rows took 4.2 CPU s with the indexes and
2.9 s with them made at the end, ``bench_import --floor``).

Only indexes that check nothing are set aside (never a primary key or a unique index: the
appends' idempotency and the views' constraints rest on those). Their definitions, as the
database holds them (the migrations made them), are saved in ``server_configuration`` in the
transaction that drops them, so the database always knows which are missing: the bulk writer
makes them again when it ends, even by an error, and if its process dies first, the next store
that opens the database with migrations (a server starting, the import run again) makes them.
Until then queries are right, only slower.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

KEY = "deferred_indexes"
"""The ``server_configuration`` row that holds the set-aside indexes: [[name, definition], ...]."""

SQL_SAVED = f"SELECT value FROM server_configuration WHERE key = '{KEY}'"
SQL_FORGET = f"DELETE FROM server_configuration WHERE key = '{KEY}'"
SQL_SAVE = f"INSERT INTO server_configuration (key, value) VALUES ('{KEY}', ?)"

SQL_INDEXES = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
              " AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({tables}) ORDER BY name",
    "postgres": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
                " AND indexdef NOT LIKE 'CREATE UNIQUE%' AND tablename IN ({tables}) ORDER BY indexname",
}
SQL_INDEX_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index'",
    "postgres": "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()",
}

SQL_HAS_TABLE = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'server_configuration'",
    "postgres": "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'server_configuration'",
}

Fetch = Callable[..., Awaitable[Sequence[Sequence[Any]]]]
Execute = Callable[..., Awaitable[Any]]


async def saved(fetch: Fetch) -> list[list[str]]:
    rows = await fetch(SQL_SAVED)
    return json.loads(rows[0][0]) if rows else []


async def pending(fetch: Fetch, dialect: Literal["sqlite", "postgres"]) -> bool:
    """Whether indexes are set aside, asked of a database at any revision (a new one has no
    ``server_configuration`` yet): a store opening with migrations makes them again before it
    migrates, so that a migration finds the indexes of the revision it starts from."""
    ((tables,),) = await fetch(SQL_HAS_TABLE[dialect])
    return bool(tables) and bool(await saved(fetch))


async def defer(fetch: Fetch, execute: Execute, dialect: Literal["sqlite", "postgres"],
                tables: Sequence[str]) -> list[str]:
    """Drop the indexes of ``tables`` that check nothing, saving their definitions (in the
    caller's transaction); the names dropped."""
    before = await saved(fetch)
    listed = ", ".join(f"'{table}'" for table in tables)
    found = [[str(name), str(sql)] for name, sql in await fetch(SQL_INDEXES[dialect].format(tables=listed))]
    if not found:
        return []
    await execute(SQL_FORGET)
    await execute(SQL_SAVE, json.dumps(before + found))
    for name, _ in found:
        await execute(f"DROP INDEX {name}")
    return [name for name, _ in found]


async def restore(fetch: Fetch, execute: Execute, dialect: Literal["sqlite", "postgres"]) -> list[str]:
    """Make the set-aside indexes that are missing again and forget them (in the caller's
    transaction); the names made."""
    wanted = await saved(fetch)
    if not wanted:
        return []
    present = {str(name) for (name,) in await fetch(SQL_INDEX_NAMES[dialect])}
    made = []
    for name, sql in wanted:
        if name not in present:
            await execute(sql)
            made.append(name)
    await execute(SQL_FORGET)
    return made


__all__ = ["KEY", "defer", "pending", "restore", "saved"]
