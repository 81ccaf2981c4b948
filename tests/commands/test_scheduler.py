"""The scheduler service: one step with a fixed "now", on both backends, and the removal of a
deployment's future runs when it or its schedules change (Prefect's _delete_scheduled_runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from runlog.commands import deployments, flow_runs, flows
from runlog.commands.clock import ManualClock
from runlog.commands.deployments import DeploymentRun, NewSchedule
from runlog.commands.orchestration import ProposedState, Status
from runlog.commands.scheduler import schedule_batch, schedule_deployments, scheduler_service
from runlog.commands.schedules import scheduled_run_id
from runlog.eventstore import open_store
from runlog.projections import deployments as deployment_reads
from runlog.projections import run_sweeps, runs_writer
from runlog.projections.registry import inline_projections
from runlog.projections.runs import FlowRunView
from runlog.schema.events import StateType

NOW = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)
EVERY_MINUTE = {"interval": 60, "anchor_date": NOW.isoformat()}


async def deploy(store, clock, name: str = "every-minute", schedule: dict[str, Any] | None = None, **fields):
    flow, _ = await flows.register(store, "scheduled-flow", [], clock=clock)
    fields = {"parameters": {"a": 1, "b": 2}, "tags": ["nightly"], **fields}
    view, _ = await deployments.upsert(
        store, flow.id, name, fields,
        [NewSchedule(schedule=schedule or EVERY_MINUTE, parameters={"b": 3})], clock=clock,
    )
    return view


async def scheduled_runs(store, deployment_id: UUID) -> list[FlowRunView]:
    runs = await run_sweeps.scheduled_of_deployment(store, deployment_id)
    return sorted(runs, key=lambda r: r.next_scheduled_start_time)


async def test_an_interval_of_60s_gets_prefects_61_runs_over_the_hour_once(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        schedule = deployment.schedules[0]
        assert await schedule_deployments(store, NOW) == 61
        runs = await scheduled_runs(store, deployment.id)
        assert [r.next_scheduled_start_time for r in runs] == [NOW + timedelta(minutes=m) for m in range(61)]
        first = runs[0]
        assert first.auto_scheduled and first.state is not None
        # Prefect's scheduler names the schedule as the run's creator, by slug or else its kind
        assert first.created_by == {"id": str(schedule.id), "type": "SCHEDULE", "display_value": "IntervalSchedule"}
        assert (first.state.type, first.state.name) == (StateType.SCHEDULED, "Scheduled")
        assert first.parameters == {"a": 1, "b": 3}  # the schedule's over the deployment's
        assert first.tags == ["auto-scheduled", "nightly"]
        assert first.labels["prefect.deployment.id"] == str(deployment.id)
        assert first.id == scheduled_run_id(deployment.flow_id, deployment.id, schedule.id, NOW)
        assert first.idempotency_key == f"scheduled {deployment.id} {schedule.id} {NOW.isoformat(' ')}"

        assert await schedule_deployments(store, NOW) == 0  # a second step creates nothing
        assert len(await scheduled_runs(store, deployment.id)) == 61

        # Ten minutes on the horizon is short by ten runs: those, and only those, are added.
        later = NOW + timedelta(minutes=10)
        assert await schedule_deployments(store, later) == 10
        ahead = [r for r in await scheduled_runs(store, deployment.id) if r.next_scheduled_start_time >= later]
        assert len(ahead) == 61


async def test_cron_and_rrule_schedules_get_their_times(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        hourly = await deploy(store, clock, "hourly", {"cron": "0 * * * *", "timezone": "UTC"})
        daily = await deploy(store, clock, "daily", {"rrule": "FREQ=DAILY;BYHOUR=12;BYMINUTE=0", "timezone": "UTC"})
        assert await schedule_deployments(store, NOW) == 6
        hours = [r.next_scheduled_start_time for r in await scheduled_runs(store, hourly.id)]
        assert hours == [NOW.replace(hour=h, minute=0) for h in (10, 11, 12)]
        days = [r.next_scheduled_start_time for r in await scheduled_runs(store, daily.id)]
        assert days == [NOW.replace(day=d, hour=12, minute=0) for d in (2, 3, 4)]


async def test_paused_deployments_and_inactive_schedules_get_no_runs(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        paused = await deploy(store, clock, "paused", paused=True)
        inactive = await deploy(store, clock, "inactive")
        await deployments.update_schedule(
            store, inactive.id, inactive.schedules[0].id, NewSchedule(active=False), ["active"], clock=clock,
        )
        assert await schedule_deployments(store, NOW) == 0
        assert await scheduled_runs(store, paused.id) == [] == await scheduled_runs(store, inactive.id)


async def test_pausing_the_deployment_deletes_its_auto_scheduled_runs_and_keeps_the_others(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        await schedule_deployments(store, NOW)
        manual, _ = await deployments.create_flow_run(store, deployment.id, DeploymentRun(), clock=clock)
        started = next(r for r in await scheduled_runs(store, deployment.id) if r.auto_scheduled)
        outcome = await flow_runs.set_state(store, started.id, ProposedState(type=StateType.PENDING), clock=clock)
        assert outcome is not None and outcome[1].status is Status.ACCEPT

        assert await deployments.set_paused(store, deployment.id, True, clock=clock)
        assert [r.id for r in await scheduled_runs(store, deployment.id)] == [manual.id]
        assert await runs_writer.get_flow_run(store, started.id) is not None  # a run that moved on stays
        assert await schedule_deployments(store, NOW) == 0

        assert await deployments.set_paused(store, deployment.id, False, clock=clock)
        assert await schedule_deployments(store, NOW) == 60  # the one that started keeps its time


async def test_changing_a_schedule_deletes_its_future_runs_and_the_next_step_makes_new_ones(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        await schedule_deployments(store, NOW)
        clock.advance(90)  # the runs at NOW and NOW + 60 s are past: they stay
        await deployments.update_schedule(
            store, deployment.id, deployment.schedules[0].id,
            NewSchedule(schedule={"interval": 600, "anchor_date": NOW.isoformat()}), ["schedule"], clock=clock,
        )
        left = await scheduled_runs(store, deployment.id)
        assert [r.next_scheduled_start_time for r in left] == [NOW, NOW + timedelta(seconds=60)]

        assert await schedule_deployments(store, clock()) == 7  # every 10 minutes, for the hour ahead
        times = [r.next_scheduled_start_time for r in await scheduled_runs(store, deployment.id)]
        assert times[2:] == [NOW + timedelta(minutes=m) for m in (10, 20, 30, 40, 50, 60, 70)]

        await deployments.delete_schedule(store, deployment.id, deployment.schedules[0].id, clock=clock)
        assert await scheduled_runs(store, deployment.id) == []  # every auto-scheduled one, past ones too


async def test_a_rescheduled_time_gets_a_new_run_after_its_run_was_deleted(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        await schedule_deployments(store, NOW)
        before = {r.next_scheduled_start_time: r.id for r in await scheduled_runs(store, deployment.id)}
        await deployments.update(store, deployment.id, {"description": "changed"}, clock=clock)  # any PATCH
        assert [r.id for r in await scheduled_runs(store, deployment.id)] == [before[NOW]]  # not after now
        assert await schedule_deployments(store, NOW) == 60
        after = {r.next_scheduled_start_time: r.id for r in await scheduled_runs(store, deployment.id)}
        assert after.keys() == before.keys()
        assert {t for t in after if after[t] == before[t]} == {NOW}  # new runs under the keys' next generation


async def test_a_deleted_and_recreated_deployment_gets_a_new_id_and_its_old_runs_keep_the_old_one(
    store_url: str,
) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        old = await deploy(store, clock)
        await schedule_deployments(store, NOW)
        manual, _ = await deployments.create_flow_run(store, old.id, DeploymentRun(), clock=clock)
        ran = [r for r in await scheduled_runs(store, old.id) if r.auto_scheduled][1]
        await flow_runs.set_state(store, ran.id, ProposedState(type=StateType.PENDING), clock=clock)

        assert await deployments.delete(store, old.id, clock=clock)
        assert await scheduled_runs(store, old.id) == []  # Scheduled ones, the manual one too
        assert await runs_writer.get_flow_run(store, manual.id) is None

        new = await deploy(store, clock)
        assert new.id != old.id
        again = await deploy(store, clock)  # an upsert now finds the new one
        assert again.id == new.id
        kept = await runs_writer.get_flow_run(store, ran.id)
        assert kept is not None and kept.deployment_id == old.id

        assert await deployments.delete(store, new.id, clock=clock)
        third = await deploy(store, clock)
        assert third.id not in (old.id, new.id)
        assert await deployments.delete(store, old.id, clock=clock) is False


async def test_the_service_does_a_full_pass_first_then_recent_ones_then_full_again(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        service = scheduler_service(store, interval=60, recent_interval=5)
        assert service.singleton and service.interval == 5
        await deploy(store, clock, "old")
        assert await service.step(NOW) == 61  # full
        clock.advance(15)
        fresh = await deploy(store, clock, "fresh")
        assert await service.step(clock()) == 61  # recent: only the new deployment
        assert len(await scheduled_runs(store, fresh.id)) == 61
        clock.advance(30)
        assert await service.step(clock()) == 0  # recent, nothing changed lately
        clock.advance(30)
        # Full, 75 s on: the horizons moved by two runs ("old") and one ("fresh", scheduled 15 s later).
        assert await service.step(clock()) == 3


async def test_runs_created_from_a_deployment_read_before_it_changed_are_removed_again(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        stale = await deployment_reads.schedulable(store)  # the scheduler reads ...
        await deployments.update_schedule(  # ... the schedule changes (nothing to delete yet) ...
            store, deployment.id, deployment.schedules[0].id,
            NewSchedule(schedule={"interval": 600, "anchor_date": NOW.isoformat()}), ["schedule"], clock=clock,
        )
        assert await schedule_batch(store, stale, NOW) == 61  # ... and creates the old schedule's runs
        # ... which it deletes again at once, all but the one due now (not in the future, as Prefect)
        assert [r.next_scheduled_start_time for r in await scheduled_runs(store, deployment.id)] == [NOW]
        assert await schedule_deployments(store, NOW) == 6  # the next pass: the new schedule's other times
        times = [r.next_scheduled_start_time for r in await scheduled_runs(store, deployment.id)]
        assert times == [NOW + timedelta(minutes=m) for m in range(0, 70, 10)]


async def test_pausing_a_schedule_deletes_its_future_runs_at_once(store_url: str) -> None:
    clock = ManualClock(NOW)
    async with open_store(store_url, projections=inline_projections()) as store:
        deployment = await deploy(store, clock)
        await schedule_deployments(store, NOW)
        clock.advance(30)
        await deployments.update_schedule(
            store, deployment.id, deployment.schedules[0].id, NewSchedule(active=False), ["active"], clock=clock,
        )
        assert [r.next_scheduled_start_time for r in await scheduled_runs(store, deployment.id)] == [NOW]
        assert await schedule_deployments(store, clock()) == 0
