"""Stream names: part of the log's contract, defined once, beside the event catalogue.

Every event is appended to one stream; a stream's name says what it is about. The prefixes
below are stored in every database and read back by projections (which entity a stream
holds), so, like event tags, they never change.
"""

from __future__ import annotations

from uuid import UUID

from .ids import id_text

FLOW = "flow-"
FLOW_RUN = "flow-run-"
TASK_RUN = "task-run-"
CONCURRENCY_LIMIT = "concurrency-limit-"
ARTIFACT = "artifact-"
AUTOMATION = "automation-"
"""One stream per automation: names need not be unique (as in Prefect), so nothing spans them."""
VARIABLES = "variables"
"""The one stream of every variable: names are unique, so creations meet there."""
SAVED_SEARCHES = "saved_searches"
"""The one stream of every saved search of the web UI: names are unique, and there are few."""
BLOCKS = "blocks"
"""The one stream of every block type, schema and document: slugs, checksums and document names
are unique, and deleting a type takes its schemas and documents with it, so every block write
is decided against all of them."""
DEPLOYMENT = "deployment-"
"""One stream per deployment, holding its schedules too; its id is derived from its flow and
name (commands/deployments.py), so re-creating one (Prefect's upsert) meets on the same stream."""
RUN_INPUT = "run-input-"
"""A flow run's inputs (pause_flow_run(wait_for_input=...)), one stream per run: keys are
unique per run, so creations meet there. Not under "flow-run-", which names runs' own streams."""
WORK_POOLS = "work-pools"
"""The one stream of every work pool and work queue, and of their status changes: pool names,
and queue names within a pool, are unique; a status changes once (see commands/work_pools.py)."""
WORKER = "worker-"
"""One stream per worker (pool id and name): its heartbeats and its status changes."""
RUNNER_POLLS = "runner-polls-"
"""One stream per deployment: a runner's (``flow.serve()``) polls of it, facts that need no
decision, kept off the deployment's stream so that its history stays its settings'."""
WORK_POOL_POLLS = "work-pool-polls-"
"""One stream per pool: the polls of get_scheduled_flow_runs, facts that need no decision."""
RESOURCE = "resource-"
"""Client events (POST /events, the /events/in websocket), one stream per Prefect resource."""
UNKNOWN_RESOURCE = "resource-unknown"
DELIVERY = "delivery-"
"""The notifier's deliveries, one stream each, so that scheduling one never waits on another."""
TRIGGERED_ACTION = "triggered-action-"
"""One stream per action of an automation's firing (its id is the delivery id the action would
have): the action's Prefect events, the first of which claims the action (see
commands/automation_runs.py). Not under "automation-", which names automations' own streams."""


def flow(flow_id: UUID | str) -> str:
    return FLOW + id_text(flow_id)


def flow_run(run_id: UUID | str) -> str:
    return FLOW_RUN + id_text(run_id)


def run_input(flow_run_id: UUID | str) -> str:
    return RUN_INPUT + id_text(flow_run_id)


def task_run(run_id: UUID | str) -> str:
    return TASK_RUN + id_text(run_id)


def concurrency_limit(limit_id: UUID | str) -> str:
    return CONCURRENCY_LIMIT + id_text(limit_id)


def automation(automation_id: UUID | str) -> str:
    return AUTOMATION + id_text(automation_id)


def artifact(artifact_id: UUID | str) -> str:
    return ARTIFACT + id_text(artifact_id)


def deployment(deployment_id: UUID | str) -> str:
    return DEPLOYMENT + id_text(deployment_id)


def delivery(delivery_id: UUID | str) -> str:
    return DELIVERY + id_text(delivery_id)


def worker(work_pool_id: UUID | str, name: str) -> str:
    return f"{WORKER}{work_pool_id}-{name}"


def runner_polls(deployment_id: UUID | str) -> str:
    return RUNNER_POLLS + id_text(deployment_id)


def work_pool_polls(work_pool_id: UUID | str) -> str:
    return WORK_POOL_POLLS + id_text(work_pool_id)


def triggered_action(invocation_id: UUID | str) -> str:
    return TRIGGERED_ACTION + id_text(invocation_id)


__all__ = [
    "ARTIFACT", "AUTOMATION", "BLOCKS", "CONCURRENCY_LIMIT", "DELIVERY", "DEPLOYMENT", "FLOW", "FLOW_RUN", "RESOURCE",
    "RUNNER_POLLS", "RUN_INPUT", "TASK_RUN", "TRIGGERED_ACTION", "UNKNOWN_RESOURCE", "VARIABLES", "WORKER", "WORK_POOLS", "WORK_POOL_POLLS",
    "artifact", "automation", "concurrency_limit", "delivery", "deployment", "flow", "flow_run", "runner_polls", "task_run",
    "triggered_action", "work_pool_polls", "worker",
]
