"""The status rules of work pools, queues and workers, as pure functions of what was recorded
and "now" (Prefect 3.8's: prefect/server/services/foreman.py and schemas/responses.py).

* A worker is ONLINE while its last heartbeat is younger than three of its heartbeat intervals
  (30 s when it gave none), OFFLINE after.
* A queue is PAUSED when paused, READY when polled within the last 60 s, NOT_READY otherwise.
* A deployment is READY when it or its queue was polled within the last 60 s, NOT_READY otherwise.
* A pool is PAUSED when paused, READY when any of its workers is ONLINE, NOT_READY otherwise;
  pools of type ``prefect-agent`` have no status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from runlog.projections.work_pools import NOT_READY, OFFLINE, ONLINE, PAUSED, READY, WorkerView

DEFAULT_HEARTBEAT_INTERVAL_SECONDS = 30
INACTIVITY_HEARTBEAT_MULTIPLE = 3
QUEUE_POLL_HORIZON = timedelta(seconds=60)
"""Prefect's WorkQueueHealthPolicy.maximum_seconds_since_last_polled, and the foreman's horizon."""
AGENT_POOL_TYPE = "prefect-agent"


def worker_status(last_heartbeat: datetime, interval_seconds: int | None, now: datetime) -> str:
    interval = interval_seconds or DEFAULT_HEARTBEAT_INTERVAL_SECONDS
    horizon = now - timedelta(seconds=interval * INACTIVITY_HEARTBEAT_MULTIPLE)
    return ONLINE if last_heartbeat > horizon else OFFLINE


def worker_view_status(worker: WorkerView, now: datetime) -> str:
    return worker_status(worker.last_heartbeat_time, worker.heartbeat_interval_seconds, now)


def queue_status(is_paused: bool, last_polled: datetime | None, now: datetime) -> str:
    if is_paused:
        return PAUSED
    if last_polled is not None and last_polled >= now - QUEUE_POLL_HORIZON:
        return READY
    return NOT_READY


def pool_status(pool_type: str, is_paused: bool, worker_statuses: Iterable[str]) -> str | None:
    if pool_type == AGENT_POOL_TYPE:
        return None
    if is_paused:
        return PAUSED
    return READY if any(status == ONLINE for status in worker_statuses) else NOT_READY


def deployment_status(last_polled: Sequence[datetime | None], now: datetime) -> str:
    """A deployment is READY while it or its queue was polled within the last 60 s (Prefect's
    deployment_last_polled_timeout_seconds), NOT_READY otherwise."""
    polled = [t for t in last_polled if t is not None]
    return READY if polled and max(polled) >= now - QUEUE_POLL_HORIZON else NOT_READY


def queue_healthy(late_runs: int, last_polled: datetime | None, now: datetime) -> bool:
    """Prefect's fixed health policy of GET /work_queues/{id}/status: no late runs, polled
    within the last 60 s."""
    return late_runs <= 0 and last_polled is not None and last_polled >= now - QUEUE_POLL_HORIZON


__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL_SECONDS", "INACTIVITY_HEARTBEAT_MULTIPLE", "QUEUE_POLL_HORIZON", "deployment_status",
    "pool_status",
    "queue_healthy", "queue_status", "worker_status", "worker_view_status",
]
