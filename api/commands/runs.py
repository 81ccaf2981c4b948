"""``runlog flow``, ``runlog flow-run`` and ``runlog task-run``: readable tables of runs.

With RUNLOG_API_URL set they ask that server; without it they work on the local database
(ephemeral mode) and say so in one line on stderr.

Tables show ids cut to their first 8 characters (longer where two rows would look alike), so
they stay readable at 80 columns; ``--wide`` shows whole ids and ``-o json`` the server's
objects. Wherever a run id is taken, a unique prefix of it will do, as with git's hashes.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote
from uuid import UUID

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from runlog.projections.time_travel import BadMoment, parse_at

from ..client import ApiClient, connect
from ..errors import RunlogError
from ..queries.run_ids import BadPrefix, id_range
from .common import get_settings

SHORT_ID = 8
"""Characters of an id shown in tables: 4 billion values, so a prefix this long is almost always unique."""

SHOWN_CANDIDATES = 10
"""Runs listed when a prefix matches more than one."""

STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING")

_NO_WRAP = ("ID", "State", "Runs", "When", "Started", "Ended", "Created")


def _table(title: str, columns: list[str], rows: list[list[Any]], *, wide: bool = False) -> None:
    """A table that fits the terminal (80 columns off one), names folding first; with WIDE,
    as wide as its contents, long lines and all, so no id is ever cut or folded."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _NO_WRAP)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console = Console()
    if wide:
        # Measured against an unbounded width: measuring against the console's own gives its width.
        needed = Measurement.get(console, console.options.update_width(1 << 16), table).maximum
        if needed > console.width:
            console = Console(width=needed)
    console.print(table)


def short_ids(ids: Iterable[str], wide: bool = False) -> dict[str, str]:
    """Each id cut to SHORT_ID characters, or, like git's abbreviations, to one character past
    what it shares with another id shown, so no two rows look alike."""
    ordered = sorted(set(ids))
    if wide:
        return {i: i for i in ordered}
    shared = dict.fromkeys(ordered, 0)
    for a, b in zip(ordered, ordered[1:]):  # in sorted order, the longest shared start is a neighbour's
        common = len(os.path.commonprefix([a, b]))
        shared[a], shared[b] = max(shared[a], common), max(shared[b], common)
    return {i: i[:max(SHORT_ID, shared[i] + 1)] for i in ordered}


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


def _shown_plainly(rows: list[Any], output: str, none: str) -> bool:
    """Print ``rows`` as JSON (``-o json``), or ``none`` when there are none; False when the
    caller still has a table to print."""
    if output == "json":
        _print_json(rows)
    elif not rows:
        click.echo(none)
    return output == "json" or not rows


def _wide_and_output(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every listing shares: whole ids, or JSON instead of a table."""
    command = click.option("--wide", is_flag=True, help="Show whole ids instead of their first characters.")(command)
    return click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True,
                        help="json: the server's objects, whole ids included.")(command)


async def resolve_flow_run_id(client: ApiClient, text: str) -> str:
    """The whole id of the one flow run whose id is TEXT or starts with it; a clear error otherwise."""
    try:
        return str(UUID(text))
    except ValueError:
        pass
    try:
        id_range(text)  # the server checks it too; checked here, the message needs no HTTP status
    except BadPrefix as exc:
        raise RunlogError(str(exc)) from None
    # runlog's own endpoint (api/routes/run_ids.py): a range read on the runs table's key,
    # in either mode; one more row than is shown says whether there are more.
    limit = SHOWN_CANDIDATES + 1
    found = await client.call("GET", f"/runlog/flow_runs/ids?prefix={quote(text, safe='')}&limit={limit}")
    if not found:
        raise RunlogError(f"no flow run has an id starting with {text!r}")
    if len(found) == 1:
        return str(found[0]["id"])
    lines = [f"  {r['id']}  {r['name']}  {r.get('state_name') or ''}".rstrip() for r in found[:SHOWN_CANDIDATES]]
    more = "\n  ... and more" if len(found) > SHOWN_CANDIDATES else ""
    count = f"more than {SHOWN_CANDIDATES}" if more else str(len(found))
    raise RunlogError(
        f"{text!r} is ambiguous: it starts the ids of {count} flow runs; give more characters of the id:\n"
        + "\n".join(lines) + more
    )


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def _until(start: str | None, end: str | None) -> str:
    """An end time, without its date when that is the start's date."""
    shown = _when(end)
    if shown and _when(start)[:10] == shown[:10]:
        return shown[11:]
    return shown


def _query(ctx: click.Context, calls: list[tuple[str, str, Any]]) -> list[Any]:
    return _with_client(ctx, lambda client: _calls(client, calls))


async def _calls(client: ApiClient, calls: list[tuple[str, str, Any]]) -> list[Any]:
    return [await client.call(method, path, body) for method, path, body in calls]


def _with_client(ctx: click.Context, work: Callable[[ApiClient], Awaitable[Any]]) -> Any:
    """Run WORK with a client for the configured server, or the in-process one (ephemeral mode)."""
    settings = get_settings(ctx)

    async def run() -> Any:
        async with connect(settings) as client:
            return await work(client)

    return asyncio.run(run())


@click.group(name="flow")
def flow_group() -> None:
    """Flows."""


@flow_group.command(name="ls")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@_wide_and_output
@click.pass_context
def flow_ls(ctx: click.Context, limit: int, wide: bool, output: str) -> None:
    """List flows."""
    (flows,) = _query(ctx, [("POST", "/flows/filter", {"limit": limit, "sort": "NAME_ASC"})])
    if _shown_plainly(flows, output, "No flows."):
        return
    ids = short_ids((f["id"] for f in flows), wide)
    _table("Flows", ["ID", "Name", "Created"], [[ids[f["id"]], f["name"], _when(f["created"])] for f in flows],
           wide=wide)


@click.group(name="flow-run")
def flow_run_group() -> None:
    """Flow runs."""


@flow_run_group.command(name="ls")
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_TYPES, case_sensitive=False),
              help="Only runs in this state type (repeatable).")
@click.option("--flow-name", default=None, help="Only runs of this flow.")
@click.option("--limit", type=click.IntRange(1, 200), default=15, show_default=True)
@_wide_and_output
@click.pass_context
def flow_run_ls(
    ctx: click.Context, states: tuple[str, ...], flow_name: str | None, limit: int, wide: bool, output: str
) -> None:
    """List flow runs, newest expected start first."""
    body: dict[str, Any] = {"limit": limit, "sort": "EXPECTED_START_TIME_DESC"}
    if states:
        body["flow_runs"] = {"state": {"type": {"any_": [s.upper() for s in states]}}}
    if flow_name:
        body["flows"] = {"name": {"any_": [flow_name]}}
    runs, flows = _query(ctx, [("POST", "/flow_runs/filter", body), ("POST", "/flows/filter", {})])
    if _shown_plainly(runs, output, "No flow runs."):
        return
    names = {f["id"]: f["name"] for f in flows}
    ids = short_ids((r["id"] for r in runs), wide)
    _table(
        "Flow runs", ["ID", "Flow", "Name", "State", "When"],
        [[ids[r["id"]], names.get(r["flow_id"], r["flow_id"]), r["name"], r["state_name"] or r["state_type"],
          _when(r["start_time"] or r["expected_start_time"])] for r in runs],
        wide=wide,
    )


AT_HELP = ("Show it as it was at this log position, or at this time (ISO 8601, e.g. 2026-01-02T03:04:05Z: "
           "the last position recorded at or before it).")


def at_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--at POSITION|TIMESTAMP``, checked here so a typo gets a plain message."""

    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_at(value)
            except BadMoment as exc:
                raise click.BadParameter(str(exc).replace("'at'", "--at")) from None
        return value

    return click.option("--at", default=None, callback=check, metavar="POSITION|TIMESTAMP", help=AT_HELP)(command)


def at_query(at: str | None, first: bool = True) -> str:
    """The ``at`` query parameter for a path, or nothing."""
    return "" if at is None else f"{'?' if first else '&'}at={quote(at, safe='')}"


@flow_run_group.command(name="inspect")
@click.argument("flow_run_id")
@at_option
@click.pass_context
def flow_run_inspect(ctx: click.Context, flow_run_id: str, at: str | None) -> None:
    """Show one flow run and its state history. FLOW_RUN_ID may be a unique prefix of the id.

    With --at, the run as it was then: folded from the log up to that position.
    """

    async def work(client: ApiClient) -> list[Any]:
        run_id = await resolve_flow_run_id(client, flow_run_id)
        return await _calls(client, [
            ("GET", f"/flow_runs/{run_id}{at_query(at)}", None),
            ("GET", f"/flow_run_states/?flow_run_id={run_id}{at_query(at, first=False)}", None),
        ])

    run, states = _with_client(ctx, work)
    if at is not None:
        click.echo(f"As at {at}:")
    fields = ["id", "name", "flow_id", "state_type", "state_name", "run_count", "parameters", "tags",
              "parent_task_run_id", "expected_start_time", "start_time", "end_time", "total_run_time"]
    width = max(len(f) for f in fields)
    for field in fields:
        click.echo(f"{field.ljust(width)}  {run.get(field)}")
    _table("State history", ["When", "Type", "Name", "Message"],
           [[_when(s["timestamp"]), s["type"], s.get("name"), s.get("message")] for s in states])


@click.group(name="task-run")
def task_run_group() -> None:
    """Task runs."""


@task_run_group.command(name="ls")
@click.option("--flow-run", "flow_run_id", required=True,
              help="The flow run whose task runs to list: its id or a unique prefix of it.")
@click.option("--limit", type=click.IntRange(1, 200), default=200, show_default=True)
@_wide_and_output
@click.pass_context
def task_run_ls(ctx: click.Context, flow_run_id: str, limit: int, wide: bool, output: str) -> None:
    """List the task runs of a flow run."""

    async def work(client: ApiClient) -> list[Any]:
        run_id = await resolve_flow_run_id(client, flow_run_id)
        body = {"flow_runs": {"id": {"any_": [run_id]}}, "limit": limit, "sort": "EXPECTED_START_TIME_ASC"}
        return await client.call("POST", "/task_runs/filter", body)

    tasks = _with_client(ctx, work)
    if _shown_plainly(tasks, output, "No task runs."):
        return
    ids = short_ids((t["id"] for t in tasks), wide)
    _table("Task runs", ["ID", "Name", "State", "Runs", "Started", "Ended"],
           [[ids[t["id"]], t["name"], t["state_name"] or t["state_type"], t["run_count"], _when(t["start_time"]),
             _until(t["start_time"], t["end_time"])] for t in tasks], wide=wide)
