"""``runlog server start``: serve the Prefect-compatible API."""

from __future__ import annotations

import click

from ..errors import RunlogError
from .common import get_settings


@click.group(name="server")
def group() -> None:
    """Run the runlog API server."""


@group.command()
@click.option("--host", default=None, help="Address to listen on (default: RUNLOG_SERVER_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: RUNLOG_SERVER_PORT, 4200).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the port (PostgreSQL only).")
@click.pass_context
def start(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Start the server; clients set PREFECT_API_URL=http://HOST:PORT/api."""
    from runlog.eventstore import mask_url, parse_database_url

    from ..server import serve

    settings = get_settings(ctx)
    host = host or settings.server_host
    port = port or settings.server_port
    if workers > 1 and parse_database_url(settings.database_url).backend != "postgres":
        raise RunlogError(
            "--workers needs PostgreSQL: SQLite admits one writer process at a time. "
            "Set RUNLOG_DATABASE_URL to a postgresql:// URL, or run one worker."
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Starting runlog server on http://{host}:{port}/api, database {mask_url(settings.database_url)}")
    if host in ("0.0.0.0", "::"):
        click.echo(
            f"Listening on all interfaces. Clients set PREFECT_API_URL=http://<this machine's address>:{port}/api"
        )
    else:
        click.echo(f"Clients set PREFECT_API_URL=http://{shown}:{port}/api")
    serve(settings, host=host, port=port, workers=workers)
