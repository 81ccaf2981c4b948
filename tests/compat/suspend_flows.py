"""A deployment run that suspends until it is resumed with input, served by the stock runner:

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.suspend_flows serve

serves the flow ``compat-suspends`` as the deployment "suspends" until stopped. A run suspends
(its process ends), and once resumed with an Approval the runner runs it again and it returns
what it was given.
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput


class Approval(RunInput):
    approver: str
    amount: int


@flow(name="compat-suspends", persist_result=True)
def suspends() -> dict:
    approval = suspend_flow_run(wait_for_input=Approval, timeout=300)
    get_run_logger().info("approved by %s for %s", approval.approver, approval.amount)
    return {"approver": approval.approver, "amount": approval.amount}


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        suspends.serve(name="suspends")
