"""The flow the stock process worker runs in tests/compat/test_worker.py, loaded from this
directory by its entrypoint (``worked.py:worked``), as a deployment of local code is."""

import time

from prefect import flow, get_run_logger


@flow(name="compat-worked")
def worked(x: int, wait: float = 0.0) -> int:
    get_run_logger().info("worked got x=%s", x)
    time.sleep(wait)
    return x * 2
