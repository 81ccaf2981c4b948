"""The decide-and-append loop every run transition goes through, for flow and task runs alike.

It replaces Prefect's ``SELECT ... FOR UPDATE``: read the run's view and version, decide with
the pure rules, append the decided state with that version as the expected one. A concurrent
writer makes the append fail with ConcurrencyError, and the transition is decided again
against what the other writer wrote, so two transitions are never both accepted from the same
prior state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runlog.eventstore import ConcurrencyError, EventStore
from runlog.projections.cache import ViewCache
from runlog.schema import events as catalogue

from ..orchestration import Decision
from ..writes import append_event

MAX_DECISIONS = 50
"""How often a transition is re-decided after losing a race before giving up with 409."""

V = TypeVar("V")


async def decide_and_append(
    store: EventStore,
    *,
    stream_id: str,
    cache: ViewCache,
    cache_key: str,
    load: Callable[[], Awaitable[V | None]],
    decide: Callable[[V], Awaitable[Decision]],
    record: Callable[[V, Decision], catalogue.Event],
    evolve: Callable[[V, Any, int], V | None],
) -> tuple[V, Decision] | None:
    """The run's view after the transition and the decision; None when the run does not exist."""
    conflict: ConcurrencyError | None = None
    for _attempt in range(MAX_DECISIONS):
        # A cached view may be stale (another process moved the run on): the append's expected
        # version catches that, and the next round reads the database.
        view = cache.get(cache_key) or await load()
        if view is None:
            return None
        decision = await decide(view)
        if decision.state is None:
            return view, decision
        event = record(view, decision)
        try:
            recorded = await append_event(
                store, stream_id, event, expected_version=view.version, event_id=decision.state.id  # type: ignore[attr-defined]
            )
        except ConcurrencyError as exc:
            conflict = exc
            cache.drop(cache_key)
            continue  # another transition landed first: decide again against it
        # The projection ran the same fold in the append's transaction; folding here saves a
        # read on the hot path and gives the identical view. The stored event is folded, not
        # ``event``: decoding normalises what the client sent (a timestamp's zone, say) exactly
        # as the projection saw it, and cached views feed the projection's next fold.
        updated = evolve(view, catalogue.decode(recorded.data), recorded.version)
        assert updated is not None
        cache.put(cache_key, updated)  # committed: the append has returned
        return updated, decision
    # Still losing after MAX_DECISIONS rounds: the run is too busy; the client may retry (409).
    assert conflict is not None
    raise conflict
