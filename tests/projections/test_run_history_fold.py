"""run_history folds a flow run's history fields exactly as the runs projection's own fold
makes them, page by page; table-driven, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from runlog.eventstore import RecordedEvent
from runlog.projections.run_history import FLOW_RUN, Member, _member, fold_runs
from runlog.projections.runs import evolve_flow_run
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.events import FlowRunCreated, FlowRunDeleted, FlowRunStateChanged, State, StateDetails, StateType

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def state(type_: StateType, seconds: float, name: str | None = None, **details) -> State:
    return State(id=uuid4(), type=type_, name=name or type_.value.title(), timestamp=T0 + timedelta(seconds=seconds),
                 state_details=StateDetails(**details))


def records(run: UUID, events: list[catalogue.Event], first_version: int = 1) -> list[RecordedEvent]:
    return [
        RecordedEvent(100 + version, streams.flow_run(run), version, uuid4(), catalogue.event_type(event),
                      catalogue.encode(event), T0)
        for version, event in enumerate(events, start=first_version)
    ]


def by_the_runs_fold(log: list[RecordedEvent]) -> Member | None:
    view = None
    for record in log:
        view = evolve_flow_run(view, catalogue.decode(record.data), record.version)
    return _member(view)


RETRIED = [
    state(StateType.SCHEDULED, 0, scheduled_time=T0 + timedelta(seconds=30)),
    state(StateType.PENDING, 40), state(StateType.RUNNING, 45), state(StateType.FAILED, 50),
    state(StateType.SCHEDULED, 51, "AwaitingRetry", scheduled_time=T0 + timedelta(seconds=60)),
    state(StateType.RUNNING, 61, "Retrying"), state(StateType.COMPLETED, 70),
]
CASES = {
    "created only": [],
    "pending, running, completed": [state(StateType.PENDING, 1), state(StateType.RUNNING, 2), state(StateType.COMPLETED, 5)],
    "scheduled, late, retried": RETRIED,
    "completed, then running again": [state(StateType.RUNNING, 1), state(StateType.COMPLETED, 2), state(StateType.RUNNING, 9)],
    "cancelled while scheduled": [state(StateType.SCHEDULED, 0, scheduled_time=T0), state(StateType.CANCELLED, 3)],
    "paused and resumed": [state(StateType.RUNNING, 1), state(StateType.PAUSED, 2), state(StateType.RUNNING, 8)],
}


@pytest.mark.parametrize("split", [None, 1, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_a_flow_runs_part_in_the_history_is_the_runs_folds(case, split):
    """Folded whole, or in two pages (the second starting from the first's Member, as the
    projection reads it back), the history's fields equal the runs projection's."""
    run = uuid4()
    log = records(run, [FlowRunCreated(flow_run_id=run, flow_id=uuid4(), name="r", created=T0, parameters={"x": 1})]
                  + [FlowRunStateChanged(flow_run_id=run, state=s) for s in CASES[case]])
    key = str(run)
    if split is None or split >= len(log):
        folded = fold_runs(FLOW_RUN, {}, log)
    else:
        first = fold_runs(FLOW_RUN, {}, log[:split])
        before = {key: first[key]} if first[key] is not None else {}
        folded = fold_runs(FLOW_RUN, before, log[split:])  # type: ignore[arg-type]
    assert folded[key] == by_the_runs_fold(log)


def test_a_deleted_flow_run_leaves_the_history():
    run = uuid4()
    log = records(run, [FlowRunCreated(flow_run_id=run, flow_id=uuid4(), name="r", created=T0),
                        FlowRunStateChanged(flow_run_id=run, state=state(StateType.COMPLETED, 1)),
                        FlowRunDeleted(flow_run_id=run)])
    assert fold_runs(FLOW_RUN, {}, log) == {str(run): None}
