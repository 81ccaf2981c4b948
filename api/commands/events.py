"""``runlog events``: look at the log (ls, tail) and move it between databases (export, import).

Export writes JSON lines, one stored event per line, with the payload inline when it is JSON
(every event runlog writes is) and base64 otherwise. Import appends them in order and is
idempotent by event id, so importing a file twice adds nothing the second time.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import IO

import aiohttp
import click
from rich.console import Console
from rich.table import Table

from runlog.eventstore import NewEvent, RecordedEvent, open_store

from ..app import inline_projections
from ..client import ApiClient
from ..errors import RunlogError
from ..eventlines import from_line, payload, to_line
from .common import advance, get_settings, progress

IMPORT_WINDOW = 2000
"""Appends in flight during an import; the store commits them in groups, in order."""


@click.group(name="events")
def group() -> None:
    """Inspect, follow, export and import the event log (the local database)."""


def _database_url(ctx: click.Context) -> str:
    return get_settings(ctx).database_url


@group.command(name="ls")
@click.option("--stream", "stream_id", default=None, help="Only this stream's events.")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True, help="Only events after this position.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most this many events.")
@click.pass_context
def ls(ctx: click.Context, stream_id: str | None, after: int, limit: int) -> None:
    """List events in position order."""
    url = _database_url(ctx)

    async def run() -> list[RecordedEvent]:
        async with open_store(url) as store:
            if stream_id is None:
                return [e async for e in store.read_all(after=after, limit=limit)]
            found = []
            async for event in store.read_stream(stream_id):
                if event.position > after:
                    found.append(event)
                    if len(found) == limit:
                        break
            return found

    events = asyncio.run(run())
    if not events:
        click.echo("No events.")
        return
    table = Table()
    for name, justify in (("Position", "right"), ("Stream", "left"), ("Version", "right"), ("Type", "left"),
                          ("Id", "left"), ("Recorded at", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for e in events:
        table.add_row(str(e.position), e.stream_id, str(e.version), e.type, str(e.id),
                      e.recorded_at.isoformat(timespec="milliseconds"))
    Console().print(table)


@group.command()
@click.option("--after", type=click.IntRange(min=0), default=None,
              help="Start after this position (default: the current end of the log).")
@click.pass_context
def tail(ctx: click.Context, after: int | None) -> None:
    """Print new events as they are appended, until interrupted (Ctrl-C)."""
    url = _database_url(ctx)

    async def run() -> None:
        async with open_store(url) as store:
            start = await store.head() if after is None else after
            click.echo(f"Following events after position {start} (Ctrl-C to stop).", err=True)
            async for e in store.subscribe(after=start):
                click.echo(f"{e.position}\t{e.recorded_at.isoformat(timespec='milliseconds')}\t"
                           f"{e.stream_id}@{e.version}\t{e.type}\t{e.id}")

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("Stopped.", err=True)


@group.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, allow_dash=True), default="-")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True, help="Only events after this position.")
@click.pass_context
def export(ctx: click.Context, file: str, after: int) -> None:
    """Write the log as JSON lines to FILE (default: standard output)."""
    url = _database_url(ctx)

    async def run(out: IO[bytes]) -> int:
        count = 0
        async with open_store(url) as store:
            head = await store.head()
            with progress("Exporting", max(head - after, 0)) as bar:
                async for event in store.read_all(after=after):
                    out.write(to_line(event))
                    count += 1
                    if count % 1000 == 0:
                        advance(bar, 1000)
        return count

    if file == "-":
        count = asyncio.run(run(sys.stdout.buffer))
        sys.stdout.flush()
    else:
        try:
            with open(file, "wb", buffering=1 << 20) as out:
                count = asyncio.run(run(out))
        except OSError as exc:
            raise RunlogError(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"Exported {count} event(s){'' if file == '-' else ' to ' + file}.", err=True)


@group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_context
def import_(ctx: click.Context, file: str) -> None:
    """Append the events in FILE (JSON lines from 'runlog events export'); ids already stored are skipped.

    The read models (runs, concurrency, ...) are updated in the same transaction as each
    appended batch, exactly as a server does, so the database answers as if the events had
    been appended live.
    """
    url = _database_url(ctx)

    async def run(source: IO[bytes], size: int | None) -> tuple[int, int]:
        imported = skipped = 0
        async with open_store(url, projections=inline_projections()) as store:
            start = await store.head()
            in_flight: list[asyncio.Task[list[RecordedEvent]]] = []

            async def settle(tasks: list[asyncio.Task[list[RecordedEvent]]]) -> None:
                nonlocal imported, skipped
                for recorded in await asyncio.gather(*tasks):
                    if recorded[0].position > start:
                        imported += 1
                    else:
                        skipped += 1

            with progress("Importing", size) as bar:
                try:
                    for number, line in enumerate(source, start=1):
                        advance(bar, len(line))
                        if not line.strip():
                            continue
                        event = from_line(line, number)
                        new = NewEvent(type=event.type, data=payload(event, number), id=event.id)
                        # Queued in file order; the store's single writer keeps that order.
                        in_flight.append(asyncio.create_task(store.append(event.stream_id, [new])))
                        if len(in_flight) >= IMPORT_WINDOW:
                            await settle(in_flight)
                            in_flight = []
                    await settle(in_flight)
                except RunlogError as exc:
                    # Appends already queued are committed either way; count them honestly.
                    await settle(in_flight)
                    raise RunlogError(
                        f"{exc}; the {imported + skipped} event(s) before it are stored, "
                        "and importing the file again skips them"
                    ) from None
        return imported, skipped

    if file == "-":
        imported, skipped = asyncio.run(run(sys.stdin.buffer, None))
    else:
        try:
            with open(file, "rb") as source:
                imported, skipped = asyncio.run(run(source, os.fstat(source.fileno()).st_size))
        except OSError as exc:
            raise RunlogError(f"cannot read {file}: {exc.strerror}") from None
    click.echo(f"Imported {imported} event(s); {skipped} were already stored.")


PUSH_CHUNK = 1000


@group.command()
@click.option("--to", "target", required=True, help="The hosted server's API URL, e.g. http://host:4200/api.")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only local events after this position.")
@click.pass_context
def push(ctx: click.Context, target: str, after: int) -> None:
    """Replay the local log into a hosted runlog server. Safe to repeat: nothing is stored twice."""
    url = _database_url(ctx)
    if not target.startswith(("http://", "https://")):
        raise RunlogError(f"--to must be an http(s) URL of a runlog API, like http://host:4200/api; got {target!r}")

    async def run() -> tuple[int, int]:
        imported = skipped = 0
        async with open_store(url) as store, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
            client = ApiClient(target, session)
            head = await store.head()
            chunk: list[bytes] = []
            with progress("Pushing", max(head - after, 0)) as bar:
                async for event in store.read_all(after=after):
                    chunk.append(to_line(event).rstrip(b"\n"))
                    if len(chunk) == PUSH_CHUNK:
                        done = await _push(client, chunk)
                        imported, skipped = imported + done["imported"], skipped + done["skipped"]
                        advance(bar, len(chunk))
                        chunk = []
                if chunk:
                    done = await _push(client, chunk)
                    imported, skipped = imported + done["imported"], skipped + done["skipped"]
        return imported, skipped

    imported, skipped = asyncio.run(run())
    click.echo(f"Pushed {imported + skipped} event(s) to {target}: {imported} new, {skipped} already there.")


async def _push(client: ApiClient, lines: list[bytes]) -> dict:
    body = b"[" + b",".join(lines) + b"]"
    try:
        async with client.session.post(client.base + "/runlog/events/import", data=body,
                                       headers={"Content-Type": "application/json"}) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                detail = answer.get("detail") if isinstance(answer, dict) else answer
                raise RunlogError(f"the server at {client.base} refused the push ({response.status}): {detail}")
            return answer
    except aiohttp.ClientError as exc:
        raise RunlogError(f"cannot reach the runlog server at {client.base}: {exc}") from None
