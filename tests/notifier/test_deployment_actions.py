"""The deployment, work pool and work queue actions carried out by the matcher, on both
backends with a manual clock: run-deployment (selected and inferred, with parameters and job
variables, once per firing), pause/resume-deployment, pause/resume-work-pool and
pause/resume-work-queue, and Prefect's executed/failed events for them."""

from __future__ import annotations

import uuid
from typing import Any

from runlog.commands import automations, deployments, flow_runs, flows, work_pools
from runlog.commands.clock import ManualClock
from runlog.commands.deployments import DeploymentRun
from runlog.commands.orchestration import ProposedState
from runlog.projections import deployments as deployment_reads
from runlog.projections import work_pools as pool_reads
from runlog.projections.runs_writer import flow_run_ids_of_flow, get_flow_run
from runlog.schema.events import StateType

from .test_actions import a_run_in, feed, named, on_states, rewind_and_match_again
from .test_matcher import matcher_for


async def a_deployment(store, clock: ManualClock, name: str = "nightly") -> tuple[uuid.UUID, uuid.UUID]:
    """A deployment of the flow "reports" (parameters x=1, y=2) and the flow's id."""
    flow, _ = await flows.register(store, "reports", [], clock=clock)
    view, _ = await deployments.upsert(store, flow.id, name, {"parameters": {"x": 1, "y": 2}}, [], clock=clock)
    return view.id, flow.id


async def runs_of(store, flow_id: uuid.UUID) -> list[Any]:
    views = [await get_flow_run(store, run_id) for run_id in await flow_run_ids_of_flow(store, flow_id)]
    return [v for v in views if v is not None]


async def test_run_deployment_creates_one_run_with_its_parameters_and_job_variables(store, clock) -> None:
    deployment_id, flow_id = await a_deployment(store, clock)
    action = {"type": "run-deployment", "source": "selected", "deployment_id": str(deployment_id),
              "parameters": {"y": 5}, "job_variables": {"image": "etl:2"}}
    await automations.create(store, on_states(["Failed"], [action]), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="broken-otter")

    await matcher_for(store, clock).step(clock())
    (run,) = await runs_of(store, flow_id)
    assert run.deployment_id == deployment_id and run.parameters == {"x": 1, "y": 5}
    assert run.job_variables == {"image": "etl:2"}
    assert run.state is not None and run.state.type is StateType.SCHEDULED

    await rewind_and_match_again(store, clock)
    assert len(await runs_of(store, flow_id)) == 1, "one run per firing"
    (executed,) = named(await feed(store), "prefect.automation.action.executed")
    assert executed.payload["status_code"] == 201
    ids = [r["prefect.resource.id"] for r in executed.related]
    assert f"prefect.deployment.{deployment_id}" in ids and f"prefect.flow-run.{run.id}" in ids


async def test_run_deployment_inferred_from_a_deployment_run_runs_that_deployment(store, clock) -> None:
    deployment_id, flow_id = await a_deployment(store, clock)
    await automations.create(
        store, on_states(["Failed"], [{"type": "run-deployment", "source": "inferred"}], tag="retry-me"), clock=clock
    )
    created = await deployments.create_flow_run(store, deployment_id, DeploymentRun(tags=["retry-me"]), clock=clock)
    assert created is not None
    first = created[0].id
    for step in (StateType.PENDING, StateType.RUNNING, StateType.FAILED):
        await flow_runs.set_state(store, first, ProposedState(type=step), clock=clock)

    await matcher_for(store, clock).step(clock())
    runs = await runs_of(store, flow_id)
    assert len(runs) == 2 and all(r.deployment_id == deployment_id for r in runs)


async def test_pause_and_resume_deployment(store, clock) -> None:
    deployment_id, _ = await a_deployment(store, clock)
    pause = {"type": "pause-deployment", "source": "selected", "deployment_id": str(deployment_id)}
    await automations.create(store, on_states(["Failed"], [pause]), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="sad-panda")
    await matcher_for(store, clock).step(clock())
    view = await deployment_reads.get(store, deployment_id)
    assert view is not None and view.paused is True

    resume = {"type": "resume-deployment", "source": "selected", "deployment_id": str(deployment_id)}
    await automations.create(store, on_states(["Completed"], [resume]), clock=clock)
    await a_run_in(store, clock, StateType.COMPLETED, tags=["daily-etl"], name="glad-panda")
    await matcher_for(store, clock).step(clock())
    view = await deployment_reads.get(store, deployment_id)
    assert view is not None and view.paused is False


async def test_pause_work_pool_and_its_queue_then_resume_them(store, clock) -> None:
    pool = await work_pools.create_pool(store, work_pools.NewWorkPool(name="gpu", type="process"), clock=clock)
    queue_id = pool.default_queue_id
    pauses = [{"type": "pause-work-pool", "source": "selected", "work_pool_id": str(pool.id)},
              {"type": "pause-work-queue", "source": "selected", "work_queue_id": str(queue_id)}]
    await automations.create(store, on_states(["Failed"], pauses), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="hot-gpu")
    await matcher_for(store, clock).step(clock())
    async with store.reading() as tx:
        paused_pool, paused_queue = await pool_reads.pool_in(tx, pool.id), await pool_reads.queue_in(tx, queue_id)
    assert paused_pool is not None and paused_pool.is_paused and paused_pool.status == "PAUSED"
    assert paused_queue is not None and paused_queue.is_paused

    resumes = [{"type": "resume-work-pool", "source": "selected", "work_pool_id": str(pool.id)},
               {"type": "resume-work-queue", "source": "selected", "work_queue_id": str(queue_id)}]
    await automations.create(store, on_states(["Completed"], resumes), clock=clock)
    await a_run_in(store, clock, StateType.COMPLETED, tags=["daily-etl"], name="cool-gpu")
    await matcher_for(store, clock).step(clock())
    async with store.reading() as tx:
        pool_now, queue_now = await pool_reads.pool_in(tx, pool.id), await pool_reads.queue_in(tx, queue_id)
    assert pool_now is not None and not pool_now.is_paused
    assert queue_now is not None and not queue_now.is_paused


async def test_actions_on_what_does_not_exist_fail_with_prefects_reasons(store, clock) -> None:
    missing = str(uuid.uuid4())
    actions = [
        {"type": "run-deployment", "source": "selected", "deployment_id": missing},
        {"type": "pause-work-pool", "source": "selected", "work_pool_id": missing},
        {"type": "pause-deployment", "source": "inferred"},
    ]
    await automations.create(store, on_states(["Failed"], actions), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="lost-yak")
    await matcher_for(store, clock).step(clock())
    failed = named(await feed(store), "prefect.automation.action.failed")
    reasons = sorted(e.payload["reason"] for e in failed)
    assert reasons == sorted([
        "Unexpected status from 'run-deployment' action: 404",
        f"Work pool {missing} not found",
        "No deployment could be inferred",
    ])


async def test_run_deployment_renders_its_parameter_templates_and_records_the_automation_as_creator(store, clock) -> None:
    """As Prefect's action renders them: a v1 template (a plain string holding Jinja) and the
    __prefect_kind ones, with the firing's run in the context; the run's creator is the
    automation. A template that cannot be resolved fails the action with Prefect's reason."""
    deployment_id, flow_id = await a_deployment(store, clock)
    action = {"type": "run-deployment", "source": "selected", "deployment_id": str(deployment_id),
              "parameters": {"y": "{{ flow_run.run_count }}", "who": "rerun of {{ flow_run.name }}",
                             "n": {"__prefect_kind": "json", "value": "[1, 2]"}}}
    automation = await automations.create(store, on_states(["Failed"], [action]), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="broken-otter")

    await matcher_for(store, clock).step(clock())
    (run,) = await runs_of(store, flow_id)
    assert run.parameters == {"x": 1, "y": 1, "who": "rerun of broken-otter", "n": [1, 2]}  # y keeps its type
    assert run.created_by == {"id": str(automation.id), "type": "AUTOMATION", "display_value": "on Failed"}


async def test_run_deployment_with_an_unresolvable_template_fails_with_prefects_reason(store, clock) -> None:
    deployment_id, flow_id = await a_deployment(store, clock)
    action = {"type": "run-deployment", "source": "selected", "deployment_id": str(deployment_id),
              "parameters": {"y": {"__prefect_kind": "workspace_variable", "variable_name": "missing"}}}
    await automations.create(store, on_states(["Failed"], [action]), clock=clock)
    await a_run_in(store, clock, StateType.FAILED, tags=["daily-etl"], name="lost-yak")
    await matcher_for(store, clock).step(clock())
    (failed,) = named(await feed(store), "prefect.automation.action.failed")
    assert failed.payload["reason"] == "Unable to create flow run from deployment: WorkspaceVariableNotFound()"
    assert await runs_of(store, flow_id) == []
