"""``runlog concurrency-limit``: the concurrency limits (Prefect's global limits; a tag limit is
the one named "tag:<tag>"), listed or inspected, now or as they were at a past log position."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from ..client import ApiClient
from .runs import _shown_plainly, _table, _with_client, at_option, at_query

LIMIT_FIELDS = ("id", "name", "limit", "active", "active_slots", "denied_slots", "slot_decay_per_second",
                "avg_slot_occupancy_seconds", "created", "updated")


@click.group(name="concurrency-limit")
def group() -> None:
    """Concurrency limits."""


@group.command(name="ls")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def limit_ls(ctx: click.Context, output: str) -> None:
    """List concurrency limits: limit, slots taken, active."""

    async def work(client: ApiClient) -> list[Any]:
        return await client.call("POST", "/v2/concurrency_limits/filter", {})

    limits = _with_client(ctx, work)
    if _shown_plainly(limits, output, "No concurrency limits."):
        return
    _table("Concurrency limits", ["Name", "Limit", "Taken", "Active"],
           [[lim["name"], lim["limit"], lim["active_slots"], "yes" if lim["active"] else "no"] for lim in limits])


@group.command(name="inspect")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@at_option
@click.pass_context
def limit_inspect(ctx: click.Context, name: str, output: str, at: str | None) -> None:
    """Show one concurrency limit (NAME, or its id). With --at, as it was then: folded from the log
    up to that position, slots counted as taken at that moment."""

    async def work(client: ApiClient) -> Any:
        return await client.call("GET", f"/v2/concurrency_limits/{quote(name, safe='')}{at_query(at)}")

    limit = _with_client(ctx, work)
    if output == "json":
        click.echo(json.dumps(limit, indent=2))
        return
    if at is not None:
        click.echo(f"As at {at}:")
    width = max(len(f) for f in LIMIT_FIELDS)
    for field in LIMIT_FIELDS:
        click.echo(f"{field.ljust(width)}  {limit.get(field)}")
