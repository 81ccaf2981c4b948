"""Listing deployments from the deployments projection, with Prefect's DeploymentFilter and the
flow, flow run, task run, work pool and work queue filters related to it; evaluated in SQL. One
deployment is read by the projection (projections/deployments.py), which commands share."""

from __future__ import annotations

from runlog.projections.deployments import decode_deployment, get, get_by_name

from .filtering import FALSE, Cond, Criteria, Listing, Related, Resource, Sql, Unknown, any_in, combine, views_of
from .run_filters import DEPLOYMENT, FLOW, FLOW_RUN, TASK_RUN

# Ties fall back to the id, so that pages never overlap.
ORDER = {
    "CREATED_DESC": "d.created DESC, d.id DESC",
    "UPDATED_DESC": "d.updated DESC, d.id DESC",
    "NAME_ASC": "d.name ASC, d.id DESC",
    "NAME_DESC": "d.name DESC, d.id DESC",
}


def _starts_with(d: Sql, expr: str, prefixes: list[str] | None) -> Cond | None:
    """startswith_: the name starts with one of the prefixes (their % and _ taken literally)."""
    if prefixes is None:
        return None
    escaped = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in prefixes]
    return combine([(f"{expr} LIKE ? ESCAPE '\\'", (prefix,)) for prefix in escaped], "or_") if escaped else FALSE


# A deployment names its pool and queue (strings, as given): those filters match the names;
# what runlog does not link yet (a pool's id or type, a queue's id) matches nothing.
WORK_POOL_OF_DEPLOYMENT = Resource({
    "id": Unknown(), "type": Unknown(), "name": Criteria("d.work_pool_name", {"any_": any_in}),
})
WORK_QUEUE_OF_DEPLOYMENT = Resource({
    "id": Unknown(), "name": Criteria("d.work_queue_name", {"any_": any_in, "startswith_": _starts_with}),
})

DEPLOYMENT_QUERY = Resource({
    "deployments": DEPLOYMENT,
    "flows": Related("EXISTS (SELECT 1 FROM flows f WHERE f.id = d.flow_id AND {where})", FLOW),
    "flow_runs": Related("EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.deployment_id = d.id AND {where})", FLOW_RUN),
    "task_runs": Related(
        "EXISTS (SELECT 1 FROM flow_runs fr JOIN task_runs tr ON tr.flow_run_id = fr.id "
        "WHERE fr.deployment_id = d.id AND {where})", TASK_RUN,
    ),
    "work_pools": WORK_POOL_OF_DEPLOYMENT,
    "work_pool_queues": WORK_QUEUE_OF_DEPLOYMENT,
})

DEPLOYMENTS = Listing("deployments d", "d.view", DEPLOYMENT_QUERY, ORDER, views_of(decode_deployment))


__all__ = ["DEPLOYMENTS", "get", "get_by_name"]
