"""``runlog database``: upgrade, downgrade, reset, current and history of the schema, and check.

These always work on the database named by RUNLOG_DATABASE_URL (like Prefect's
``prefect server database``), never through an API server.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import click
from rich.console import Console
from rich.table import Table

from runlog.commands.encryption import read_key, restore_key
from runlog.eventstore import DatabaseURL, migrate, migration_connection, open_store, parse_database_url

from ..dangling import find_dangling
from .common import get_settings


@click.group(name="database")
def group() -> None:
    """Manage the database schema (migrations)."""


def _target_database(ctx: click.Context):
    settings = get_settings(ctx)
    return parse_database_url(settings.database_url)


def _confirm(yes: bool, question: str, aborted: str) -> None:
    if yes:
        return
    if not click.confirm(question, default=False):
        click.echo(aborted)
        raise SystemExit(0)


def _names(steps: list[migrate.Migration]) -> str:
    return ", ".join(f"{m.revision:04d}_{m.name}" for m in steps)


def _migrate(db: DatabaseURL, revision: str, direction: Literal["up", "down"]) -> None:
    """Upgrade or downgrade to ``revision`` and say what was done."""

    async def run() -> tuple[list[migrate.Migration], int]:
        async with migration_connection(db) as conn:
            current = await migrate.check_not_newer(conn, db.backend)
            target = migrate.resolve_target(revision, current, migrate.head_revision(db.backend), direction=direction)
            step = migrate.upgrade if direction == "up" else migrate.downgrade
            return await step(conn, db.backend, target), await migrate.current_revision(conn)

    steps, now = asyncio.run(run())
    done, moved = ("Applied", "upgraded") if direction == "up" else ("Reverted", "downgraded")
    if steps:
        click.echo(f"{done} {_names(steps)}.")
        click.echo(f"Database at {db.masked()} {moved} to revision {now}.")
    else:
        click.echo(f"Database at {db.masked()} is already at revision {now}; nothing to do.")


@group.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-r", "--revision", default="head", show_default=True, help="Revision to upgrade to (a number or 'head').")
@click.pass_context
def upgrade(ctx: click.Context, yes: bool, revision: str) -> None:
    """Apply pending migrations."""
    db = _target_database(ctx)
    _confirm(yes, f"Upgrade the database at {db.masked()}?", "Upgrade aborted.")
    _migrate(db, revision, "up")


@group.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "-r", "--revision", default="-1", show_default=True,
    help="Revision to downgrade to: a number, 'base' (empty), or -N steps back.",
)
@click.pass_context
def downgrade(ctx: click.Context, yes: bool, revision: str) -> None:
    """Undo migrations (by default the most recent one). Drops the data they created."""
    db = _target_database(ctx)
    _confirm(
        yes,
        f"Downgrade the database at {db.masked()} to {revision}? Data in dropped tables is lost.",
        "Downgrade aborted.",
    )
    _migrate(db, revision, "down")


@group.command()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def reset(ctx: click.Context, yes: bool) -> None:
    """Drop everything runlog stored and apply all migrations again. Every event is lost."""
    db = _target_database(ctx)
    _confirm(yes, f"Reset the database at {db.masked()}? Every event in it is deleted.", "Reset aborted.")

    async def run() -> tuple[list[migrate.Migration], list[migrate.Migration]]:
        async with migration_connection(db) as conn:
            down = await migrate.downgrade(conn, db.backend, 0)
            up = await migrate.upgrade(conn, db.backend)
            return down, up

    down, up = asyncio.run(run())
    click.echo(f"Reverted {len(down)} migration(s), applied {len(up)}.")
    click.echo(f"Database at {db.masked()} reset.")


@group.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the database's schema revision."""
    db = _target_database(ctx)

    async def run() -> int:
        async with migration_connection(db) as conn:
            return await migrate.current_revision(conn)

    now = asyncio.run(run())
    head = migrate.head_revision(db.backend)
    state = "up to date" if now == head else ("newer than this runlog" if now > head else f"behind; head is {head}")
    click.echo(f"Database at {db.masked()}: revision {now} ({state}).")


@group.command()
@click.pass_context
def history(ctx: click.Context) -> None:
    """List every migration and whether and when it was applied."""
    db = _target_database(ctx)

    async def run() -> list[migrate.Applied]:
        async with migration_connection(db) as conn:
            return await conn.applied()

    applied = {a.revision: a for a in asyncio.run(run())}
    table = Table(title=f"Migrations of {db.masked()}")
    table.add_column("Revision", justify="right")
    table.add_column("Name")
    table.add_column("Applied at")
    for m in migrate.load_migrations(db.backend):
        done = applied.get(m.revision)
        table.add_row(str(m.revision), m.name, done.applied_at.isoformat(timespec="seconds") if done else "not applied")
    Console().print(table)


SHOWN_IDS = 20
"""Ids listed per kind of dangling reference unless --all; the counts say how many there are."""


@group.command()
@click.option("--all", "show_all", is_flag=True, help="List every id, not only the first 20 of each kind.")
@click.pass_context
def check(ctx: click.Context, show_all: bool) -> None:
    """Report dangling references: runs pointing at a flow, flow run or task run that does not exist.

    Reads the database and writes nothing, so it is safe while a server runs. Exits 1 if it
    finds any.
    """
    settings = get_settings(ctx)
    db = _target_database(ctx)
    found = asyncio.run(find_dangling(settings.database_url))
    total = sum(len(d.pairs) for d in found)
    click.echo(f"Dangling references in {db.masked()}:")
    for dangling in found:
        click.echo(f"  {dangling.kind}: {len(dangling.pairs)}")
        shown = dangling.pairs if show_all else dangling.pairs[:SHOWN_IDS]
        for run_id, missing in shown:
            click.echo(f"    {run_id}  ({dangling.field} {missing})")
        if len(shown) < len(dangling.pairs):
            click.echo(f"    ... and {len(dangling.pairs) - len(shown)} more (--all lists them)")
    if total:
        click.echo(
            f"Found {total} dangling reference(s). Listings leave flow runs of unknown flows out; "
            "delete a run with DELETE /api/flow_runs/{id} or /api/task_runs/{id}."
        )
        raise click.exceptions.Exit(1)
    click.echo("No dangling references.")


@group.command(name="encryption-key")
@click.option("--set", "new_key", metavar="KEY", help="Store KEY as this database's key (a restore); refused if it holds another.")
@click.pass_context
def encryption_key(ctx: click.Context, new_key: str | None) -> None:
    """Print the key block documents are sealed with, or put a backed-up one back.

    The key is kept in the database, outside the log, so an export of the log does not carry
    it: keep it with your backups, and restore it into the new database with --set before
    the blocks are read (RUNLOG_SERVER_ENCRYPTION_KEY, when set, is used instead).
    """
    settings = get_settings(ctx)
    db = _target_database(ctx)
    if settings.server_encryption_key is not None:
        click.echo(
            "RUNLOG_SERVER_ENCRYPTION_KEY is set: block documents are sealed with it, not with a key "
            "stored in the database; keep that setting with your backups.", err=True,
        )
        if new_key is None:
            click.echo(settings.server_encryption_key)
            return

    async def run() -> str | None:
        async with open_store(settings.database_url) as store:
            return await (read_key(store) if new_key is None else restore_key(store, new_key))

    if new_key is not None:
        try:
            held = asyncio.run(run())
        except ValueError:
            raise click.UsageError("--set: expected a Fernet key: 32 bytes in URL-safe base64 (44 characters)") from None
        if held != new_key:
            raise click.ClickException(
                f"The database at {db.masked()} already holds another key; its block documents are sealed "
                "with it. Restore into an empty database."
            )
        click.echo(f"The database at {db.masked()} now seals and opens block documents with the given key.")
        return
    key = asyncio.run(run())
    if key is None:
        click.echo(f"The database at {db.masked()} holds no key yet: no block document was ever stored.", err=True)
        raise click.exceptions.Exit(1)
    click.echo(key)
