"""``runlog deployment ls/inspect/run``, ``runlog work-pool ls/inspect`` and ``runlog worker ls``:
deployments, work pools and workers as readable tables (status, last heartbeat or poll, late
runs), over HTTP to RUNLOG_API_URL or in-process, like the run commands (api/commands/runs.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

import click

from ..client import ApiClient
from ..errors import RunlogError
from .runs import at_option, at_query, _shown_plainly, _table, _wide_and_output, _when, _with_client, short_ids


def _late_filter(**scope: Any) -> dict[str, Any]:
    """A /flow_runs/count body: the Late runs in ``scope`` (a deployment or a pool filter)."""
    return {**scope, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}, "name": {"any_": ["Late"]}}}}


def _ago(when: str | None) -> str:
    """How long ago WHEN was, for a person reading a table ("12s ago"); "never" when it was not."""
    if not when:
        return "never"
    seconds = max(0, int((datetime.now(UTC) - datetime.fromisoformat(when.replace("Z", "+00:00"))).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _q(name: str) -> str:
    return quote(name, safe="")


async def find_deployment(client: ApiClient, text: str) -> dict[str, Any]:
    """The deployment named FLOW/DEPLOYMENT, or of that id; a clear error when there is none."""
    try:
        path = f"/deployments/{UUID(text)}"
    except ValueError:
        flow, sep, name = text.partition("/")
        if not sep or not flow or not name:
            raise RunlogError(f"give a deployment as FLOW_NAME/DEPLOYMENT_NAME or its id, not {text!r}") from None
        path = f"/deployments/name/{_q(flow)}/{_q(name)}"
    found = await client.find(path)
    if found is None:
        raise RunlogError(f"no deployment {text!r}")
    return found


async def find_pool(client: ApiClient, name: str) -> dict[str, Any]:
    found = await client.find(f"/work_pools/{_q(name)}")
    if found is None:
        raise RunlogError(f"no work pool named {name!r}")
    return found


# --- deployment ---------------------------------------------------------------------------------

@click.group(name="deployment")
def deployment_group() -> None:
    """Deployments."""


@deployment_group.command(name="ls")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@_wide_and_output
@click.pass_context
def deployment_ls(ctx: click.Context, limit: int, wide: bool, output: str) -> None:
    """List deployments: their pool and queue, status, schedules and late runs."""

    async def work(client: ApiClient) -> tuple[list[Any], dict[str, str], list[int]]:
        deployments = await client.call("POST", "/deployments/filter", {"limit": limit, "sort": "NAME_ASC"})
        flow_ids = list({d["flow_id"] for d in deployments})
        flows = await client.call("POST", "/flows/filter", {"flows": {"id": {"any_": flow_ids}}}) if flow_ids else []
        late = [
            await client.call("POST", "/flow_runs/count", _late_filter(deployments={"id": {"any_": [d["id"]]}}))
            for d in deployments
        ]
        return deployments, {f["id"]: f["name"] for f in flows}, late

    deployments, flows, late = _with_client(ctx, work)
    if _shown_plainly(deployments, output, "No deployments."):
        return
    ids = short_ids((d["id"] for d in deployments), wide)
    _table(
        "Deployments", ["ID", "Name", "Pool/queue", "Status", "Schedules", "Late", "Polled"],
        [[ids[d["id"]], f"{flows.get(d['flow_id'], d['flow_id'])}/{d['name']}", _pool_and_queue(d),
          "PAUSED" if d["paused"] else d["status"], _schedules(d), late_count, _ago(d["last_polled"])]
         for d, late_count in zip(deployments, late)],
        wide=wide,
    )


def _pool_and_queue(deployment: dict[str, Any]) -> str:
    if not deployment.get("work_pool_name"):
        return ""
    return f"{deployment['work_pool_name']}/{deployment.get('work_queue_name') or 'default'}"


def _schedules(deployment: dict[str, Any]) -> str:
    schedules = deployment.get("schedules") or []
    active = sum(1 for s in schedules if s.get("active"))
    return f"{active} of {len(schedules)} on" if schedules else "none"


def _describe_schedule(schedule: dict[str, Any]) -> str:
    shape = schedule.get("schedule") or {}
    for key in ("interval", "cron", "rrule"):
        if shape.get(key) is not None:
            return f"{key} {shape[key]}"
    return json.dumps(shape)


@deployment_group.command(name="inspect")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def deployment_inspect(ctx: click.Context, name: str, output: str) -> None:
    """Show one deployment (NAME is FLOW_NAME/DEPLOYMENT_NAME or its id), its schedules and late runs."""

    async def work(client: ApiClient) -> tuple[dict[str, Any], int]:
        deployment = await find_deployment(client, name)
        late = await client.call("POST", "/flow_runs/count", _late_filter(deployments={"id": {"any_": [deployment["id"]]}}))
        return deployment, late

    deployment, late = _with_client(ctx, work)
    if output == "json":
        click.echo(json.dumps(deployment, indent=2))
        return
    shown = {
        "id": deployment["id"], "name": deployment["name"], "flow_id": deployment["flow_id"],
        "status": deployment["status"], "paused": deployment["paused"], "work pool": deployment["work_pool_name"],
        "work queue": deployment["work_queue_name"], "last polled": _when(deployment["last_polled"]),
        "late runs": late, "parameters": json.dumps(deployment["parameters"]), "tags": ", ".join(deployment["tags"]),
        "entrypoint": deployment["entrypoint"], "path": deployment["path"], "version": deployment["version"],
        "concurrency limit": deployment["concurrency_limit"],
    }
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        click.echo(f"{key.ljust(width)}  {'' if value is None else value}")
    if deployment["schedules"]:
        _table("Schedules", ["Schedule", "Active", "Slug"],
               [[_describe_schedule(s), s["active"], s.get("slug")] for s in deployment["schedules"]])


def _parameter(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="-p/--param")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value  # not JSON: the text itself, as prefect deployment run takes it


@deployment_group.command(name="run")
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True,
              help="A parameter as KEY=VALUE (VALUE read as JSON when it is JSON); repeatable.")
@click.option("--tag", "tags", multiple=True, help="A tag for the run; repeatable.")
@click.pass_context
def deployment_run(ctx: click.Context, name: str, params: tuple[str, ...], tags: tuple[str, ...]) -> None:
    """Create a flow run of a deployment (NAME is FLOW_NAME/DEPLOYMENT_NAME or its id), Scheduled
    now for a worker or ``flow.serve()`` to pick up."""
    parameters = dict(_parameter(p) for p in params)

    async def work(client: ApiClient) -> dict[str, Any]:
        deployment = await find_deployment(client, name)
        return await client.call("POST", f"/deployments/{deployment['id']}/create_flow_run",
                                 {"parameters": parameters, "tags": list(tags)})

    run = _with_client(ctx, work)
    queue = f" in {run['work_pool_name']} / {run['work_queue_name']}" if run.get("work_pool_name") else ""
    click.echo(f"Created flow run {run['name']} ({run['id']}): {run['state_name']}{queue}.")


# --- work-pool and worker -----------------------------------------------------------------------

@click.group(name="work-pool")
def work_pool_group() -> None:
    """Work pools."""


async def _pool_details(client: ApiClient, pool: dict[str, Any]) -> dict[str, Any]:
    name = _q(pool["name"])
    workers = await client.call("POST", f"/work_pools/{name}/workers/filter", {})
    late = await client.call("POST", "/flow_runs/count", _late_filter(work_pools={"name": {"any_": [pool["name"]]}}))
    return {"pool": pool, "workers": workers, "late": late}


@work_pool_group.command(name="ls")
@_wide_and_output
@click.pass_context
def work_pool_ls(ctx: click.Context, wide: bool, output: str) -> None:
    """List work pools: type, status, workers online, late runs."""

    async def work(client: ApiClient) -> list[dict[str, Any]]:
        pools = await client.call("POST", "/work_pools/filter", {})
        return [await _pool_details(client, pool) for pool in pools]

    details = _with_client(ctx, work)
    if _shown_plainly([d["pool"] for d in details], output, "No work pools."):
        return
    ids = short_ids((d["pool"]["id"] for d in details), wide)
    _table(
        "Work pools", ["ID", "Name", "Type", "Status", "Online", "Late runs", "Concurrency"],
        [[ids[d["pool"]["id"]], d["pool"]["name"], d["pool"]["type"], d["pool"]["status"],
          f"{sum(w['status'] == 'ONLINE' for w in d['workers'])} of {len(d['workers'])}", d["late"],
          d["pool"]["concurrency_limit"] if d["pool"]["concurrency_limit"] is not None else "none"]
         for d in details],
        wide=wide,
    )


@work_pool_group.command(name="inspect")
@click.argument("name")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@at_option
@click.pass_context
def work_pool_inspect(ctx: click.Context, name: str, output: str, at: str | None) -> None:
    """Show one work pool, its queues and its workers.

    With --at, as they were then, folded from the log up to that position (late runs are not
    shown for a past moment).
    """

    async def work(client: ApiClient) -> dict[str, Any]:
        if at is not None:
            then = await client.call("GET", f"/work_pools/{_q(name)}{at_query(at)}")
            return {"pool": then, "queues": then.pop("queues"), "workers": then.pop("workers"), "late": None}
        details = await _pool_details(client, await find_pool(client, name))
        details["queues"] = await client.call("POST", f"/work_pools/{_q(name)}/queues/filter", {})
        return details

    details = _with_client(ctx, work)
    pool = details["pool"]
    if output == "json":
        click.echo(json.dumps(pool, indent=2))
        return
    if at is not None:
        click.echo(f"As at {at}:")
    shown = {
        "id": pool["id"], "name": pool["name"], "type": pool["type"], "status": pool["status"],
        "paused": pool["is_paused"], "concurrency limit": pool["concurrency_limit"],
        **({"late runs": details["late"]} if details["late"] is not None else {}),
        "description": pool["description"],
    }
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        click.echo(f"{key.ljust(width)}  {'' if value is None else value}")
    _table("Queues", ["Name", "Priority", "Status", "Concurrency", "Polled"],
           [[q["name"], q["priority"], q["status"], q["concurrency_limit"] if q["concurrency_limit"] is not None
             else "none", _ago(q["last_polled"])] for q in details["queues"]])
    _worker_table(details["workers"])


def _worker_table(workers: list[dict[str, Any]]) -> None:
    if not workers:
        click.echo("No workers.")
        return
    _table("Workers", ["Name", "Status", "Last heartbeat", "Every"],
           [[w["name"], w["status"], _ago(w["last_heartbeat_time"]),
             f"{w['heartbeat_interval_seconds']} s" if w.get("heartbeat_interval_seconds") else ""] for w in workers])


@click.group(name="worker")
def worker_group() -> None:
    """Workers."""


@worker_group.command(name="ls")
@click.option("--pool", "pool_name", required=True, help="The work pool whose workers to list.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def worker_ls(ctx: click.Context, pool_name: str, output: str) -> None:
    """List the workers of a work pool: status and last heartbeat."""

    async def work(client: ApiClient) -> list[Any]:
        await find_pool(client, pool_name)
        return await client.call("POST", f"/work_pools/{_q(pool_name)}/workers/filter", {})

    workers = _with_client(ctx, work)
    if output == "json":
        click.echo(json.dumps(workers, indent=2))
        return
    _worker_table(workers)


groups = (deployment_group, work_pool_group, worker_group)
