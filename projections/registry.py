"""The registry of projections: every read model the server keeps, inline (in the append's
transaction) or asynchronous (from a checkpoint), in the lists that the server, the CLI,
`projections ls/rebuild/verify` and tests share; each with its name, kind and version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runlog.eventstore import EventStore, InlineProjection, Table

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


@dataclass(frozen=True)
class Spec:
    """One projection as `projections ls` and a rebuild see it."""

    name: str
    kind: Literal["inline", "async"]
    version: int
    tables: tuple[Table, ...]
    projection: Any


def projection_specs(store: EventStore) -> list[Spec]:
    """Every projection, inline ones first (fresh instances: no view cache)."""
    specs = [Spec(p.name, "inline", p.version, p.tables, p) for p in inline_projections()]  # type: ignore[attr-defined]
    specs += [Spec(p.name, "async", p.version, p.tables, p) for p in async_projections(store)]  # type: ignore[attr-defined]
    return specs


__all__ = ["Spec", "async_projections", "inline_projections", "projection_specs"]
