"""``runlog notification``: notification rules in the seed's vocabulary (states, tags, flows,
deployments -> a channel), kept as Prefect automations (notifier/rules.py has the mapping), so
``prefect automation ls`` lists them too.

Over HTTP to RUNLOG_API_URL when it is set, in-process on the local database otherwise, like
the other commands. Channels are notification blocks, found by their block document name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

import click

from runlog.notifier import rules, templates
from runlog.notifier.channels import RESOLVABLE

from ..client import ApiClient
from ..errors import RunlogError
from .runs import _print_json, _table, _with_client

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def duration(text: str, option: str) -> float:
    """Seconds from "60", "60s", "10m", "2h" or "1d"."""
    found = _DURATION.match(text)
    if found is None:
        raise RunlogError(f"{option}: {text!r} is not a duration; use e.g. 60s, 10m, 2h or 1d")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def _shown_duration(seconds: float) -> str:
    if not seconds:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


async def _channel(client: ApiClient, name: str) -> dict[str, Any]:
    try:
        return await client.call("GET", f"/runlog/channels/{quote(name, safe='')}")
    except RunlogError:
        raise RunlogError(f"unknown channel {name!r}: no notification block is named so "
                          "(create one with the Prefect client, e.g. SlackWebhook(url=...).save(NAME))") from None


async def _channel_id(client: ApiClient, name: str) -> UUID:
    return UUID((await _channel(client, name))["id"])


async def _check_resolvable(client: ApiClient, rule: rules.Rule) -> None:
    """A rule that resolves its alerts needs a channel that can: a one-line error otherwise."""
    if not rule.resolve_on_completed:
        return
    found = await client.call("GET", f"/runlog/channels/id/{rule.channel_id}")
    if found["block_type_slug"] not in RESOLVABLE:
        raise RunlogError(f"--resolve-on-completed: channel {found['name']!r} is a {found['block_type_slug']} "
                          "channel; only PagerDuty and Opsgenie alerts can be resolved")


async def _channel_name(client: ApiClient, channel_id: UUID, cache: dict[UUID, str]) -> str:
    if channel_id not in cache:
        try:
            cache[channel_id] = (await client.call("GET", f"/runlog/channels/id/{channel_id}"))["name"]
        except RunlogError:
            cache[channel_id] = f"(missing {str(channel_id)[:8]})"
    return cache[channel_id]


async def _find(client: ApiClient, name_or_id: str) -> dict[str, Any]:
    """The one automation with this id or name; a clear error for none or several."""
    try:
        return await client.call("GET", f"/automations/{UUID(name_or_id)}")
    except ValueError:
        pass
    found = await client.call("POST", "/automations/filter", {"automations": {"name": {"any_": [name_or_id]}}})
    if not found:
        raise RunlogError(f"no notification rule is named {name_or_id!r}")
    if len(found) > 1:
        ids = ", ".join(a["id"] for a in found)
        raise RunlogError(f"{len(found)} automations are named {name_or_id!r}; give one of their ids: {ids}")
    return found[0]


def _rule_of(automation: dict[str, Any]) -> rules.Rule:
    rule = rules.rule_of(automation)
    if rule is None:
        raise RunlogError(f"automation {automation['name']!r} is not a notification rule "
                          "(it has other triggers or actions); use `prefect automation inspect`")
    return rule


def _checked(rule: rules.Rule) -> dict[str, Any]:
    """The automation body for the rule; one-line errors for what it cannot be."""
    try:
        templates.check(rule.message, "--message")
        return rules.definition_of(rule)
    except (templates.TemplateInvalid, rules.RuleError) as exc:
        raise RunlogError(str(exc)) from None


def _states(values: tuple[str, ...]) -> list[str]:
    try:
        return [rules.state_name(v) for v in values]
    except rules.RuleError as exc:
        raise RunlogError(str(exc)) from None


def _default_name(rule: rules.Rule, channel: str) -> str:
    parts = ["|".join(rule.states) or "any state"]
    for label, values in (("tag", rule.tags), ("flow", rule.flows), ("deployment", rule.deployments)):
        if values:
            parts.append(f"{label} {'|'.join(values)}")
    return f"{', '.join(parts)} -> {channel}"


def _rule_options(command):  # type: ignore[no-untyped-def]
    options = [
        click.option("--state", "states", multiple=True, help="A state name, e.g. Failed (repeatable: any of them)."),
        click.option("--tag", "tags", multiple=True,
                     help="A tag of the run, its flow or its deployment (repeatable: any of them)."),
        click.option("--flow", "flows", multiple=True, help="A flow name (repeatable: any of them)."),
        click.option("--deployment", "deployments", multiple=True, help="A deployment name (repeatable)."),
        click.option("--message", default=None, help="The body, a Jinja template (default: Prefect's message)."),
        click.option("--hold-for", default=None,
                     help="Send only if the run is still in the state after this long (e.g. 60s; at least 10s)."),
        click.option("--repeat-suppress", default=None,
                     help="Send one message per run and state within this long (e.g. 10m)."),
        click.option("--resolve-on-completed/--no-resolve-on-completed", "resolve_on_completed", default=None,
                     help="Resolve the alert (PagerDuty, Opsgenie) when the run later enters Completed."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(name="notification")
def group() -> None:
    """Notification rules: when runs enter states, message a channel. Each rule is a Prefect automation."""


@group.command(name="create")
@_rule_options
@click.option("--channel", required=True, help="The channel: a notification block's name.")
@click.option("--name", default=None, help="The rule's name (default: made from its conditions).")
@click.pass_context
def create(ctx: click.Context, states, tags, flows, deployments, message, hold_for, repeat_suppress,  # type: ignore[no-untyped-def]
           resolve_on_completed, channel: str, name: str | None) -> None:
    """Create a rule: OR within each of --state, --tag, --flow, --deployment; AND across them."""
    chosen = _states(states)
    hold = duration(hold_for, "--hold-for") if hold_for else 0.0
    repeat = duration(repeat_suppress, "--repeat-suppress") if repeat_suppress else 0.0

    async def work(client: ApiClient) -> dict[str, Any]:
        rule = rules.Rule(
            name=name or "", channel_id=await _channel_id(client, channel), states=chosen, tags=list(tags),
            flows=list(flows), deployments=list(deployments), hold_for=hold, repeat_suppress=repeat,
            resolve_on_completed=bool(resolve_on_completed), **({"message": message} if message is not None else {}),
        )
        rule.name = rule.name or _default_name(rule, channel)
        await _check_resolvable(client, rule)
        return await client.call("POST", "/automations/", _checked(rule) | {"owner_resource": None})

    created = _with_client(ctx, work)
    click.echo(f"Created notification rule {created['name']!r} ({created['id']}).")


def _resolves(rule: rules.Rule) -> str:
    """Whether the rule resolves its alerts when the run completes (``yes`` keeps tables narrow)."""
    return "yes" if rule.resolve_on_completed else ""


def _timing(rule: rules.Rule) -> str:
    if rule.hold_for:
        return f"hold {_shown_duration(rule.hold_for)}"
    if rule.repeat_suppress:
        return f"once per {_shown_duration(rule.repeat_suppress)}"
    return ""


def _row(automation: dict[str, Any], rule: rules.Rule, channel: str, *, wide: bool = False) -> list[Any]:
    muted = automation.get("muted_until")
    status = "paused" if not automation["enabled"] else (f"muted until {muted[:16].replace('T', ' ')}" if muted else "on")
    runs_of = [*rule.flows, *(f"deployment {d}" for d in rule.deployments)]
    return [automation["name"], "|".join(rule.states) or "any", "|".join(rule.tags), "|".join(runs_of), channel,
            _timing(rule), _resolves(rule), status, automation["id"] if wide else automation["id"][:8]]


_COLUMNS = ["Name", "States", "Tags", "Flows", "Channel", "Timing", "Resolve", "Status", "ID"]


@group.command(name="ls")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def ls(ctx: click.Context, output: str) -> None:
    """List notification rules (automations that are not rules are left out)."""

    async def work(client: ApiClient) -> list[tuple[dict[str, Any], rules.Rule, str]]:
        automations = await client.call("POST", "/automations/filter", {"sort": "NAME_ASC"})
        cache: dict[UUID, str] = {}
        found = []
        for automation in automations:
            rule = rules.rule_of(automation)
            if rule is not None:
                found.append((automation, rule, await _channel_name(client, rule.channel_id, cache)))
        return found

    found = _with_client(ctx, work)
    if output == "json":
        _print_json([automation for automation, _, _ in found])
        return
    if not found:
        click.echo("No notification rules.")
        return
    _table("Notification rules", _COLUMNS, [_row(*item) for item in found])


@group.command(name="inspect")
@click.argument("rule")
@click.pass_context
def inspect(ctx: click.Context, rule: str) -> None:
    """Show one rule (by name or id): its conditions, channel, message and the automation behind it."""

    async def work(client: ApiClient) -> tuple[dict[str, Any], rules.Rule, str]:
        automation = await _find(client, rule)
        found = _rule_of(automation)
        return automation, found, await _channel_name(client, found.channel_id, {})

    automation, found, channel = _with_client(ctx, work)
    for label, value in zip(_COLUMNS, _row(automation, found, channel, wide=True)):
        click.echo(f"{label.lower():<12}  {value}")
    click.echo(f"{'subject':<12}  {found.subject}")
    click.echo(f"{'message':<12}  " + found.message.replace("\n", "\n" + " " * 14))
    click.echo(f"{'trigger':<12}  {automation['trigger']}")


@group.command(name="edit")
@click.argument("rule")
@_rule_options
@click.option("--channel", default=None, help="A new channel (a notification block's name).")
@click.option("--name", "new_name", default=None, help="A new name.")
@click.pass_context
def edit(ctx: click.Context, rule: str, states, tags, flows, deployments, message, hold_for,  # type: ignore[no-untyped-def]
         repeat_suppress, resolve_on_completed, channel: str | None, new_name: str | None) -> None:
    """Change a rule: each option given replaces that part (--hold-for 0 or --repeat-suppress 0 removes it)."""
    chosen = _states(states)

    async def work(client: ApiClient) -> str:
        automation = await _find(client, rule)
        current = _rule_of(automation)
        changes: dict[str, Any] = {
            "states": chosen, "tags": list(tags), "flows": list(flows), "deployments": list(deployments),
            "message": message, "name": new_name,
            "hold_for": duration(hold_for, "--hold-for") if hold_for else None,
            "repeat_suppress": duration(repeat_suppress, "--repeat-suppress") if repeat_suppress else None,
            "channel_id": await _channel_id(client, channel) if channel else None,
            "resolve_on_completed": resolve_on_completed,
        }
        given = {k: v for k, v in changes.items() if v not in (None, [])}
        if "hold_for" in given and given["hold_for"]:
            given.setdefault("repeat_suppress", 0.0)  # the new window replaces the old one
        if "repeat_suppress" in given and given["repeat_suppress"]:
            given.setdefault("hold_for", 0.0)
        updated = rules.Rule(**{**{f: getattr(current, f) for f in rules.Rule.__struct_fields__}, **given})
        await _check_resolvable(client, updated)
        await client.call("PUT", f"/automations/{automation['id']}", _checked(updated))
        return updated.name

    click.echo(f"Updated notification rule {_with_client(ctx, work)!r}.")


def _set_enabled(ctx: click.Context, rule: str, enabled: bool) -> str:
    async def work(client: ApiClient) -> str:
        automation = await _find(client, rule)
        await client.call("PATCH", f"/automations/{automation['id']}", {"enabled": enabled})
        return automation["name"]

    return _with_client(ctx, work)


@group.command(name="pause")
@click.argument("rule")
@click.pass_context
def pause(ctx: click.Context, rule: str) -> None:
    """Stop a rule from firing until it is resumed."""
    click.echo(f"Paused notification rule {_set_enabled(ctx, rule, False)!r}.")


@group.command(name="resume")
@click.argument("rule")
@click.pass_context
def resume(ctx: click.Context, rule: str) -> None:
    """Let a paused rule fire again."""
    click.echo(f"Resumed notification rule {_set_enabled(ctx, rule, True)!r}.")


@group.command(name="delete")
@click.argument("rule")
@click.pass_context
def delete(ctx: click.Context, rule: str) -> None:
    """Delete a rule."""

    async def work(client: ApiClient) -> str:
        automation = await _find(client, rule)
        await client.call("DELETE", f"/automations/{automation['id']}")
        return automation["name"]

    click.echo(f"Deleted notification rule {_with_client(ctx, work)!r}.")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RunlogError(f"--until: {text!r} is not a date and time; use e.g. 2026-03-02T08:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@group.command(name="mute")
@click.argument("rule")
@click.option("--until", "until", default=None, help="Send nothing before this time (ISO 8601; UTC unless given).")
@click.option("--off", is_flag=True, help="Lift the mute.")
@click.pass_context
def mute(ctx: click.Context, rule: str, until: str | None, off: bool) -> None:
    """Silence a rule until a time (a runlog field: Prefect's automations have no mute)."""
    if (until is None) == (not off):
        raise RunlogError("give either --until TIME or --off")
    moment = None if off else _moment(until or "")

    async def work(client: ApiClient) -> str:
        automation = await _find(client, rule)
        body = {"until": moment.isoformat() if moment else None}
        await client.call("PUT", f"/runlog/automations/{automation['id']}/mute", body)
        return automation["name"]

    name = _with_client(ctx, work)
    click.echo(f"Unmuted {name!r}." if moment is None else f"Muted {name!r} until {moment.isoformat()}.")
