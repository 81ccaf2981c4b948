"""``runlog server start``: serve the Prefect-compatible API."""

from __future__ import annotations

import dataclasses
import ipaddress

import click

from ..addresses import reachable_addresses
from ..errors import RunlogError
from .common import get_settings

WILDCARDS = ("0.0.0.0", "::")


@click.group(name="server")
def group() -> None:
    """Run the runlog API server."""


@group.command()
@click.option("--host", default=None, help="Address to listen on (default: RUNLOG_SERVER_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (default: RUNLOG_SERVER_PORT, 4200); 0 picks a free one, which the banner names.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes sharing the port (PostgreSQL only).")
@click.pass_context
def start(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Start the server; clients set PREFECT_API_URL=http://HOST:PORT/api."""
    from runlog.eventstore import mask_url, parse_database_url

    from .. import prefect_ui
    from ..server import bound_port, listen, serve

    settings = get_settings(ctx)
    host = host or settings.server_host
    port = settings.server_port if port is None else port
    if workers > 1 and parse_database_url(settings.database_url).backend != "postgres":
        raise RunlogError(
            "--workers needs PostgreSQL: SQLite admits one writer process at a time. "
            "Set RUNLOG_DATABASE_URL to a postgresql:// URL, or run one worker."
        )
    sock = listen(host, port)  # before the banner, which names the port bound (--port 0 asks for any free one)
    port = bound_port(sock)
    # The address actually listened on, not the configured one: notification links (the
    # ui_url filter, the default message's run URL) point at it when RUNLOG_UI_URL is unset.
    settings = dataclasses.replace(settings, server_host=host, server_port=port)
    click.echo(f"Starting runlog server on http://{url_host(host)}:{port}/api, database {mask_url(settings.database_url)}")
    for line in banner(host, port, auth=settings.server_api_auth_string is not None):
        click.echo(line)
    ui = prefect_ui.create(settings)
    if ui is not None and ui.installed:
        ui.prepare()  # the bundle's copy under RUNLOG_HOME, made now rather than on the first page
    click.echo(prefect_ui.banner_line(settings, f"http://{url_host(_browser_host(host))}:{port}"))
    click.echo(f"runlog's pages (log, time travel, notifications, projections): http://{url_host(_browser_host(host))}:{port}/runlog/")
    serve(settings, sock, workers=workers)


def url_host(host: str) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


NO_AUTH_WARNING = (
    "Warning: the API has no authentication: anyone who can reach this port can read and change every run. "
    "Set RUNLOG_SERVER_API_AUTH_STRING=user:password to require a password, or expose the port only on a "
    "network you trust."
)
AUTH_ON = "API authentication: on (RUNLOG_SERVER_API_AUTH_STRING); clients set PREFECT_API_AUTH_STRING to it"


def banner(host: str, port: int, *, auth: bool = False) -> list[str]:
    """What clients set PREFECT_API_URL to, and a warning when other machines can reach an API
    that has no auth string."""
    if host in WILDCARDS:
        found = reachable_addresses(host)
        lines = ["Listening on all interfaces. Clients set PREFECT_API_URL to one of:"]
        for a in found:
            where = f"{a.interface}, this machine only" if a.address.is_loopback else a.interface
            url = f"http://{url_host(str(a.address))}:{port}/api"
            lines.append(f"  {url}" + (f"  ({where})" if where else ""))
        if not found:
            lines.append(f"  http://<this machine's address>:{port}/api  (no interface address was found)")
    else:
        lines = [f"Clients set PREFECT_API_URL=http://{url_host(host)}:{port}/api"]
    if auth:
        lines.append(AUTH_ON)
    elif not _loopback_only(host):
        lines.append(NO_AUTH_WARNING)
    return lines


def _browser_host(host: str) -> str:
    """Where a browser on this machine reaches a server listening on HOST."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _loopback_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to an address other machines reach
