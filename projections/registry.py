"""The registry of inline projections: every read model the server keeps in the append's
transaction, in one list that the server, the CLI, `projections verify` and tests share."""

from __future__ import annotations

from runlog.eventstore import InlineProjection

from .artifacts import ArtifactsProjection
from .blocks import BlocksProjection
from .cache import ViewCache
from .concurrency import ConcurrencyProjection
from .flows import FlowsProjection
from .runs_writer import RunsProjection
from .task_run_state_cache import TaskRunStateCacheProjection
from .variables import VariablesProjection


def inline_projections(cache: ViewCache | None = None) -> list[InlineProjection]:
    """The read models commands depend on; ``cache`` holds committed run views (runs_writer)."""
    return [
        FlowsProjection(), RunsProjection(cache), ConcurrencyProjection(), TaskRunStateCacheProjection(),
        VariablesProjection(), ArtifactsProjection(), BlocksProjection(),
    ]


__all__ = ["inline_projections"]
