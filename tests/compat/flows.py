"""Prefect flows the compatibility tests run against runlog, one scenario per command word.

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.flows SCENARIO

Prints one JSON line: {"flow_run_id": ..., "result": ...} (or the error, with exit status 1).
"""

from __future__ import annotations

import json
import sys
import time

from prefect import flow, get_run_logger, tags, task

ATTEMPTS: dict[str, int] = {}


@task
def ok_task(x: int) -> int:
    get_run_logger().info("ok_task got %s", x)
    return x + 1


@task(retries=1, retry_delay_seconds=1)
def flaky_task(y: int) -> int:
    ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
    get_run_logger().info("flaky attempt %s", ATTEMPTS["flaky"])
    if ATTEMPTS["flaky"] == 1:
        raise ValueError("first attempt fails")
    return y * 2


@flow(name="compat-two-tasks")
def two_tasks(n: int = 3) -> int:
    get_run_logger().info("flow starting with n=%s", n)
    return flaky_task(ok_task(n))


@flow(name="compat-failing", retries=1, retry_delay_seconds=0)
def failing() -> None:
    raise RuntimeError("this flow always fails")


@flow(name="compat-etl")
def tagged_failing() -> None:
    raise ValueError("boom")


def tagged_failing_run() -> object:
    with tags("daily-etl"):
        return tagged_failing(return_state=True)


@flow(name="compat-child")
def child(v: int) -> int:
    return v * 10


@flow(name="compat-parent")
def parent() -> int:
    return child(4)


@task(tags=["compat-limited"])
def limited(i: int) -> int:
    time.sleep(0.5)
    return i


@flow(name="compat-limited")
def limited_flow() -> list[int]:
    futures = [limited.submit(i) for i in range(3)]
    return [f.result() for f in futures]


SCENARIOS = {
    "two_tasks": two_tasks, "failing": failing, "parent": parent, "limited": limited_flow,
    "tagged_failing": tagged_failing_run,
}


def main(name: str) -> int:
    scenario = SCENARIOS[name]
    state = scenario() if name == "tagged_failing" else scenario(return_state=True)
    run_id = state.state_details.flow_run_id
    result = None
    if state.is_completed():
        result = state.result()
    print(json.dumps({"flow_run_id": str(run_id), "state": state.type.value, "result": result}), flush=True)
    return 0


if __name__ == "__main__":
    with tags():
        sys.exit(main(sys.argv[1]))
