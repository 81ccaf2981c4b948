"""``runlog projections``: check the read models against the log they are built from."""

from __future__ import annotations

import asyncio

import click
from rich.console import Console
from rich.table import Table

from runlog.projections.verify import verify
from .common import advance, get_settings, progress

SHOWN_ROWS = 5
"""Differing rows printed per table; the counts say how many there are in all."""


@click.group(name="projections")
def group() -> None:
    """Check the read models (projection tables) against the event log."""


@group.command(name="verify")
@click.pass_context
def verify_command(ctx: click.Context) -> None:
    """Rebuild every projection from the log in a scratch database and compare it with the live tables.

    Reads the database and writes nothing to it, so it is safe while a server runs: the live
    tables and the log are read in one snapshot. Exits 1 if a table differs.
    """
    settings = get_settings(ctx)

    async def run():  # type: ignore[no-untyped-def]
        with progress("Replaying", None) as bar:
            done = 0

            def replayed(count: int) -> None:
                nonlocal done
                advance(bar, count - done)
                done = count

            return await verify(settings.database_url, replayed)

    result = asyncio.run(run())
    table = Table(title=f"Projections rebuilt from the log's {result.head:,} events")
    for name, justify in (("Table", "left"), ("Projection", "left"), ("Live", "right"), ("Rebuilt", "right"),
                          ("Result", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for check in result.tables:
        table.add_row(check.table, check.projection, f"{check.live:,}", f"{check.rebuilt:,}",
                      "equal" if check.equal else "DIFFERS")
    Console().print(table)
    for check in result.tables:
        if check.equal:
            continue
        click.echo(f"{check.table}: {len(check.only_live)} row(s) only in the live table, "
                   f"{len(check.only_rebuilt)} only in the rebuild")
        for label, rows in (("live", check.only_live), ("rebuilt", check.only_rebuilt)):
            for row in rows[:SHOWN_ROWS]:
                click.echo(f"  {label}: {_brief(row)}")
            if len(rows) > SHOWN_ROWS:
                click.echo(f"  {label}: ... and {len(rows) - SHOWN_ROWS} more")
    if not result.equal:
        raise click.exceptions.Exit(1)
    click.echo("Every projection table equals its rebuild from the log.")


def _brief(row: tuple) -> str:  # type: ignore[type-arg]
    """A row for a person: long values (views, payloads) cut short."""
    parts = []
    for value in row:
        text = repr(value)
        parts.append(text if len(text) <= 60 else text[:57] + "...")
    return "(" + ", ".join(parts) + ")"
