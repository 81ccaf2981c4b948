"""Deploying the local flow of worker_source/ to a process work pool through the stock client:

    PREFECT_API_URL=... python -m tests.compat.worker_scripts deploy POOL
    PREFECT_API_URL=... python -m tests.compat.worker_scripts run NAME X [WAIT]
    PREFECT_API_URL=... python -m tests.compat.worker_scripts events PREFIX

``deploy`` is ``flow.from_source(<local directory>, entrypoint).deploy(...)`` with parameters and
tags; ``run`` is ``run_deployment(..., timeout=0)``; ``events`` reads the events whose name
starts with PREFIX, oldest first, through the client's ``read_events`` (so Prefect's own models
parse them). Each prints one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow
from prefect.deployments import run_deployment

SOURCE = Path(__file__).parent / "worker_source"


def deploy(pool: str) -> dict:
    worked = flow.from_source(source=str(SOURCE), entrypoint="worked.py:worked")
    deployment_id = worked.deploy(
        name="by-worker", work_pool_name=pool, parameters={"x": 1}, tags=["compat", "worker"], print_next_steps=False,
    )
    return {"id": str(deployment_id)}


def run(name: str, x: str, wait: str = "0") -> dict:
    created = run_deployment(name, parameters={"x": int(x), "wait": float(wait)}, timeout=0)
    return {"id": str(created.id), "state": created.state.type.value}


def events(prefix: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOrder

    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(event=EventNameFilter(prefix=[prefix]), order=EventOrder.ASC), limit=50)
    return {"events": [event.model_dump(mode="json") for event in page.events]}


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    print(json.dumps({"deploy": deploy, "run": run, "events": events}[scenario](*args)))
