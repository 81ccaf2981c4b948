"""Deploying the local flow of worker_source/ to a process work pool through the stock client:

    PREFECT_API_URL=... python -m tests.compat.worker_scripts deploy POOL
    PREFECT_API_URL=... python -m tests.compat.worker_scripts run NAME X [WAIT]

``deploy`` is ``flow.from_source(<local directory>, entrypoint).deploy(...)`` with parameters and
tags; ``run`` is ``run_deployment(..., timeout=0)``. Each prints one JSON line.
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


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    print(json.dumps({"deploy": deploy, "run": run}[scenario](*args)))
