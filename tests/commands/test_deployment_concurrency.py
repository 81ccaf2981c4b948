"""Deployment concurrency through the commands, on both backends with a manual clock: slots
taken on PENDING as lease events, released on a final state, ENQUEUE and CANCEL_NEW, the late
rule, and slots surviving a reopened store (a restart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from runlog.commands import concurrency, deployments, flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.deployment_concurrency import limit_name
from runlog.commands.deployments import DeploymentRun
from runlog.commands.late_runs import mark_late_runs
from runlog.commands.orchestration import ProposedState, Status
from runlog.eventstore import open_store
from runlog.projections import runs_writer
from runlog.projections.registry import inline_projections
from runlog.schema.events import State, StateType

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
S = StateType


async def deployment(store, clock, **fields) -> UUID:
    flow, _ = await flows.register(store, "limited-flow", [], clock=clock)
    view, _ = await deployments.upsert(store, flow.id, "limited", fields, [], clock=clock)
    return view.id


async def new_run(store, clock, deployment_id: UUID) -> UUID:
    created = await deployments.create_flow_run(store, deployment_id, DeploymentRun(), clock=clock)
    assert created is not None
    return created[0].id


async def propose(store, clock, run_id: UUID, type_: StateType, name: str | None = None):
    outcome = await flow_runs.set_state(store, run_id, ProposedState(type=type_, name=name), clock=clock)
    assert outcome is not None
    return outcome[1]


async def state_of(store, run_id: UUID) -> State:
    view = await runs_writer.get_flow_run(store, run_id)
    assert view is not None and view.state is not None
    return view.state


async def held(store, deployment_id: UUID, clock) -> int:
    limit = await concurrency.read_limit_by_name(store, limit_name(deployment_id))
    assert limit is not None
    return limit.active_slots(clock())


async def test_enqueue_makes_the_second_run_wait_until_the_first_ends(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1)
        first, second = await new_run(store, clock, dep), await new_run(store, clock, dep)
        clock.advance(1)
        assert (await propose(store, clock, first, S.PENDING)).status is Status.ACCEPT
        lease = (await state_of(store, first)).state_details.deployment_concurrency_lease_id
        assert lease is not None and await held(store, dep, clock) == 1

        decision = await propose(store, clock, second, S.PENDING)
        waiting = await state_of(store, second)
        assert decision.status is Status.REJECT
        assert (waiting.type, waiting.name) == (S.SCHEDULED, "AwaitingConcurrencySlot")
        assert waiting.state_details.scheduled_time == clock() + timedelta(seconds=30)
        assert await held(store, dep, clock) == 1  # the refused attempt took nothing

        clock.advance(1)
        assert (await propose(store, clock, first, S.RUNNING)).status is Status.ACCEPT
        assert (await state_of(store, first)).state_details.deployment_concurrency_lease_id == lease
        clock.advance(1)
        assert (await propose(store, clock, first, S.COMPLETED)).status is Status.ACCEPT
        assert await held(store, dep, clock) == 0

        clock.advance(31)
        assert (await propose(store, clock, second, S.PENDING)).status is Status.ACCEPT
        assert await held(store, dep, clock) == 1


async def test_cancel_new_cancels_the_second_run(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1, concurrency_options={"collision_strategy": "CANCEL_NEW"})
        first, second = await new_run(store, clock, dep), await new_run(store, clock, dep)
        clock.advance(1)
        await propose(store, clock, first, S.PENDING)
        decision = await propose(store, clock, second, S.PENDING)
        cancelled = await state_of(store, second)
        assert decision.status is Status.REJECT and cancelled.type is S.CANCELLED
        assert cancelled.message == "Deployment concurrency limit reached."


async def test_leaving_running_for_paused_or_scheduled_frees_the_slot(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1)
        run = await new_run(store, clock, dep)
        clock.advance(1)
        await propose(store, clock, run, S.PENDING)
        clock.advance(1)
        await propose(store, clock, run, S.RUNNING)
        clock.advance(1)
        assert (await propose(store, clock, run, S.PAUSED)).status is Status.ACCEPT
        assert await held(store, dep, clock) == 0


async def test_a_slot_survives_reopening_the_store(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1)
        first, second = await new_run(store, clock, dep), await new_run(store, clock, dep)
        clock.advance(1)
        await propose(store, clock, first, S.PENDING)
    async with open_store(store_url, projections=inline_projections()) as store:
        assert await held(store, dep, clock) == 1
        assert (await propose(store, clock, second, S.PENDING)).status is Status.REJECT


async def test_deleting_a_pending_run_frees_its_slot(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1)
        run = await new_run(store, clock, dep)
        clock.advance(1)
        await propose(store, clock, run, S.PENDING)
        assert await flow_runs.delete(store, run, clock=clock)
        assert await held(store, dep, clock) == 0


async def test_the_limit_follows_the_deployment(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1)
        assert (await concurrency.read_limit_by_name(store, limit_name(dep))).limit == 1  # type: ignore[union-attr]
        assert await deployments.update(store, dep, {"concurrency_limit": 3}, clock=clock)
        assert (await concurrency.read_limit_by_name(store, limit_name(dep))).limit == 3  # type: ignore[union-attr]
        assert await deployments.update(store, dep, {"concurrency_limit": None}, clock=clock)
        assert await concurrency.read_limit_by_name(store, limit_name(dep)) is None
        run = await new_run(store, clock, dep)
        assert (await propose(store, clock, run, S.PENDING)).status is Status.ACCEPT  # unlimited now


async def test_late_runs_of_a_full_cancel_new_deployment_are_cancelled(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock, concurrency_limit=1, concurrency_options={"collision_strategy": "CANCEL_NEW"})
        first, second = await new_run(store, clock, dep), await new_run(store, clock, dep)
        clock.advance(1)
        await propose(store, clock, first, S.PENDING)
        clock.advance(60)
        await mark_late_runs(store, clock(), after_seconds=15)
        assert (await state_of(store, second)).type is S.CANCELLED


async def test_a_run_without_a_deployment_limit_is_untouched(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        dep = await deployment(store, clock)
        run = await new_run(store, clock, dep)
        await propose(store, clock, run, S.PENDING)
        assert (await state_of(store, run)).state_details.deployment_concurrency_lease_id is None


