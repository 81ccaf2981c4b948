"""What every command group needs: the profile the root ``runlog`` group selected, and progress bars."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..logging import command_logging_level, configure_logging
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
    configure_logging(command_logging_level(settings.logging_level), stream=sys.stderr)
    return settings


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar


def advance(bar: Progress | None, amount: int) -> None:
    if bar is not None:
        bar.advance(bar.task_ids[0], amount)
