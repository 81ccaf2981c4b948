"""Deployments through the stock Prefect client, one scenario per command word:

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.deployment_scripts SCENARIO [ARG]

Prints one JSON line with what the scenario saw (or fails with exit status 1). ``serve`` does
not return: it serves the flow ``compat-served`` as the deployment "served" until stopped.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound


@flow(name="compat-served")
def served(x: int, greeting: str = "hello") -> str:
    get_run_logger().info("served got x=%s greeting=%s", x, greeting)
    return f"{greeting} {x * 2}"


def apply() -> dict:
    """``flow.to_deployment(...).apply()`` twice: the second is Prefect's upsert."""
    deployment = served.to_deployment(
        name="applied", parameters={"x": 1}, tags=["compat"], description="first", version="1",
        interval=timedelta(hours=1),
    )
    first = deployment.apply()
    deployment.description = "second"
    second = deployment.apply()

    async def read() -> dict:
        async with get_client() as client:
            by_name = await client.read_deployment_by_name("compat-served/applied")
            return {
                "first": str(first), "second": str(second), "id": str(by_name.id),
                "description": by_name.description, "parameters": by_name.parameters, "tags": by_name.tags,
                "schedules": [s.schedule.model_dump(mode="json") for s in by_name.schedules],
                "enforce": by_name.enforce_parameter_schema,
                "schema_required": (by_name.parameter_openapi_schema or {}).get("required"),
            }

    return asyncio.run(read())


def run(name: str) -> dict:
    """``run_deployment(..., timeout=0)``: a run is created, Scheduled, and not waited for."""
    created = run_deployment(name, parameters={"x": 21}, timeout=0, tags=["adhoc"])
    return {"id": str(created.id), "parameters": created.parameters, "state": created.state.type.value,
            "deployment_id": str(created.deployment_id), "tags": sorted(created.tags)}


def refused(name: str) -> dict:
    """A parameter the deployment's schema refuses: the client sees the server's refusal."""
    try:
        run_deployment(name, parameters={"x": "not a number"}, timeout=0)
    except Exception as exc:  # noqa: BLE001 - reported, whatever it is
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return {"refused": True, "status": status, "error": str(exc)}
    return {"refused": False}


def schedules(name: str) -> dict:
    """Schedules CRUD through the client: create, update (active), delete."""

    async def go() -> dict:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(name)
            created = await client.create_deployment_schedules(deployment.id, [
                (CronSchedule(cron="0 6 * * *", timezone="UTC"), True),
            ])
            (schedule,) = created
            await client.update_deployment_schedule(deployment.id, schedule.id, active=False)
            listed = await client.read_deployment_schedules(deployment.id)
            after_update = [{"id": str(s.id), "active": s.active, "cron": getattr(s.schedule, "cron", None)}
                            for s in listed]
            await client.delete_deployment_schedule(deployment.id, schedule.id)
            remaining = await client.read_deployment_schedules(deployment.id)
            await client.pause_deployment(deployment.id)
            paused = (await client.read_deployment(deployment.id)).paused
            await client.resume_deployment(deployment.id)
            resumed = (await client.read_deployment(deployment.id)).paused
            await client.delete_deployment(deployment.id)
            try:
                await client.read_deployment(deployment.id)
                gone = False
            except ObjectNotFound:
                gone = True
            return {"created": str(schedule.id), "after_update": after_update,
                    "remaining": [str(s.id) for s in remaining], "paused": paused, "resumed": resumed, "gone": gone}

    return asyncio.run(go())


def client_create() -> dict:
    """``client.create_deployment`` with an interval schedule, read back by id."""

    async def go() -> dict:
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name="some-pool", type="process"))
            flow_id = await client.create_flow_from_name("compat-client-made")
            deployment_id = await client.create_deployment(
                flow_id=flow_id, name="made", parameters={"a": 1}, work_pool_name="some-pool",
                work_queue_name="some-queue", job_variables={"env": {"A": "1"}},
                schedules=[DeploymentScheduleCreate(schedule=IntervalSchedule(interval=timedelta(minutes=5)))],
            )
            read = await client.read_deployment(deployment_id)
            return {"id": str(deployment_id), "name": read.name, "work_pool_name": read.work_pool_name,
                    "work_queue_name": read.work_queue_name, "work_queue_id": str(read.work_queue_id),
                    "job_variables": read.job_variables,
                    "interval": read.schedules[0].schedule.interval.total_seconds()}

    return asyncio.run(go())


def scheduled() -> dict:
    """A deployment with a 60 s interval schedule: the server's scheduler gives it its runs,
    read back with ``client.read_flow_runs`` (waiting up to a minute for them)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment_id = served.to_deployment(
        name="every-minute", parameters={"x": 5}, tags=["compat"], interval=timedelta(seconds=60),
    ).apply()

    async def read() -> dict:
        async with get_client() as client:
            only = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            for _ in range(240):
                runs = await client.read_flow_runs(deployment_filter=only, limit=200)
                if len(runs) >= 61:
                    break
                await asyncio.sleep(0.25)
            return {
                "id": str(deployment_id), "count": len(runs),
                "times": len({r.next_scheduled_start_time for r in runs}),
                "auto_scheduled": sorted({r.auto_scheduled for r in runs}),
                "states": sorted({f"{r.state_type.value} {r.state_name}" for r in runs}),
                "parameters": [dict(p) for p in {tuple(sorted(r.parameters.items())) for r in runs}],
                "tags": sorted({tuple(r.tags) for r in runs}),
                "created_by": sorted({(r.created_by.type, r.created_by.display_value) for r in runs if r.created_by}),
                "without_creator": sum(1 for r in runs if r.created_by is None),
            }

    return asyncio.run(read())


def templated() -> dict:
    """A deployment named only by its queue (the default agent pool) with a JSON template among
    its parameters; ``create_flow_run_from_deployment`` with a Jinja one, then a bad one."""

    async def go() -> dict:
        async with get_client() as client:
            flow_id = await client.create_flow_from_name("compat-templated")
            deployment_id = await client.create_deployment(
                flow_id=flow_id, name="queued", work_queue_name="legacy",
                parameters={"n": {"__prefect_kind": "json", "value": "[1, 2]"}},
            )
            deployment = await client.read_deployment(deployment_id)
            run = await client.create_flow_run_from_deployment(
                deployment_id, parameters={"label": {"__prefect_kind": "jinja", "template": "run-{{ 6 * 7 }}"}},
            )
            try:
                await client.create_flow_run_from_deployment(
                    deployment_id, parameters={"bad": {"__prefect_kind": "json", "value": "{"}},
                )
                bad = None
            except Exception as exc:  # noqa: BLE001 - reported, whatever it is
                response = getattr(exc, "response", None)
                bad = {"status": getattr(response, "status_code", None),
                       "detail": response.json().get("detail") if response is not None else str(exc)}
            return {
                "work_pool_name": deployment.work_pool_name, "work_queue_name": deployment.work_queue_name,
                "work_queue_id": str(deployment.work_queue_id), "parameters": run.parameters,
                "run_queue_id": str(run.work_queue_id), "run_pool": run.work_pool_name,
                "created_by": run.created_by, "bad": bad,
            }

    return asyncio.run(go())


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    if scenario == "serve":
        served.serve(name="served", parameters={"x": 1}, tags=["served"])
    else:
        outcome = {"apply": apply, "run": run, "refused": refused, "schedules": schedules,
                   "client_create": client_create, "scheduled": scheduled, "templated": templated}[scenario](*args)
        print(json.dumps(outcome))
