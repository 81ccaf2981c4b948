"""A Prefect flow that publishes every kind of artifact and uses variables, run against runlog.

    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.compat.artifact_flows

Prints one JSON line: {"flow_run_id": ..., "state": ..., "result": ...}.
"""

from __future__ import annotations

import json
import sys

from prefect import flow, task
from prefect.artifacts import (
    Artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context
from prefect.variables import Variable


@task
def report(rows: list[dict]) -> str:
    """A task's artifacts belong to the task run and its flow run."""
    create_table_artifact(key="compat-table", table=rows, description="rows from a task")
    return str(get_run_context().task_run.id)


@flow(name="compat-artifacts")
def publish() -> dict:
    create_markdown_artifact(key="compat-report", markdown="# first", description="a report")
    create_markdown_artifact(key="compat-report", markdown="# second")
    create_link_artifact(key="compat-link", link="https://example.com/data.csv", link_text="the data")
    create_image_artifact(key="compat-image", image_url="https://example.com/chart.png")
    progress_id = create_progress_artifact(key="compat-progress", progress=0.0)
    update_progress_artifact(progress_id, progress=50.0)
    update_progress_artifact(progress_id, progress=100.0, description="done")
    task_run_id = report([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])

    Variable.set("compat_threshold", {"limit": 10, "tags": ["x"]}, tags=["compat"])
    before = Variable.get("compat_threshold")
    try:
        Variable.set("compat_threshold", 1)
        refused = False
    except ValueError:  # exists and overwrite was not asked for
        refused = True
    Variable.set("compat_threshold", 42, overwrite=True)
    after = Variable.get("compat_threshold")
    missing = Variable.get("compat_missing", default="fallback")
    Variable.set("compat_doomed", "x")
    Variable.unset("compat_doomed")
    latest_report = Artifact.get("compat-report")
    return {
        "progress_id": str(progress_id),
        "task_run_id": task_run_id,
        "before": before,
        "refused_without_overwrite": refused,
        "after": after,
        "missing": missing,
        "doomed_gone": Variable.get("compat_doomed") is None,
        "latest_report": latest_report.data if latest_report else None,
    }


def main() -> int:
    state = publish(return_state=True)
    result = state.result() if state.is_completed() else None
    print(json.dumps({
        "flow_run_id": str(state.state_details.flow_run_id), "state": state.type.value, "result": result,
        "message": state.message,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
