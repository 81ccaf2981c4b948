"""A scheduler's path: commands create a flow and a scheduled flow run from domain inputs alone.

Nothing here builds an HTTP body or imports runlog.api; the run is then read back through the
runs projection and moved on by set_state, as a scheduler and a worker would, on both backends.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runlog.commands import flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.flow_runs import NewFlowRun
from runlog.commands.orchestration import ProposedState, Status
from runlog.eventstore import open_store
from runlog.projections import runs_writer
from runlog.projections.registry import inline_projections
from runlog.schema.events import StateDetails, StateType

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_scheduler_creates_a_scheduled_flow_run_with_commands_only(store_url: str) -> None:
    clock = ManualClock(NOW)
    start_at = NOW + timedelta(hours=1)
    async with open_store(store_url, projections=inline_projections()) as store:
        flow, created = await flows.register(store, "nightly-etl", ["etl"], clock=clock)
        assert created and flow.id == flows.flow_id_for("nightly-etl")
        scheduled = ProposedState(
            type=StateType.SCHEDULED, name="Scheduled", state_details=StateDetails(scheduled_time=start_at)
        )
        run, created = await flow_runs.create(
            store,
            NewFlowRun(flow_id=flow.id, state=scheduled, idempotency_key="nightly-etl:2026-05-01", parameters={"day": 1}),
            clock=clock,
        )
        assert created
        # The same key again (a scheduler going round twice) finds the run instead of adding one.
        again, created_again = await flow_runs.create(
            store, NewFlowRun(flow_id=flow.id, idempotency_key="nightly-etl:2026-05-01"), clock=clock
        )
        assert (again.id, created_again) == (run.id, False)

        stored = await runs_writer.get_flow_run(store, run.id)
        assert stored is not None and stored.state is not None
        assert stored.state.type is StateType.SCHEDULED
        assert stored.flow_id == flow.id and stored.parameters == {"day": 1}
        assert stored.next_scheduled_start_time == start_at
        assert stored.labels["prefect.flow.id"] == str(flow.id)
        assert stored.created == NOW

        clock.advance(hours=1)
        outcome = await flow_runs.set_state(store, run.id, ProposedState(type=StateType.PENDING), clock=clock)
        assert outcome is not None and outcome[1].status is Status.ACCEPT
        assert (await runs_writer.get_flow_run(store, run.id)).state.type is StateType.PENDING  # type: ignore[union-attr]


def test_the_commands_load_without_the_api() -> None:
    """Importing every command module, in a fresh interpreter, loads no module of runlog.api."""
    modules = sorted(p.stem for p in Path(flow_runs.__file__).parent.glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module('runlog.commands.' + name)\n"
        "print(sorted(m for m in sys.modules if m == 'runlog.api' or m.startswith('runlog.api.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "flow_runs" in modules and loaded.strip() == "[]"
