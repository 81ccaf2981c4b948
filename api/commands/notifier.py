"""``runlog notifier start``: the notifier's dispatcher alone, beside servers that do not send.

Run it with RUNLOG_NOTIFIER_ENABLED=false on the servers, or beside them: on PostgreSQL one
process at a time sends (leader-elected), so several never send one delivery twice.
"""

from __future__ import annotations

import asyncio
import sys

import click

from ..logging import configure_logging
from ..notifier import default_parts, run_notifier
from .common import get_settings


@click.group(name="notifier")
def group() -> None:
    """The notifier: sends the notifications rules schedule."""


@group.command()
@click.pass_context
def start(ctx: click.Context) -> None:
    """Send due notifications until stopped (Ctrl-C)."""
    settings = get_settings(ctx)
    parts = default_parts(settings)
    configure_logging(settings.logging_level, stream=sys.stderr)
    click.echo("Starting the runlog notifier.", err=True)
    asyncio.run(run_notifier(settings, parts))
