"""A Prefect flow that pauses until it is resumed with input, run against runlog.

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.input_flows

Prints one JSON line: {"flow_run_id": ..., "state": ..., "result": ...}.
"""

from __future__ import annotations

import json
import sys

from prefect import flow
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Approval(RunInput):
    approver: str
    amount: int


@flow(name="compat-waits-for-input")
def waits_for_approval() -> dict:
    approval = pause_flow_run(wait_for_input=Approval, timeout=120, poll_interval=1)
    return {"approver": approval.approver, "amount": approval.amount}


def main() -> None:
    state = waits_for_approval(return_state=True)
    run_id = state.state_details.flow_run_id
    result = state.result(raise_on_failure=False) if state.is_completed() else None
    print(json.dumps({"flow_run_id": str(run_id), "state": state.type.value,
                      "result": result if isinstance(result, dict) else repr(result)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
