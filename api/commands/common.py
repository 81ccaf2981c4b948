"""What every command group needs from the root ``runlog`` group: the profile it selected."""

from __future__ import annotations

import sys

import click

from ..logging import configure_logging
from ..settings import Settings, load_settings


def requested_profile(ctx: click.Context) -> str | None:
    """The profile named by ``runlog -p`` or $RUNLOG_PROFILE, or None for the active one."""
    obj = ctx.find_root().obj or {}
    return obj.get("profile")


def get_settings(ctx: click.Context) -> Settings:
    """The settings for this invocation; errors propagate to the root group, which prints them.

    Logging is set up here, once the level is known: log lines go to stderr so that a
    command's own output on stdout (an export, say) stays clean.
    """
    settings = load_settings(profile=requested_profile(ctx))
    configure_logging(settings.logging_level, stream=sys.stderr)
    return settings
