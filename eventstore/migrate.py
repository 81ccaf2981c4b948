"""Runs the numbered SQL migrations in schema/migrations/<backend>/ up and down.

Each migration is a pair NNNN_name.up.sql / NNNN_name.down.sql; applied revisions are recorded
in the ``runlog_migrations`` table, which the runner itself creates and never drops. Each step
runs in its own transaction together with its bookkeeping row, so a failed step leaves the
database at the previous revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Literal, Protocol

from .errors import SchemaBehind, SchemaError, SchemaTooNew

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    revision: int
    name: str
    up: str
    down: str


@dataclass(frozen=True, slots=True)
class Applied:
    revision: int
    name: str
    applied_at: datetime


class MigrationConnection(Protocol):
    """What a backend gives the runner: one connection, holding the migration lock."""

    async def applied(self) -> list[Applied]: ...

    async def run_step(self, migration: Migration, direction: Literal["up", "down"]) -> None: ...


def load_migrations(backend: Literal["sqlite", "postgres"]) -> list[Migration]:
    folder = resources.files("runlog.schema").joinpath("migrations", backend)
    files: dict[tuple[int, str], dict[str, str]] = {}
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            continue
        revision, name, direction = int(match[1]), match[2], match[3]
        files.setdefault((revision, name), {})[direction] = entry.read_text(encoding="utf-8")
    migrations = []
    for (revision, name), sql in sorted(files.items()):
        if set(sql) != {"up", "down"}:
            raise SchemaError(f"migration {revision:04d}_{name} for {backend} lacks an up or a down file")
        migrations.append(Migration(revision, name, sql["up"], sql["down"]))
    revisions = [m.revision for m in migrations]
    if revisions != list(range(1, len(migrations) + 1)):
        raise SchemaError(f"{backend} migrations are not numbered 1..n without gaps: {revisions}")
    return migrations


def head_revision(backend: Literal["sqlite", "postgres"]) -> int:
    return len(load_migrations(backend))


async def current_revision(conn: MigrationConnection) -> int:
    applied = await conn.applied()
    return applied[-1].revision if applied else 0


def resolve_target(spec: str | int | None, current: int, head: int, *, direction: str) -> int:
    """Turn a -r value into a revision: 'head', 'base', N, or -N steps down from current."""
    if spec is None:
        return head if direction == "up" else max(current - 1, 0)
    text = str(spec).strip().lower()
    if text == "head":
        return head
    if text == "base":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise SchemaError(f"revision {spec!r} is not a number, -N, 'head' or 'base'") from None
    if value < 0:
        if direction != "down":
            raise SchemaError("a relative revision (-N) only makes sense for a downgrade")
        return max(current + value, 0)
    if value > head:
        raise SchemaError(f"revision {value} does not exist; the newest is {head}")
    return value


async def check_not_newer(conn: MigrationConnection, backend: Literal["sqlite", "postgres"]) -> int:
    current = await current_revision(conn)
    head = head_revision(backend)
    if current > head:
        raise SchemaTooNew(current, head)
    return current


async def upgrade(
    conn: MigrationConnection, backend: Literal["sqlite", "postgres"], target: int | None = None
) -> list[Migration]:
    """Apply the migrations above the current revision up to target (default: all)."""
    migrations = load_migrations(backend)
    current = await check_not_newer(conn, backend)
    target = len(migrations) if target is None else target
    if target < current:
        raise SchemaError(f"the database is at revision {current}; upgrading to {target} would go down")
    steps = [m for m in migrations if current < m.revision <= target]
    for migration in steps:
        await conn.run_step(migration, "up")
    return steps


async def downgrade(conn: MigrationConnection, backend: Literal["sqlite", "postgres"], target: int) -> list[Migration]:
    """Undo the migrations above target, newest first."""
    migrations = load_migrations(backend)
    current = await check_not_newer(conn, backend)
    if target > current:
        raise SchemaError(f"the database is at revision {current}; downgrading to {target} would go up")
    steps = [m for m in reversed(migrations) if target < m.revision <= current]
    for migration in steps:
        await conn.run_step(migration, "down")
    return steps


async def require_head(conn: MigrationConnection, backend: Literal["sqlite", "postgres"], where: str) -> None:
    """Refuse a database whose schema is not exactly the one this code was written for."""
    current = await check_not_newer(conn, backend)
    head = head_revision(backend)
    if current < head:
        raise SchemaBehind(where, current, head)
