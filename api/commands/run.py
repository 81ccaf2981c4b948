"""``runlog run [--] COMMAND [ARGS...]``: run a command whose Prefect client reports to runlog.

Without RUNLOG_API_URL the command's runs are recorded in the local database by a server
embedded for the length of the command (api/run.py); with it, they go to that server.
"""

from __future__ import annotations

import os
import sys

import click



@click.command(
    name="run",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print where the runs went.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="[--] COMMAND [ARGS]...")
@click.pass_context
def run(ctx: click.Context, quiet: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND with PREFECT_API_URL set to runlog; exit with its exit code.

    Without RUNLOG_API_URL a runlog server on a free loopback port records the runs in the local
    database (the profile's RUNLOG_DATABASE_URL) until COMMAND exits; `runlog events push --to
    URL` sends them to another server later. With it, COMMAND reports to that server.
    Signals sent to runlog (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are passed on to COMMAND.
    """
    from runlog.eventstore import mask_url

    from ..run import ChildNotStarted, EmbeddedServer, signals_blocked, spawn, wait_forwarding
    from ..settings import load_settings

    # The settings alone before the child starts: the embedded server sets up logging on its
    # thread (common.py's get_settings() would import rich and the logging setup here first).
    settings = load_settings(profile=(ctx.find_root().obj or {}).get("profile"))
    server = None if settings.api_url else EmbeddedServer(settings)
    api_url = settings.api_url or server.api_url  # type: ignore[union-attr]
    env = {**os.environ, "PREFECT_API_URL": api_url}
    with signals_blocked():
        try:
            pid = spawn(command, env)  # first: the server starts while the child imports Prefect
        except ChildNotStarted as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.status)
        if server is not None:
            server.start()
        try:
            code = wait_forwarding(pid, server)
        finally:
            if server is not None:
                server.stop()  # raises what stopped the server, if something did
    if not quiet:
        if server is not None:
            where = f"the local database {mask_url(settings.database_url)} (profile {settings.profile})"
            click.echo(
                f"runlog: runs recorded in {where}; `runlog flow-run ls` lists them, "
                "`runlog events push --to URL` sends them to a runlog server.",
                err=True,
            )
        else:
            click.echo(f"runlog: runs sent to {mask_url(api_url)} (RUNLOG_API_URL).", err=True)
    sys.exit(code)


group = run  # registered like the command groups (api/cli.py)
