"""``runlog notification deliveries``: the notifier's delivery log, and replaying dead letters.

    runlog notification deliveries [--status pending|retrying|sent|dead] [--rule NAME] [--channel ID]
    runlog notification deliveries show ID
    runlog notification deliveries retry ID | --dead

Over HTTP when RUNLOG_API_URL is set, else on the local database (ephemeral mode), like every
command; a delivery replayed in ephemeral mode is sent by the next server or ``runlog notifier
start`` on that database. ``group`` is attached under ``runlog notification``.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import click

from runlog.projections.deliveries import STATUSES

from ..errors import RunlogError
from .runs import _table, _when, _with_client, short_ids  # the run tables' layout, shared


@click.group(name="deliveries", invoke_without_command=True)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only deliveries in this status.")
@click.option("--rule", default=None, help="Only deliveries of this rule (its name or id).")
@click.option("--channel", default=None, help="Only deliveries to this channel (its block document's id).")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--wide", is_flag=True, help="Show whole ids instead of their first characters.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def group(ctx: click.Context, status: str | None, rule: str | None, channel: str | None, limit: int, wide: bool,
          output: str) -> None:
    """The notifier's deliveries, newest first: status, attempts, last answer."""
    if ctx.invoked_subcommand is not None:
        return
    query: dict[str, Any] = {"limit": limit}
    for name, value in (("status", status), ("rule", rule), ("channel", channel)):
        if value is not None:
            query[name] = value
    found = _with_client(ctx, lambda client: client.call("GET", f"/runlog/deliveries?{urlencode(query)}"))
    if output == "json":
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("No deliveries.")
        return
    ids = short_ids((d["id"] for d in found), wide)
    _table(
        "Deliveries", ["ID", "Status", "Rule", "Subject", "Attempts", "Last", "Created", "Next / reason"],
        [[ids[d["id"]], d["status"], d["rule_name"] or d["rule_id"], d["subject"], d["attempts"],
          d["last_status_code"], _when(d["created"]), _when(d["next_attempt_at"]) or d["dead_reason"]]
         for d in found],
        wide=wide,
    )


def _delivery_id(text: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise RunlogError(f"not a delivery id: {text!r} (give the whole id; --wide shows them)") from None


@group.command(name="show")
@click.argument("delivery_id")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def show(ctx: click.Context, delivery_id: str, output: str) -> None:
    """One delivery: its message and every attempt, with status codes, timings and answers."""
    path = f"/runlog/deliveries/{_delivery_id(delivery_id)}"
    found = _with_client(ctx, lambda client: client.call("GET", path))
    if output == "json":
        click.echo(json.dumps(found, indent=2))
        return
    click.echo(f"Delivery {found['id']}: {found['status']}" + (f" ({found['dead_reason']})" if found["dead_reason"] else ""))
    click.echo(f"Rule {found['rule_name'] or found['rule_id']}, channel {found['channel_id']}, event {found['event_id']}")
    click.echo(f"Subject: {found['subject']}")
    if found.get("resolves"):
        click.echo(f"Resolves the alert of delivery {found['resolves']}")
    _table(
        "Attempts", ["#", "Started", "ms", "Status", "Outcome", "Answer / error", "Next"],
        [[a["attempt"], _when(a["started"]), a["duration_ms"], a["status_code"], a["outcome"],
          a["error"] or a["excerpt"], _when(a["next_attempt_at"])] for a in found["attempt_log"]],
    )


@group.command(name="retry")
@click.argument("delivery_id", required=False)
@click.option("--dead", is_flag=True, help="Retry every dead letter.")
@click.pass_context
def retry(ctx: click.Context, delivery_id: str | None, dead: bool) -> None:
    """Send a dead letter (or a delivery waiting for its next retry) again now; --dead: all dead letters."""
    if dead == (delivery_id is not None):
        raise RunlogError("give a delivery id or --dead (not both)")
    if dead:
        answer = _with_client(ctx, lambda client: client.call("POST", "/runlog/deliveries/retry-dead"))
        count = len(answer["retried"])
        click.echo(f"Retrying {count} dead letter{'s' if count != 1 else ''}.")
        return
    assert delivery_id is not None
    path = f"/runlog/deliveries/{_delivery_id(delivery_id)}/retry"
    found = _with_client(ctx, lambda client: client.call("POST", path))
    click.echo(f"Retrying delivery {found['id']}.")
