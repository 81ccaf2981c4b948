"""``runlog events``: look at the log (ls, tail), move it between databases (export, import, push)
and archive its old part (archive).

Export writes JSON lines (api/eventlines.py): every stored event, with the payload inline when
it is JSON (every event runlog writes is) and base64 otherwise, then every run log line. Import
appends the events in order, updating the read models in each append's transaction as a
server does, and stores the log lines; both keep their ids, so importing a file twice adds
nothing the second time. Push does the same into a hosted server over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from typing import IO, Any

import aiohttp
import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from runlog.commands.run_logs import import_logs
from runlog.eventstore import EventStore, NewEvent, RecordedEvent, open_store
from runlog.eventstore.pruning import prune_events, prune_logs
from runlog.projections.retention import prunable_events
from runlog.projections.time_travel import BadMoment, resolve

from runlog.projections.registry import inline_projections
from runlog.projections.view_diff import MISSING, StreamDiffer
from ..client import ApiClient, open_session, unauthorized_message
from ..errors import RunlogError
from ..eventlines import log_to_line, payload, read_line, to_line
from ..queries.logs import count_logs, export_logs
from ..schemas.logs import ExportedLog
from .common import advance, get_settings, progress

LS_LIMIT = 50
"""Events 'runlog events ls' shows unless told otherwise."""

IMPORT_WINDOW = 2000
"""Appends in flight during an import; the store commits them in groups, in order."""
LOG_BATCH = 1000
"""Log lines stored per statement during an import."""


@click.group(name="events")
def group() -> None:
    """Inspect, follow, export and import the event log (the local database)."""


def _database_url(ctx: click.Context) -> str:
    return get_settings(ctx).database_url


@group.command(name="ls")
@click.option("--stream", "stream_id", default=None, help="Only this stream's events (e.g. flow-run-<id>).")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True, help="Only events after this position.")
@click.option("--limit", type=click.IntRange(min=1), default=LS_LIMIT, show_default=True, help="At most this many events.")
@click.option("--diff", "show_diff", is_flag=True,
              help="With --stream: under each event, what it changed in the stream's view (the run, limit, "
                   "pool or worker as readers see it); for other streams, the event's fields.")
@click.pass_context
def ls(ctx: click.Context, stream_id: str | None, after: int, limit: int, show_diff: bool) -> None:
    """List events in position order, at most --limit of them; says so when more follow."""
    if show_diff and stream_id is None:
        raise click.UsageError("--diff needs --stream: a diff is against the view of one stream")
    url = _database_url(ctx)

    async def run() -> list[tuple[RecordedEvent, list[tuple[str, Any, Any]]]]:
        # One event past the limit is read only to learn whether more follow.
        async with open_store(url) as store:
            if stream_id is None:
                return [(e, []) async for e in store.read_all(after=after, limit=limit + 1)]
            found = []
            differ = StreamDiffer(stream_id)
            async for event in store.read_stream(stream_id):
                # The view is folded from the stream's start, whatever --after shows.
                changes = differ.step(event.data, event.version) if show_diff else []
                if event.position > after:
                    found.append((event, changes))
                    if len(found) > limit:
                        break
            return found

    listed = asyncio.run(run())
    if not listed:
        click.echo("No events.")
        return
    more = len(listed) > limit
    listed = listed[:limit]
    events = [e for e, _ in listed]
    if show_diff:
        _print_diffs(listed)
    else:
        table = Table()
        for name, justify in (("Position", "right"), ("Stream", "left"), ("Version", "right"), ("Type", "left"),
                              ("Id", "left"), ("Recorded at", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for e in events:
            table.add_row(str(e.position), e.stream_id, str(e.version), e.type, str(e.id),
                          e.recorded_at.isoformat(timespec="milliseconds"))
        Console().print(table)
    if more:
        # On stderr, like the mode line of other commands: the table on stdout stays only a table.
        again = ["runlog events ls"]
        if stream_id is not None:
            again.append(f"--stream {shlex.quote(stream_id)}")
        again.append(f"--after {events[-1].position}")
        if limit != LS_LIMIT:
            again.append(f"--limit {limit}")
        if show_diff:
            again.append("--diff")
        click.echo(
            f"Showing the first {limit} events; more follow. Next: {' '.join(again)} "
            "(or a larger --limit; 'runlog events export' writes them all).",
            err=True,
        )


DIFF_VALUE_WIDTH = 60
"""Characters of a value shown in a diff line; longer ones are cut with an ellipsis."""


def _shown(value: Any) -> str:
    if value is MISSING:
        return "(none)"
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= DIFF_VALUE_WIDTH else text[: DIFF_VALUE_WIDTH - 1] + "\u2026"


def _print_diffs(listed: list[tuple[RecordedEvent, list[tuple[str, Any, Any]]]]) -> None:
    """One header line per event, then one line per changed field: ``path: old -> new``."""
    for event, changes in listed:
        click.echo(f"#{event.position}  v{event.version}  {event.type}  "
                   f"{event.recorded_at.isoformat(timespec='milliseconds')}  {event.id}")
        if not changes:
            click.echo("    (no change to the view)")
        for path, old, new in changes:
            if old is MISSING:
                click.echo(f"  + {path}: {_shown(new)}")
            elif new is MISSING:
                click.echo(f"  - {path}: {_shown(old)}")
            else:
                click.echo(f"  ~ {path}: {_shown(old)} -> {_shown(new)}")


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
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only events after this position (run log lines, which have no position, are all written).")
@click.pass_context
def export(ctx: click.Context, file: str, after: int) -> None:
    """Write the log and the run log lines as JSON lines to FILE (default: standard output)."""
    url = _database_url(ctx)

    async def run(out: IO[bytes]) -> tuple[int, int]:
        count = logs = 0
        async with open_store(url) as store:
            head = await store.head()
            with progress("Exporting events", max(head - after, 0)) as bar:
                async for event in store.read_all(after=after):
                    out.write(to_line(event))
                    count += 1
                    if count % 1000 == 0:
                        advance(bar, 1000)
            with progress("Exporting log lines", await count_logs(store)) as bar:
                async for page in export_logs(store):
                    out.writelines(map(log_to_line, page))
                    logs += len(page)
                    advance(bar, len(page))
        return count, logs

    if file == "-":
        count, logs = asyncio.run(run(sys.stdout.buffer))
        sys.stdout.flush()
    else:
        try:
            with open(file, "wb", buffering=1 << 20) as out:
                count, logs = asyncio.run(run(out))
        except OSError as exc:
            raise RunlogError(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"Exported {count} event(s) and {logs} log line(s){'' if file == '-' else ' to ' + file}.", err=True)


@group.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_context
def import_(ctx: click.Context, file: str) -> None:
    """Append the events and store the log lines in FILE (from 'runlog events export'); ids already stored are skipped.

    The read models (runs, concurrency, ...) are updated in the same transaction as each
    appended batch, exactly as a server does, so the database answers as if the events had
    been appended live.
    """
    url = _database_url(ctx)

    async def run(source: IO[bytes], size: int | None) -> tuple[int, int, int, int]:
        imported = skipped = logs_imported = logs_skipped = 0
        async with open_store(url, projections=inline_projections()) as store:
            start = await store.head()
            in_flight: list[asyncio.Task[list[RecordedEvent]]] = []
            logs: list[ExportedLog] = []

            async def settle(tasks: list[asyncio.Task[list[RecordedEvent]]]) -> None:
                nonlocal imported, skipped
                for recorded in await asyncio.gather(*tasks):
                    if recorded[0].position > start:
                        imported += 1
                    else:
                        skipped += 1

            async def store_logs(batch: list[ExportedLog]) -> None:
                nonlocal logs_imported, logs_skipped
                new = await import_logs(store, batch)
                logs_imported, logs_skipped = logs_imported + new, logs_skipped + len(batch) - new

            with progress("Importing", size) as bar:
                try:
                    for number, line in enumerate(source, start=1):
                        advance(bar, len(line))
                        if not line.strip():
                            continue
                        record = read_line(line, number)
                        if isinstance(record, ExportedLog):
                            logs.append(record)
                            if len(logs) >= LOG_BATCH:
                                await store_logs(logs)
                                logs = []
                            continue
                        new = NewEvent(type=record.type, data=payload(record, number), id=record.id)
                        # Queued in file order; the store's single writer keeps that order.
                        in_flight.append(asyncio.create_task(store.append(record.stream_id, [new])))
                        if len(in_flight) >= IMPORT_WINDOW:
                            await settle(in_flight)
                            in_flight = []
                    await settle(in_flight)
                    await store_logs(logs)
                except RunlogError as exc:
                    # Appends already queued are committed either way; count them honestly.
                    # Log lines still waiting for their batch are stored too, so that what the
                    # message says is stored is everything before the bad line.
                    await settle(in_flight)
                    await store_logs(logs)
                    raise RunlogError(
                        f"{exc}; the {imported + skipped} event(s) and {logs_imported + logs_skipped} log line(s) "
                        "before it are stored, and importing the file again skips them"
                    ) from None
        return imported, skipped, logs_imported, logs_skipped

    if file == "-":
        imported, skipped, logs_imported, logs_skipped = asyncio.run(run(sys.stdin.buffer, None))
    else:
        try:
            with open(file, "rb") as source:
                imported, skipped, logs_imported, logs_skipped = asyncio.run(
                    run(source, os.fstat(source.fileno()).st_size)
                )
        except OSError as exc:
            raise RunlogError(f"cannot read {file}: {exc.strerror}") from None
    click.echo(f"Imported {imported} event(s); {skipped} were already stored. "
               f"Imported {logs_imported} log line(s); {logs_skipped} were already stored.")


@group.command(name="archive")
@click.option("--before", required=True, metavar="TIME|POSITION",
              help="Archive the log up to the last position recorded at or before this time (ISO 8601), "
                   "or up to this position, and the run log lines timestamped before it.")
@click.option("--to", "file", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The JSON-lines file to write (as 'runlog events export' writes); it must not exist yet.")
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="After the file is written, delete from the database what retention may delete of it.")
@click.pass_context
def archive(ctx: click.Context, before: str, file: str, prune: bool) -> None:
    """Write the old part of the log to FILE, then prune what retention may prune of it.

    FILE holds every event up to that position (not only the pruned ones: the whole start of
    the log, in order) and the run log lines before that time, so 'runlog events import FILE'
    into an empty database, followed by an import of 'runlog events export --after POSITION'
    from this one, gives back the whole log. What is pruned is what the retention service
    prunes (old worker heartbeats and polls no view needs, and the log lines), so every view
    here stays as it was.
    """
    url = _database_url(ctx)

    async def run(out: IO[bytes]) -> tuple[int, int, int, int]:
        async with open_store(url) as store:
            try:
                moment = await resolve(store, before)
            except BadMoment as exc:
                raise RunlogError(str(exc).replace("'at'", "--before")) from None
            events = 0
            with progress("Archiving events", moment.position) as bar:
                async for event in store.read_all():
                    if event.position > moment.position:  # a position bound: the log may have gaps
                        break
                    out.write(to_line(event))
                    events += 1
                    if events % 1000 == 0:
                        advance(bar, 1000)
            log_ids = []
            if moment.time is not None:
                async for page in export_logs(store):
                    old = [log for log in page if log.timestamp < moment.time]
                    out.writelines(map(log_to_line, old))
                    log_ids += [log.id for log in old]
            out.flush()
            os.fsync(out.fileno())  # on disk before anything is deleted
            pruned = 0
            if prune and moment.time is not None:
                positions = await prunable_events(store, moment.time, moment.position)
                pruned = await prune_events(store, positions)
                await prune_logs(store, log_ids)
        return moment.position, events, len(log_ids), pruned

    try:
        with open(file, "xb", buffering=1 << 20) as out:
            position, events, logs, pruned = asyncio.run(run(out))
    except FileExistsError:
        raise RunlogError(f"{file} exists; an archive is never written over another file") from None
    except OSError as exc:
        raise RunlogError(f"cannot write {file}: {exc.strerror}") from None
    click.echo(f"Archived {events} event(s) up to position {position} and {logs} log line(s) to {file}.")
    if prune:
        click.echo(f"Pruned {pruned} event(s) no view needs and {logs} log line(s) from the database. "
                   f"To restore the whole log into an empty database: 'runlog events import {file}', "
                   f"then import 'runlog events export --after {position}' from this one.")


PUSH_CHUNK = 1000
PUSH_BYTES = 4 << 20
"""A push request carries at most PUSH_CHUNK records and (unless one record alone is larger)
PUSH_BYTES of them: well inside a server's default 10 MiB body limit, whatever the payloads."""


@group.command()
@click.option("--to", "target", required=True, help="The hosted server's API URL, e.g. http://host:4200/api.")
@click.option("--after", type=click.IntRange(min=0), default=0, show_default=True,
              help="Only local events after this position (run log lines, which have no position, are all sent).")
@click.pass_context
def push(ctx: click.Context, target: str, after: int) -> None:
    """Replay the local log and run log lines into a hosted runlog server. Safe to repeat: nothing is stored twice."""
    url = _database_url(ctx)
    if not target.startswith(("http://", "https://")):
        raise RunlogError(f"--to must be an http(s) URL of a runlog API, like http://host:4200/api; got {target!r}")

    async def log_lines(store: EventStore) -> AsyncIterator[bytes]:
        async for page in export_logs(store):
            for log in page:
                yield log_to_line(log).rstrip(b"\n")

    async def run() -> tuple[tuple[int, int], tuple[int, int]]:
        timeout = aiohttp.ClientTimeout(total=300)
        auth_string = get_settings(ctx).api_auth_string
        async with open_store(url) as store, open_session(target, auth_string, timeout) as session:
            client = ApiClient(target, session)
            head = await store.head()
            with progress("Pushing events", max(head - after, 0)) as bar:
                events = (to_line(event).rstrip(b"\n") async for event in store.read_all(after=after))
                pushed_events = await _push_all(client, "/runlog/events/import", events, bar)
            # After the events, so a server never shows a run's log lines before the run.
            with progress("Pushing log lines", await count_logs(store)) as bar:
                pushed_logs = await _push_all(client, "/runlog/logs/import", log_lines(store), bar)
        return pushed_events, pushed_logs

    (imported, skipped), (logs_imported, logs_skipped) = asyncio.run(run())
    click.echo(f"Pushed {imported + skipped} event(s) to {target}: {imported} new, {skipped} already there. "
               f"Pushed {logs_imported + logs_skipped} log line(s): {logs_imported} new, {logs_skipped} already there.")


async def _push_all(client: ApiClient, path: str, lines: AsyncIterator[bytes], bar: Progress | None) -> tuple[int, int]:
    """Send JSON records to ``path`` in bounded requests, in order; (new, already there) in all."""
    imported = skipped = 0
    chunk: list[bytes] = []
    size = 0

    async def send() -> None:
        nonlocal imported, skipped, chunk, size
        done = await _push(client, path, chunk)
        imported, skipped = imported + done["imported"], skipped + done["skipped"]
        advance(bar, len(chunk))
        chunk, size = [], 0

    async for line in lines:
        if chunk and (len(chunk) == PUSH_CHUNK or size + len(line) > PUSH_BYTES):
            await send()
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        await send()
    return imported, skipped


async def _push(client: ApiClient, path: str, lines: list[bytes]) -> dict:
    body = b"[" + b",".join(lines) + b"]"
    try:
        async with client.session.post(client.base + path, data=body,
                                       headers={"Content-Type": "application/json"}) as response:
            text = await response.text()
    except aiohttp.ClientError as exc:
        raise RunlogError(f"cannot reach the runlog server at {client.base}: {exc}") from None
    try:
        answer = json.loads(text)
    except ValueError:
        answer = text[:200]
    if response.status == 401:
        raise RunlogError(unauthorized_message(client.base))
    if response.status == 404:
        raise RunlogError(f"the server at {client.base} has no {path} endpoint: is it a runlog server, "
                          "and as recent as this runlog?")
    if response.status != 200 or not isinstance(answer, dict):
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        raise RunlogError(f"the server at {client.base} refused the push ({response.status}): {detail}")
    return answer
