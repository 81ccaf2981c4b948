"""The registry of inline projections: every read model the server keeps in the append's
transaction, in one list that the server, the CLI, `projections verify` and tests share."""

from __future__ import annotations

from runlog.eventstore import EventStore, InlineProjection

from .artifacts import ArtifactsProjection
from .automations import AutomationsProjection
from .blocks import BlocksProjection
from .cache import ViewCache
from .checkpoints import AsyncProjection
from .event_feed import EventFeedProjection
from .concurrency import ConcurrencyProjection
from .deliveries import DeliveriesProjection
from .deployments import DeploymentsProjection
from .flow_run_inputs import FlowRunInputsProjection
from .flows import FlowsProjection
from .run_history import RunHistoryProjection
from .runs_writer import RunsProjection
from .task_run_state_cache import TaskRunStateCacheProjection
from .variables import VariablesProjection
from .work_pools import WorkPoolsProjection


def inline_projections(cache: ViewCache | None = None) -> list[InlineProjection]:
    """The read models commands depend on; ``cache`` holds committed run views (runs_writer)."""
    return [
        FlowsProjection(), RunsProjection(cache), ConcurrencyProjection(), TaskRunStateCacheProjection(),
        VariablesProjection(), ArtifactsProjection(), AutomationsProjection(), DeliveriesProjection(), BlocksProjection(),
        DeploymentsProjection(),
        FlowRunInputsProjection(),
        WorkPoolsProjection(),
    ]


def async_projections(store: EventStore) -> list[AsyncProjection]:
    """The read models that follow the log from their own checkpoints (reading ``store``)."""
    return [EventFeedProjection(store), RunHistoryProjection(store)]


__all__ = ["async_projections", "inline_projections"]
