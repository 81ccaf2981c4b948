"""``runlog channel``: where notifications go. A channel is a block document of one of Prefect's
nine notification block types, so one made here loads with the stock client's
``SlackWebhook.load("ops")`` and one the client saved is listed here.

``create`` registers the block type and schema first when the server has none, with the fields
and checksum the Prefect client would register (schema/notification_blocks.py). Secret fields are
sent once and never shown again: listings and ``inspect`` read them masked. With RUNLOG_API_URL
set the commands ask that server; without it they work on the local database.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import quote

import click
from rich.console import Console
from rich.table import Table

from runlog.schema.notification_blocks import ChannelKind, channel_kind, channel_kinds, channel_slugs

from ..client import ApiClient, connect
from ..errors import RunlogError
from .channel_fields import data_for, options
from .common import get_settings

NAME = re.compile(r"^[a-z0-9-]+$")
PAGE = 200


@click.group(name="channel")
def group() -> None:
    """Notification channels (Slack, Teams, PagerDuty, ... and custom webhooks)."""


def _kind_of_slug(slug: str) -> str:
    kind = channel_kind(slug)
    return kind.kind if kind is not None else slug


async def channels(client: ApiClient, name: str | None = None) -> list[dict[str, Any]]:
    """Every channel (block documents of the notification types), or those called ``name``."""
    found: list[dict[str, Any]] = []
    documents: dict[str, Any] = {} if name is None else {"name": {"any_": [name]}}
    while True:
        page = await client.call("POST", "/block_documents/filter", {
            "block_types": {"slug": {"any_": channel_slugs()}}, "block_documents": documents or None,
            "sort": "NAME_ASC", "limit": PAGE, "offset": len(found),
        })
        found += page
        if len(page) < PAGE:
            return found


async def find_channel(client: ApiClient, reference: str) -> dict[str, Any]:
    """The channel ``reference`` names: NAME, or KIND/NAME when two kinds share a name. Raises
    RunlogError naming what is wrong: no such channel, or several."""
    kind_name, _, name = reference.rpartition("/")
    kind = channel_kind(kind_name) if kind_name else None
    if kind_name and kind is None:
        raise RunlogError(f"unknown channel kind {kind_name!r}; kinds: {', '.join(channel_kinds())}")
    found = [c for c in await channels(client, name) if kind is None or c["block_type"]["slug"] == kind.slug]
    if not found:
        raise RunlogError(f"no channel named {reference!r}; 'runlog channel ls' lists them")
    if len(found) > 1:
        kinds = ", ".join(f"{_kind_of_slug(c['block_type']['slug'])}/{name}" for c in found)
        raise RunlogError(f"several channels are named {name!r}: say which, as one of {kinds}")
    return found[0]


async def _ensure_schema(client: ApiClient, kind: ChannelKind) -> tuple[str, str]:
    """(block type id, block schema id), registering either as the Prefect client would."""
    block_type = await client.find(f"/block_types/slug/{quote(kind.slug)}")
    if block_type is None:
        block_type = await client.call("POST", "/block_types/", kind.block_type)
    path = f"/block_schemas/checksum/{quote(kind.checksum)}?version={quote(kind.version)}"
    schema = await client.find(path)
    if schema is None:
        schema = await client.call("POST", "/block_schemas/", {
            "fields": kind.fields, "block_type_id": block_type["id"], "capabilities": kind.capabilities,
            "version": kind.version,
        })
    return block_type["id"], schema["id"]


class KindGroup(click.Group):
    """``channel create KIND``: one command per kind; an unknown kind is one error line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(channel_kinds())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        kind = channel_kind(name)
        return None if kind is None else _create_command(kind)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        if args and not args[0].startswith("-") and channel_kind(args[0]) is None:
            raise RunlogError(f"unknown channel kind {args[0]!r}; kinds: {', '.join(channel_kinds())}")
        return super().resolve_command(ctx, args)


@group.group(name="create", cls=KindGroup)
def create() -> None:
    """Create a channel: runlog channel create KIND NAME --field VALUE ..."""


def _create_command(kind: ChannelKind) -> click.Command:
    def run(channel_name: str, **given: Any) -> None:
        if not NAME.match(channel_name):
            raise RunlogError(f"channel name {channel_name!r} may hold only lowercase letters, numbers and dashes")
        data = data_for(kind, given, name=channel_name)
        settings = get_settings(click.get_current_context())

        async def go() -> dict[str, Any]:
            async with connect(settings) as client:
                taken = await channels(client, channel_name)
                if taken:
                    other = _kind_of_slug(taken[0]["block_type"]["slug"])
                    raise RunlogError(f"a channel named {channel_name!r} exists already ({other})")
                block_type_id, schema_id = await _ensure_schema(client, kind)
                return await client.call("POST", "/block_documents/", {
                    "name": channel_name, "data": data, "block_schema_id": schema_id,
                    "block_type_id": block_type_id, "is_anonymous": False,
                })

        created = asyncio.run(go())
        click.echo(f"Created {kind.kind} channel {channel_name!r} ({created['id']}).")

    return click.Command(
        name=kind.kind, callback=run, help=f"A {kind.block_type['name']} channel (block type {kind.slug}).",
        params=[click.Argument(["channel_name"], metavar="NAME"), *options(kind)],
    )


async def health(client: ApiClient) -> dict[str, dict[str, Any]]:
    """Each channel's health by channel id, as its deliveries left it (none yet: absent)."""
    return {h["channel_id"]: h for h in await client.call("GET", "/runlog/channels/health")}


def health_text(found: dict[str, Any] | None) -> str:
    """``ok``, ``failing: REASON``, or ``-`` for a channel no delivery has reached yet."""
    if found is None:
        return "-"
    return f"{found['status']}: {found['reason']}" if found["reason"] else found["status"]


@group.command(name="ls")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ls(ctx: click.Context, output: str) -> None:
    """List channels with their health (secrets are never shown).

    A channel is failing once its endpoint answered a delivery with 404 or 410 (it no longer
    exists), until a later delivery to it is sent."""
    settings = get_settings(ctx)

    async def go() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        async with connect(settings) as client:
            return await channels(client), await health(client)

    found, healths = asyncio.run(go())
    if output == "json":
        click.echo(json.dumps([c | {"health": healths.get(c["id"])} for c in found], indent=2))
        return
    # Ids cut to 8 characters so that names keep their room at 80 columns; -o json has them whole.
    table = Table(title="Channels")
    for column in ("Name", "Kind", "ID", "Health", "Updated"):
        table.add_column(column, no_wrap=column not in ("Name", "Health"), overflow="fold")
    for channel in found:
        table.add_row(
            channel["name"], _kind_of_slug(channel["block_type"]["slug"]), channel["id"][:8],
            health_text(healths.get(channel["id"])), channel["updated"].replace("T", " ")[:19],
        )
    Console().print(table)


@group.command(name="inspect")
@click.argument("reference", metavar="NAME")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def inspect(ctx: click.Context, reference: str, output: str) -> None:
    """Show a channel's settings (NAME, or KIND/NAME); secrets show as ********."""
    settings = get_settings(ctx)

    async def go() -> dict[str, Any]:
        async with connect(settings) as client:
            found = await find_channel(client, reference)
            return found | {"health": (await health(client)).get(found["id"])}

    channel = asyncio.run(go())
    if output == "json":
        click.echo(json.dumps(channel, indent=2))
        return
    table = Table(title=f"Channel {channel['name']}", show_header=False)
    table.add_column("Field", style="bold", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_row("kind", _kind_of_slug(channel["block_type"]["slug"]))
    table.add_row("id", channel["id"])
    for key, value in channel["data"].items():
        table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    table.add_row("created", channel["created"])
    table.add_row("updated", channel["updated"])
    table.add_row("health", health_text(channel["health"]))
    if channel["health"] is not None:
        table.add_row("health since", channel["health"]["since"])
    Console().print(table)


@group.command(name="test")
@click.argument("reference", metavar="NAME")
@click.option("--message", help="The text to send (default: a short test message naming the channel).")
@click.pass_context
def probe(ctx: click.Context, reference: str, message: str | None) -> None:
    """Send a test message through a channel now and print the receiver's answer.

    Exits 1 when the message was not delivered. A test is not a delivery: nothing is recorded,
    nothing is retried, and the channel's health is left as it is."""
    settings = get_settings(ctx)

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with connect(settings) as client:
            channel = await find_channel(client, reference)
            body = {} if message is None else {"message": message}
            return channel, await client.call("POST", f"/runlog/channels/{channel['id']}/test", body)

    channel, answer = asyncio.run(go())
    name = f"{_kind_of_slug(answer['kind'])} channel {channel['name']!r}"
    status = "no answer" if answer["status_code"] is None else f"HTTP {answer['status_code']}"
    verdict = "sent" if answer["sent"] else f"not sent ({answer['outcome']})"
    target = f" ({answer['target']})" if answer["target"] else ""
    click.echo(f"Test message to {name}: {verdict}, {status} in {answer['elapsed_ms']:.0f} ms{target}.")
    if answer["excerpt"]:
        click.echo(f"Answer: {answer['excerpt']}")
    if answer["error"]:
        click.echo(f"Reason: {answer['error']}")
    if not answer["sent"]:
        raise click.exceptions.Exit(1)


@group.command(name="delete")
@click.argument("reference", metavar="NAME")
@click.pass_context
def delete(ctx: click.Context, reference: str) -> None:
    """Delete a channel (NAME, or KIND/NAME)."""
    settings = get_settings(ctx)

    async def go() -> dict[str, Any]:
        async with connect(settings) as client:
            channel = await find_channel(client, reference)
            await client.call("DELETE", f"/block_documents/{channel['id']}")
            return channel

    channel = asyncio.run(go())
    click.echo(f"Deleted {_kind_of_slug(channel['block_type']['slug'])} channel {channel['name']!r}.")


__all__ = ["channels", "find_channel", "group", "health", "health_text"]
