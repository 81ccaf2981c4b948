"""``runlog flow``, ``runlog flow-run`` and ``runlog task-run``: readable tables of runs.

With RUNLOG_API_URL set they ask that server; without it they work on the local database
(ephemeral mode) and say so in one line on stderr.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..client import connect
from .common import get_settings

STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else ""


def _query(ctx: click.Context, calls: list[tuple[str, str, Any]]) -> list[Any]:
    settings = get_settings(ctx)

    async def run() -> list[Any]:
        async with connect(settings) as client:
            return [await client.call(method, path, body) for method, path, body in calls]

    return asyncio.run(run())


@click.group(name="flow")
def flow_group() -> None:
    """Flows."""


@flow_group.command(name="ls")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.pass_context
def flow_ls(ctx: click.Context, limit: int) -> None:
    """List flows."""
    (flows,) = _query(ctx, [("POST", "/flows/filter", {"limit": limit, "sort": "NAME_ASC"})])
    if not flows:
        click.echo("No flows.")
        return
    _table("Flows", ["ID", "Name", "Created"], [[f["id"], f["name"], _when(f["created"])] for f in flows])


@click.group(name="flow-run")
def flow_run_group() -> None:
    """Flow runs."""


@flow_run_group.command(name="ls")
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_TYPES, case_sensitive=False),
              help="Only runs in this state type (repeatable).")
@click.option("--flow-name", default=None, help="Only runs of this flow.")
@click.option("--limit", type=click.IntRange(1, 200), default=15, show_default=True)
@click.pass_context
def flow_run_ls(ctx: click.Context, states: tuple[str, ...], flow_name: str | None, limit: int) -> None:
    """List flow runs, newest expected start first."""
    body: dict[str, Any] = {"limit": limit, "sort": "EXPECTED_START_TIME_DESC"}
    if states:
        body["flow_runs"] = {"state": {"type": {"any_": [s.upper() for s in states]}}}
    if flow_name:
        body["flows"] = {"name": {"any_": [flow_name]}}
    runs, flows = _query(ctx, [("POST", "/flow_runs/filter", body), ("POST", "/flows/filter", {})])
    if not runs:
        click.echo("No flow runs.")
        return
    names = {f["id"]: f["name"] for f in flows}
    _table(
        "Flow runs", ["ID", "Flow", "Name", "State", "When"],
        [[r["id"], names.get(r["flow_id"], r["flow_id"]), r["name"], r["state_name"] or r["state_type"],
          _when(r["start_time"] or r["expected_start_time"])] for r in runs],
    )


@flow_run_group.command(name="inspect")
@click.argument("flow_run_id", type=click.UUID)
@click.pass_context
def flow_run_inspect(ctx: click.Context, flow_run_id: Any) -> None:
    """Show one flow run and its state history."""
    run, states = _query(ctx, [
        ("GET", f"/flow_runs/{flow_run_id}", None),
        ("GET", f"/flow_run_states/?flow_run_id={flow_run_id}", None),
    ])
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
@click.option("--flow-run", "flow_run_id", type=click.UUID, required=True, help="The flow run whose task runs to list.")
@click.option("--limit", type=click.IntRange(1, 200), default=200, show_default=True)
@click.pass_context
def task_run_ls(ctx: click.Context, flow_run_id: Any, limit: int) -> None:
    """List the task runs of a flow run."""
    body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}, "limit": limit, "sort": "EXPECTED_START_TIME_ASC"}
    (tasks,) = _query(ctx, [("POST", "/task_runs/filter", body)])
    if not tasks:
        click.echo("No task runs.")
        return
    _table("Task runs", ["ID", "Name", "State", "Runs", "Started", "Ended"],
           [[t["id"], t["name"], t["state_name"] or t["state_type"], t["run_count"], _when(t["start_time"]),
             _when(t["end_time"])] for t in tasks])
