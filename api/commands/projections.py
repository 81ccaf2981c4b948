"""``runlog projections``: list the read models, rebuild them, check them against the log.

``ls`` and ``rebuild`` ask the server at RUNLOG_API_URL, or an in-process one on the local
database (ephemeral mode), like the other commands; ``verify`` reads the database itself.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import click
from rich.console import Console
from rich.table import Table

from runlog.projections.verify import verify

from ..client import connect
from ..errors import RunlogError
from .common import advance, get_settings, progress

SHOWN_ROWS = 5
"""Differing rows printed per table; the counts say how many there are in all."""


@click.group(name="projections")
def group() -> None:
    """The read models (projection tables): list, rebuild from the log, verify."""


@group.command(name="ls")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ls_command(ctx: click.Context, output: str) -> None:
    """Every projection: inline or asynchronous, its version, checkpoint and lag behind the head."""
    settings = get_settings(ctx)

    async def run():  # type: ignore[no-untyped-def]
        async with connect(settings) as client:
            return await client.call("GET", "/admin/projections")

    rows = asyncio.run(run())
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Projections")
    for name, justify in (("Name", "left"), ("Kind", "left"), ("Ver", "right"), ("Checkpoint", "right"),
                          ("Head", "right"), ("Lag", "right"), ("Lag s", "right")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        version = "" if row["version"] is None else str(row["version"])
        if row["stored_version"] is not None and row["stored_version"] != row["version"]:
            version += f" (built by {row['stored_version']})"
        checkpoint = f"{row['checkpoint']:,}"
        if row.get("rebuilding") is not None:
            checkpoint += f" (rebuild at {row['rebuilding']:,})"
        table.add_row(row["name"], row["kind"], version, checkpoint, f"{row['head']:,}", f"{row['lag_events']:,}",
                      f"{row['lag_seconds']:.1f}")
    Console().print(table)
    # Below the table, which has no room left on an 80-column terminal.
    rebuilt = [row for row in rows if row.get("last_rebuild")]
    for row in rebuilt:
        last = row["last_rebuild"]
        click.echo(f"{row['name']}: last rebuilt {last['finished_at'][:19].replace('T', ' ')} UTC, "
                   f"{last['events']:,} events to position {last['position']:,} in {last['seconds']:.1f} s")
    if len(rebuilt) < len(rows):
        click.echo("The others: never rebuilt (built as the log was appended)." if rebuilt
                   else "None rebuilt yet: each was built as the log was appended.")


@group.command(name="rebuild")
@click.argument("names", nargs=-1)
@click.pass_context
def rebuild_command(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Rebuild projections (all when none are NAMED) from the log, beside the live tables.

    The server keeps serving: the new tables are built beside the live ones, catch up with the
    head and replace them in one transaction. Stopped midway, it leaves the live tables as they
    were, and running it again goes on from where it stopped.
    """
    settings = get_settings(ctx)

    async def run():  # type: ignore[no-untyped-def]
        async with connect(settings) as client:
            url = client.base + "/admin/projections/rebuild"
            # No overall limit: a large log takes a while, and progress lines keep coming.
            timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
            try:
                async with client.session.post(url, json={"names": list(names)}, timeout=timeout) as response:
                    if response.status >= 400:
                        payload = await response.json(content_type=None)
                        raise RunlogError(payload.get("detail") if isinstance(payload, dict) else str(payload))
                    with progress("Rebuilding", None) as bar:
                        done = 0
                        async for raw in response.content:
                            line = json.loads(raw)
                            if "done" in line:
                                if bar is not None:
                                    bar.update(bar.task_ids[0], total=line["total"] or None)
                                advance(bar, line["done"] - done)
                                done = line["done"]
                            elif "detail" in line:
                                raise RunlogError(line["detail"])
                            else:
                                return line["rebuilt"]
            except aiohttp.ClientError as exc:
                raise RunlogError(f"cannot reach the runlog server at {client.base}: {exc}") from None
        raise RunlogError("the server ended its answer before the rebuild finished")

    rebuilt = asyncio.run(run())
    for item in rebuilt:
        click.echo(f"Rebuilt {item['name']} (version {item['version']}) up to position {item['position']:,}: "
                   f"{item['events']:,} events in {item['seconds']:.2f} s")


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
