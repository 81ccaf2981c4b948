"""The ``runlog`` command: the root group, its global options and its one error boundary.

Each command group lives in api/commands/<group>.py. Errors a person can act on (our own,
the store's, a bad setting) are printed as one ``Error: ...`` line with exit status 1; a
traceback would only ever mean a bug.
"""

from __future__ import annotations

import sys

import click

from runlog.eventstore.errors import EventStoreError

from .errors import RunlogError


class RunlogGroup(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (RunlogError, EventStoreError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=RunlogGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-p",
    "--profile",
    envvar="RUNLOG_PROFILE",
    default=None,
    help="Profile to use for this command (default: the active one; env RUNLOG_PROFILE).",
)
@click.version_option(package_name="runlog", prog_name="runlog")
@click.pass_context
def cli(ctx: click.Context, profile: str | None) -> None:
    """runlog: an event-sourced orchestration state server for Prefect clients."""
    ctx.ensure_object(dict)
    ctx.obj["profile"] = profile


def _register() -> None:
    from .commands import channels, concurrency, config, database, deliveries, deployments, events, notifications
    from .commands import import_prefect, notifier, profile, projections, run, runs, server

    notifications.group.add_command(deliveries.group)
    for module in (config, profile, database, events, notifications, projections, server, notifier, channels, concurrency,
                   run, import_prefect):
        cli.add_command(module.group)
    for group in (runs.flow_group, runs.flow_run_group, runs.task_run_group, *deployments.groups):
        cli.add_command(group)


def main() -> None:
    if _command_word(sys.argv[1:]) == "run":
        # `runlog run` stands in front of every script it runs: load its module only, not every
        # command group's (their imports took about a third of a second here).
        from .commands import run

        cli.add_command(run.group)
    else:
        _register()
    cli(prog_name="runlog")


def _command_word(args: list[str]) -> str | None:
    """The command name in ARGS, after the root group's options (-p/--profile NAME)."""
    rest = iter(args)
    for arg in rest:
        if arg in ("-p", "--profile"):
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return None
