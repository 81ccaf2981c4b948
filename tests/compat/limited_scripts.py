"""A deployment with a concurrency limit of 1 served by the stock runner:

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.limited_scripts serve

serves the flow ``compat-limited`` as the deployment "limited" (``global_limit=1``) until
stopped. Each run sleeps long enough that two runs started together would overlap.
"""

from __future__ import annotations

import sys
import time

from prefect import flow


@flow(name="compat-limited")
def limited(seconds: float = 3.0) -> float:
    time.sleep(seconds)
    return seconds


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        limited.serve(name="limited", global_limit=1)
