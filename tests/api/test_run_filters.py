"""POST /flow_runs/filter|count|paginate and /task_runs/filter|count|paginate over a real server.

Every test seeds the same small history through the API (flows, flow runs, task runs, forced
states with fixed timestamps), on SQLite and on PostgreSQL, and checks Prefect 3.8's semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlog.commands.deployments import deployment_id_for
from runlog.commands.flows import flow_id_for

from ..servers import Server, serve

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def state(kind: str, minutes: float, name: str | None = None, scheduled: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "timestamp": at(minutes)}
    if name is not None:
        body["name"] = name
    if scheduled is not None:
        body["state_details"] = {"scheduled_time": at(scheduled)}
    return body


# The deployments d1 and d2 of the flow etl: ids derived from the flow and the name, as runlog does.
DEPLOYMENT_1 = str(deployment_id_for(flow_id_for("etl"), "d1"))
DEPLOYMENT_2 = str(deployment_id_for(flow_id_for("etl"), "d2"))


@dataclass
class World:
    server: Server
    flows: dict[str, str] = field(default_factory=dict)  # flow name -> id
    runs: dict[str, str] = field(default_factory=dict)  # flow run name -> id
    tasks: dict[str, str] = field(default_factory=dict)  # task run name -> id

    async def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = await self.server.request("POST", path, json=body)
        assert status == expect, (path, body, status, answer)
        return answer

    async def flow_run_names(self, body: dict[str, Any] | None = None) -> list[str]:
        by_id = {v: k for k, v in self.runs.items()}
        return [by_id[r["id"]] for r in await self.post("/flow_runs/filter", body or {})]

    async def task_run_names(self, body: dict[str, Any] | None = None) -> list[str]:
        by_id = {v: k for k, v in self.tasks.items()}
        return [by_id[r["id"]] for r in await self.post("/task_runs/filter", body or {})]

    async def runs_matching(self, flow_runs: dict[str, Any] | None, **others: Any) -> set[str]:
        """The names of the flow runs a filter selects, checked against /flow_runs/count too."""
        body = {"flow_runs": flow_runs, **others}
        names = await self.flow_run_names(body)
        assert await self.post("/flow_runs/count", body) == len(names)
        return set(names)

    async def tasks_matching(self, task_runs: dict[str, Any] | None = None, **others: Any) -> set[str]:
        body = {"task_runs": task_runs, **others}
        names = await self.task_run_names(body)
        assert await self.post("/task_runs/count", body) == len(names)
        return set(names)

    def ids_by_id_desc(self, names: list[str] | set[str], of: dict[str, str]) -> list[str]:
        return sorted(names, key=lambda n: of[n], reverse=True)


async def seed(server: Server) -> World:
    """Six flow runs of three flows, five task runs; times in minutes after T0.

    run      flow          tags   version queue    deployment  states (minute)
    alpha    etl           a b    1.0     default  D1          Scheduled 0 for 60
    beta_    etl           a      2.0     fast     D2          Pending 10, Running 20, Completed 30
    gamma%   report        -      -       -        -           Pending 5, Running 22, Failed 40
    delta    Ingest-Daily  b      1.0     -        -           Running 25, Completed 35 (subflow of task extract)
    epsilon  report        c      -       -        -           Completed "Cached" 50
    zeta     report        a c    -       default  -           Scheduled 1 for 30
    """
    world = World(server)
    for name, tags in (("etl", ["prod"]), ("report", []), ("Ingest-Daily", ["prod", "nightly"])):
        world.flows[name] = (await world.post("/flows/", {"name": name, "tags": tags}, expect=201))["id"]
    for deployment in ("d1", "d2"):
        await world.post("/deployments/", {"name": deployment, "flow_id": world.flows["etl"]}, expect=201)

    async def flow_run(name: str, flow: str, first: dict[str, Any], **fields: Any) -> str:
        body = {"flow_id": world.flows[flow], "name": name, "state": first, **fields}
        run = await world.post("/flow_runs/", body, expect=201)
        world.runs[name] = run["id"]
        return run["id"]

    async def flow_state(name: str, new: dict[str, Any]) -> None:
        await world.post(f"/flow_runs/{world.runs[name]}/set_state", {"state": new, "force": True}, expect=201)

    async def task_run(name: str, flow_run_name: str | None, first: dict[str, Any], tags: list[str]) -> str:
        body = {
            "task_key": name, "dynamic_key": "0", "name": name, "tags": tags, "state": first,
            "flow_run_id": world.runs[flow_run_name] if flow_run_name else None,
        }
        task = await world.post("/task_runs/", body, expect=201)
        world.tasks[name] = task["id"]
        return task["id"]

    async def task_state(name: str, new: dict[str, Any]) -> None:
        await world.post(f"/task_runs/{world.tasks[name]}/set_state", {"state": new, "force": True}, expect=201)

    await flow_run("alpha-run", "etl", state("SCHEDULED", 0, scheduled=60), tags=["a", "b"], flow_version="1.0",
                   work_queue_name="default", deployment_id=DEPLOYMENT_1, idempotency_key="key-a")
    await flow_run("beta_run", "etl", state("PENDING", 10), tags=["a"], flow_version="2.0",
                   work_queue_name="fast", deployment_id=DEPLOYMENT_2, idempotency_key="key-b")
    await flow_state("beta_run", state("RUNNING", 20))
    await flow_state("beta_run", state("COMPLETED", 30))
    await flow_run("gamma%run", "report", state("PENDING", 5))
    await flow_state("gamma%run", state("RUNNING", 22))
    await flow_state("gamma%run", state("FAILED", 40))
    await flow_run("epsilon-run", "report", state("COMPLETED", 50, name="Cached"), tags=["c"])
    await flow_run("zeta-run", "report", state("SCHEDULED", 1, scheduled=30), tags=["a", "c"],
                   work_queue_name="default")

    # extract's states come from its subflow delta-run: Pending 21, Running 25, Completed 35.
    await task_run("extract", "beta_run", state("PENDING", 21), ["t1", "t2"])
    await flow_run("delta-run", "Ingest-Daily", state("RUNNING", 25), tags=["b"], flow_version="1.0",
                   parent_task_run_id=world.tasks["extract"])
    await flow_state("delta-run", state("COMPLETED", 35))
    await task_run("load", "beta_run", state("SCHEDULED", 24, name="AwaitingRetry", scheduled=90), ["t1"])
    await task_run("transform", "gamma%run", state("RUNNING", 23), [])
    await task_state("transform", state("FAILED", 40))
    await task_run("solo", None, state("COMPLETED", 45), ["t2"])
    await task_run("cleanup", "epsilon-run", state("SCHEDULED", 2, scheduled=70), [])
    return world


@pytest.fixture
async def world(tmp_path, store_url):
    async with serve({"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}) as server:
        yield await seed(server)


ALL_RUNS = {"alpha-run", "beta_run", "gamma%run", "delta-run", "epsilon-run", "zeta-run"}
ALL_TASKS = {"extract", "load", "transform", "solo", "cleanup"}


# -- flow runs: the defaults and the response ---------------------------------------------------


async def test_filter_without_body_returns_every_flow_run_by_id_desc_as_full_prefect_flow_runs(world):
    status, runs = await world.server.request("POST", "/flow_runs/filter")
    assert status == 200
    assert [r["id"] for r in runs] == sorted(world.runs.values(), reverse=True)
    beta = next(r for r in runs if r["name"] == "beta_run")
    assert beta["flow_id"] == world.flows["etl"] and beta["tags"] == ["a"]
    assert (beta["state_type"], beta["state_name"], beta["state"]["type"]) == ("COMPLETED", "Completed", "COMPLETED")
    assert beta["start_time"].startswith("2024-01-01T00:20:00") and beta["end_time"].startswith("2024-01-01T00:30:00")
    assert beta["deployment_id"] == DEPLOYMENT_2 and beta["work_queue_name"] == "fast"
    for key in ("estimated_run_time", "estimated_start_time_delta", "empirical_policy", "job_variables",
                "next_scheduled_start_time", "run_count", "total_run_time", "idempotency_key", "labels"):
        assert key in beta
    # The Prefect client sends explicit nulls for what it leaves unset; they mean "the default".
    body = {"sort": None, "limit": None, "offset": 0, "flows": None, "flow_runs": None, "task_runs": None,
            "deployments": None, "work_pools": None, "work_pool_queues": None}
    assert [r["id"] for r in await world.post("/flow_runs/filter", body)] == [r["id"] for r in runs]
    assert await world.post("/flow_runs/count") == 6


# -- flow runs: each FlowRunFilter field --------------------------------------------------------


async def test_flow_run_id_filter_includes_any_and_excludes_not_any(world):
    m = world.runs_matching
    a, b = world.runs["alpha-run"], world.runs["beta_run"]
    assert await m({"id": {"any_": [a, b]}}) == {"alpha-run", "beta_run"}
    assert await m({"id": {"not_any_": [a]}}) == ALL_RUNS - {"alpha-run"}
    assert await m({"id": {"any_": [a, b], "not_any_": [b]}}) == {"alpha-run"}
    assert await m({"id": {"any_": []}}) == set()  # an empty any_ matches nothing
    assert await m({"id": {"not_any_": []}}) == ALL_RUNS  # an empty not_any_ is ignored


async def test_flow_run_name_filter_matches_names_exactly_or_as_a_case_insensitive_literal_substring(world):
    m = world.runs_matching
    assert await m({"name": {"any_": ["alpha-run", "nope"]}}) == {"alpha-run"}
    assert await m({"name": {"like_": "ALPHA"}}) == {"alpha-run"}
    assert await m({"name": {"like_": "-run"}}) == {"alpha-run", "delta-run", "epsilon-run", "zeta-run"}
    # % and _ in the value are plain characters, not wildcards.
    assert await m({"name": {"like_": "%"}}) == {"gamma%run"}
    assert await m({"name": {"like_": "a_r"}}) == {"beta_run"}
    assert await m({"name": {"like_": ""}}) == ALL_RUNS  # Prefect ignores an empty like_
    assert await m({"name": {"any_": ["alpha-run", "beta_run"], "like_": "beta"}}) == {"beta_run"}


async def test_name_like_follows_a_rename_and_a_deletion(world):
    """like_ reads flow_run_names (migration 0030), which the runs projection keeps in step."""
    m = world.runs_matching
    run_id = world.runs["beta_run"]
    status, _ = await world.server.request("PATCH", f"/flow_runs/{run_id}", json={"name": "renamed-omega"})
    assert status == 204
    assert await m({"name": {"like_": "beta"}}) == set()
    assert await m({"name": {"like_": "OMEGA"}}) == {"beta_run"}  # (named here as seeded)
    status, _ = await world.server.request("DELETE", f"/flow_runs/{run_id}")
    assert status == 204
    assert await m({"name": {"like_": "omega"}}) == set()
    assert await world.post("/flow_runs/count", {"flow_runs": {"name": {"like_": "run"}}}) == 5


async def test_flow_run_tags_filter_all_any_is_null_and_operator(world):
    m = world.runs_matching
    assert await m({"tags": {"all_": ["a", "c"]}}) == {"zeta-run"}
    assert await m({"tags": {"all_": ["a"]}}) == {"alpha-run", "beta_run", "zeta-run"}
    assert await m({"tags": {"any_": ["b", "c"]}}) == {"alpha-run", "delta-run", "epsilon-run", "zeta-run"}
    assert await m({"tags": {"any_": []}}) == set()
    assert await m({"tags": {"is_null_": True}}) == {"gamma%run"}
    assert await m({"tags": {"is_null_": False}}) == ALL_RUNS - {"gamma%run"}
    either = {"tags": {"operator": "or_", "all_": ["a", "b"], "is_null_": True}}
    assert await m(either) == {"alpha-run", "gamma%run"}


async def test_tags_all_needs_every_distinct_tag_and_any_needs_one(world):
    m = world.runs_matching
    assert await m({"tags": {"all_": ["a", "b", "a"]}}) == {"alpha-run"}  # a repeated tag counts once
    assert await m({"tags": {"all_": ["a", "b", "c"]}}) == set()  # no run has all three
    assert await m({"tags": {"all_": ["a", "missing"]}}) == set()
    assert await m({"tags": {"any_": ["missing", "c"]}}) == {"epsilon-run", "zeta-run"}
    assert await m({"tags": {"any_": ["missing"]}}) == set()
    assert await m({"tags": {"all_": []}}) == ALL_RUNS  # an empty all_ is no criterion
    # all_ and any_ together (and_ by default), and with another field.
    assert await m({"tags": {"all_": ["a"], "any_": ["c"]}}) == {"zeta-run"}
    assert await m({"tags": {"any_": ["a", "b"]}, "state": {"type": {"any_": ["SCHEDULED"]}}}) == {
        "alpha-run", "zeta-run"}


async def test_tag_filters_follow_tags_replaced_by_an_update(world):
    run_id = world.runs["beta_run"]
    status, _ = await world.server.request("PATCH", f"/flow_runs/{run_id}", json={"tags": ["new", "c"]})
    assert status == 204
    m = world.runs_matching
    assert await m({"tags": {"all_": ["a"]}}) == {"alpha-run", "zeta-run"}
    assert await m({"tags": {"all_": ["new", "c"]}}) == {"beta_run"}
    assert await m({"tags": {"any_": ["new"]}}) == {"beta_run"}
    status, _ = await world.server.request("PATCH", f"/flow_runs/{run_id}", json={"tags": []})
    assert status == 204
    assert await m({"tags": {"is_null_": True}}) == {"gamma%run", "beta_run"}
    assert await m({"tags": {"any_": ["new"]}}) == set()


async def test_tag_filters_page_in_the_ui_sorts(world):
    body = {"flow_runs": {"tags": {"any_": ["a", "c"]}}}
    newest = await world.flow_run_names({**body, "sort": "EXPECTED_START_TIME_DESC"})
    everyone = await world.flow_run_names({"sort": "EXPECTED_START_TIME_DESC"})
    assert newest == [n for n in everyone if n in {"alpha-run", "beta_run", "epsilon-run", "zeta-run"}]
    page = await world.flow_run_names({**body, "sort": "NAME_ASC", "limit": 2, "offset": 1})
    assert page == sorted({"alpha-run", "beta_run", "epsilon-run", "zeta-run"})[1:3]


async def test_flow_run_state_filter_by_type_and_name(world):
    m = world.runs_matching
    assert await m({"state": {"type": {"any_": ["COMPLETED"]}}}) == {"beta_run", "delta-run", "epsilon-run"}
    assert await m({"state": {"type": {"not_any_": ["COMPLETED", "SCHEDULED"]}}}) == {"gamma%run"}
    assert await m({"state": {"name": {"any_": ["Cached"]}}}) == {"epsilon-run"}
    assert await m({"state": {"name": {"not_any_": ["Completed", "Scheduled"]}}}) == {"gamma%run", "epsilon-run"}
    both = {"state": {"type": {"any_": ["COMPLETED"]}, "name": {"any_": ["Completed"]}}}
    assert await m(both) == {"beta_run", "delta-run"}
    either = {"state": {"operator": "or_", "type": {"any_": ["FAILED"]}, "name": {"any_": ["Cached"]}}}
    assert await m(either) == {"gamma%run", "epsilon-run"}
    # Prefect drops a state sub-filter that sets both any_ and not_any_ (it is not one comparison).
    quirk = {"state": {"type": {"any_": ["FAILED"], "not_any_": ["COMPLETED"]}}}
    assert await m(quirk) == ALL_RUNS
    unknown = {"flow_runs": {"state": {"type": {"any_": ["DONE"]}}}}
    status, body = await world.server.request("POST", "/flow_runs/filter", json=unknown)
    assert status == 422 and "$.flow_runs.state.type.any_[0]" in body["detail"]


async def test_flow_run_flow_version_filter(world):
    m = world.runs_matching
    assert await m({"flow_version": {"any_": ["1.0"]}}) == {"alpha-run", "delta-run"}
    assert await m({"flow_version": {"any_": ["1.0", "2.0"]}}) == {"alpha-run", "beta_run", "delta-run"}


async def test_flow_run_start_time_filter_uses_the_expected_start_of_runs_not_started(world):
    m = world.runs_matching
    # start times: beta 20, gamma 22, delta 25, epsilon 50; not started: alpha (expected 60), zeta (30)
    assert await m({"start_time": {"before_": at(25)}}) == {"beta_run", "gamma%run", "delta-run"}
    assert await m({"start_time": {"after_": at(30)}}) == {"alpha-run", "epsilon-run", "zeta-run"}
    assert await m({"start_time": {"after_": at(22), "before_": at(30)}}) == {"gamma%run", "delta-run", "zeta-run"}
    assert await m({"start_time": {"is_null_": True}}) == {"alpha-run", "zeta-run"}
    assert await m({"start_time": {"is_null_": False}}) == ALL_RUNS - {"alpha-run", "zeta-run"}


async def test_flow_run_end_expected_and_next_scheduled_time_filters(world):
    m = world.runs_matching
    # end times: beta 30, delta 35, gamma 40, epsilon 50
    assert await m({"end_time": {"before_": at(35)}}) == {"beta_run", "delta-run"}
    assert await m({"end_time": {"after_": at(40)}}) == {"gamma%run", "epsilon-run"}
    assert await m({"end_time": {"is_null_": True}}) == {"alpha-run", "zeta-run"}
    # expected: gamma 5, beta 10, delta 25, zeta 30, epsilon 50, alpha 60
    assert await m({"expected_start_time": {"before_": at(10)}}) == {"gamma%run", "beta_run"}
    assert await m({"expected_start_time": {"after_": at(30), "before_": at(50)}}) == {"zeta-run", "epsilon-run"}
    # next scheduled: zeta 30, alpha 60; the others have none
    assert await m({"next_scheduled_start_time": {"before_": at(45)}}) == {"zeta-run"}
    assert await m({"next_scheduled_start_time": {"after_": at(30)}}) == {"zeta-run", "alpha-run"}
    naive = {"expected_start_time": {"before_": "2024-01-01T00:10:00"}}  # a naive time is UTC
    assert await m(naive) == {"gamma%run", "beta_run"}


async def test_flow_run_deployment_id_and_work_queue_name_filters(world):
    m = world.runs_matching
    assert await m({"deployment_id": {"any_": [DEPLOYMENT_1]}}) == {"alpha-run"}
    assert await m({"deployment_id": {"is_null_": False}}) == {"alpha-run", "beta_run"}
    assert await m({"deployment_id": {"is_null_": True}}) == ALL_RUNS - {"alpha-run", "beta_run"}
    or_null = {"deployment_id": {"operator": "or_", "any_": [DEPLOYMENT_2], "is_null_": True}}
    assert await m(or_null) == ALL_RUNS - {"alpha-run"}
    assert await m({"work_queue_name": {"any_": ["default"]}}) == {"alpha-run", "zeta-run"}
    assert await m({"work_queue_name": {"is_null_": False}}) == {"alpha-run", "beta_run", "zeta-run"}
    assert await m({"work_queue_name": {"is_null_": True}}) == {"gamma%run", "delta-run", "epsilon-run"}


async def test_flow_run_parent_idempotency_and_created_by_filters(world):
    m = world.runs_matching
    extract = world.tasks["extract"]
    assert await m({"parent_task_run_id": {"any_": [extract]}}) == {"delta-run"}
    assert await m({"parent_task_run_id": {"is_null_": False}}) == {"delta-run"}
    assert await m({"parent_task_run_id": {"is_null_": True}}) == ALL_RUNS - {"delta-run"}
    # Subflows of beta_run: flow runs whose parent task run belongs to beta_run.
    assert await m({"parent_flow_run_id": {"any_": [world.runs["beta_run"]]}}) == {"delta-run"}
    assert await m({"parent_flow_run_id": {"any_": [world.runs["gamma%run"]]}}) == set()
    assert await m({"idempotency_key": {"any_": ["key-a"]}}) == {"alpha-run"}
    # NOT IN leaves out runs without a key, as SQL (and Prefect) do.
    assert await m({"idempotency_key": {"not_any_": ["key-a"]}}) == {"beta_run"}
    # runs a client makes itself have no creator (created_by null)
    assert await m({"created_by": {"is_null_": True}}) == ALL_RUNS
    assert await m({"created_by": {"type_": ["DEPLOYMENT"]}}) == set()


async def test_flow_run_filter_operator_or_combines_fields(world):
    m = world.runs_matching
    either = {"operator": "or_", "name": {"any_": ["alpha-run"]}, "state": {"type": {"any_": ["FAILED"]}}}
    assert await m(either) == {"alpha-run", "gamma%run"}
    both = {"name": {"like_": "run"}, "tags": {"any_": ["a"]}}
    assert await m(both) == {"alpha-run", "beta_run", "zeta-run"}
    # As in Prefect, a field with no criteria is TRUE, so under or_ it matches everything.
    assert await m({"operator": "or_", "name": {}, "tags": {"any_": ["c"]}}) == ALL_RUNS


async def test_filters_refuse_unknown_fields_and_ignore_unknown_top_level_keys(world):
    status, body = await world.server.request("POST", "/flow_runs/filter", json={"flow_runs": {"nmae": {}}})
    assert status == 422 and "nmae" in body["detail"]
    status, body = await world.server.request("POST", "/task_runs/count", json={"task_runs": {"tags": {"any_": ["x"]}}})
    assert status == 422 and "any_" in body["detail"]  # Prefect's TaskRunFilterTags has no any_
    assert len(await world.post("/flow_runs/filter", {"extra": 1})) == 6


# -- flow runs: related-entity filters ----------------------------------------------------------


async def test_flow_runs_filtered_by_their_flow(world):
    async def runs_of(flows: dict[str, Any]) -> set[str]:
        return await world.runs_matching(None, flows=flows)

    assert await runs_of({"id": {"any_": [world.flows["etl"]]}}) == {"alpha-run", "beta_run"}
    assert await runs_of({"id": {"not_any_": [world.flows["report"]]}}) == {"alpha-run", "beta_run", "delta-run"}
    assert await runs_of({"name": {"any_": ["Ingest-Daily"]}}) == {"delta-run"}
    assert await runs_of({"name": {"like_": "ingest"}}) == {"delta-run"}
    assert await runs_of({"tags": {"all_": ["prod", "nightly"]}}) == {"delta-run"}
    assert await runs_of({"tags": {"is_null_": True}}) == {"gamma%run", "epsilon-run", "zeta-run"}
    assert await runs_of({"operator": "or_", "name": {"any_": ["etl"]}, "tags": {"all_": ["nightly"]}}) == {
        "alpha-run", "beta_run", "delta-run"}
    combined = {"flow_runs": {"tags": {"any_": ["a"]}}, "flows": {"name": {"any_": ["report"]}}}
    assert set(await world.flow_run_names(combined)) == {"zeta-run"}


async def test_flow_runs_filtered_by_their_task_runs(world):
    m = world.runs_matching
    # Prefect: flow runs having at least one task run that matches.
    assert await m(None, task_runs={}) == {"beta_run", "gamma%run", "epsilon-run"}
    assert await m(None, task_runs={"name": {"any_": ["transform"]}}) == {"gamma%run"}
    by_state = {"state": {"type": {"any_": ["SCHEDULED"]}}}
    assert await m(None, task_runs=by_state) == {"beta_run", "epsilon-run"}
    both = {"flows": {"name": {"any_": ["etl"]}}, "task_runs": {"tags": {"all_": ["t2"]}}}
    assert await m(None, **both) == {"beta_run"}


async def test_flow_runs_filtered_by_deployments_work_pools_and_queues_as_prefect_with_none_of_them(world):
    m = world.runs_matching
    assert await m(None, deployments={"id": {"any_": [DEPLOYMENT_2]}}) == {"beta_run"}
    # A deployment filter with no criteria still needs the run to have a deployment.
    assert await m(None, deployments={}) == {"alpha-run", "beta_run"}
    assert await m(None, deployments={"id": {"not_any_": [DEPLOYMENT_2]}}) == {"alpha-run"}
    # What the Prefect client sends for DeploymentFilter(id=...): every other field null.
    dump = {"id": {"any_": [DEPLOYMENT_1], "not_any_": None}, "name": None, "tags": None,
            "work_queue_name": None, "concurrency_limit": None, "operator": "and_"}
    assert await m(None, deployments=dump) == {"alpha-run"}
    # The run's deployment must match, as Prefect joins them; a sub-filter without criteria is no criterion.
    assert await m(None, deployments={"name": {"any_": ["d"]}}) == set()
    assert await m(None, deployments={"name": {"any_": ["d1"]}}) == {"alpha-run"}
    assert await m(None, deployments={"paused": {"eq_": False}}) == {"alpha-run", "beta_run"}
    assert await m(None, deployments={"paused": {"eq_": True}}) == set()
    assert await m(None, deployments={"paused": {"eq_": None}, "tags": {}}) == {"alpha-run", "beta_run"}
    either = {"operator": "or_", "id": {"any_": [DEPLOYMENT_2]}, "work_queue_name": {"any_": ["q"]}}
    assert await m(None, deployments=either) == {"beta_run"}
    # A flow has a deployment when a deployment of it exists.
    assert await m(None, flows={"deployment": {"is_null_": False}}) == {"alpha-run", "beta_run"}
    assert await m(None, flows={"deployment": {"is_null_": True}}) == ALL_RUNS - {"alpha-run", "beta_run"}
    # No run here was created in a work pool (Prefect matches them by the run's queue id).
    for body in ({"work_pools": {}}, {"work_pool_queues": {"name": {"any_": ["q"]}}}):
        assert await m(None, **body) == set()
        status, count = await world.server.request("POST", "/flow_runs/count", json=body)
        assert status == 200 and count == 0, count
        status, page = await world.server.request("POST", "/flow_runs/paginate", json=body)
        assert status == 200 and page["count"] == 0 and page["results"] == [], page
    for unknown in ({"work_pools": {"kind": {}}}, {"deployments": {"paused": {"is_": True}}}):
        status, answer = await world.server.request("POST", "/flow_runs/filter", json=unknown)
        assert status == 422 and "unknown field" in answer["detail"].lower(), answer


# -- flow runs: sorting, limits and pages --------------------------------------------------------

FLOW_RUN_SORTS = {
    "START_TIME_ASC": ["beta_run", "gamma%run", "delta-run", "zeta-run", "epsilon-run", "alpha-run"],
    "START_TIME_DESC": ["alpha-run", "epsilon-run", "zeta-run", "delta-run", "gamma%run", "beta_run"],
    "EXPECTED_START_TIME_ASC": ["gamma%run", "beta_run", "delta-run", "zeta-run", "epsilon-run", "alpha-run"],
    "EXPECTED_START_TIME_DESC": ["alpha-run", "epsilon-run", "zeta-run", "delta-run", "beta_run", "gamma%run"],
    "NAME_ASC": ["alpha-run", "beta_run", "delta-run", "epsilon-run", "gamma%run", "zeta-run"],
    "NAME_DESC": ["zeta-run", "gamma%run", "epsilon-run", "delta-run", "beta_run", "alpha-run"],
}


async def test_flow_run_sorts(world):
    assert await world.flow_run_names() == world.ids_by_id_desc(ALL_RUNS, world.runs)
    assert await world.flow_run_names({"sort": "ID_DESC"}) == world.ids_by_id_desc(ALL_RUNS, world.runs)
    for sort, expected in FLOW_RUN_SORTS.items():
        assert await world.flow_run_names({"sort": sort}) == expected, sort
    # Runs without the sorted time come last ascending and first descending (PostgreSQL's
    # default order, on both backends), then by id descending.
    unscheduled = world.ids_by_id_desc(ALL_RUNS - {"zeta-run", "alpha-run"}, world.runs)
    next_scheduled = await world.flow_run_names({"sort": "NEXT_SCHEDULED_START_TIME_ASC"})
    assert next_scheduled == ["zeta-run", "alpha-run", *unscheduled]
    unfinished = world.ids_by_id_desc({"alpha-run", "zeta-run"}, world.runs)
    by_end = await world.flow_run_names({"sort": "END_TIME_DESC"})
    assert by_end == [*unfinished, "epsilon-run", "gamma%run", "delta-run", "beta_run"]
    status, body = await world.server.request("POST", "/flow_runs/filter", json={"sort": "CREATED_DESC"})
    assert status == 422 and "$.sort" in body["detail"]


async def test_flow_run_limit_and_offset(world):
    by_name = FLOW_RUN_SORTS["NAME_ASC"]
    assert await world.flow_run_names({"sort": "NAME_ASC", "limit": 2}) == by_name[:2]
    assert await world.flow_run_names({"sort": "NAME_ASC", "limit": 2, "offset": 3}) == by_name[3:5]
    assert await world.flow_run_names({"sort": "NAME_ASC", "offset": 5}) == by_name[5:]
    assert await world.flow_run_names({"limit": 0}) == []
    assert len(await world.flow_run_names({"limit": 200})) == 6
    for path in ("/flow_runs/filter", "/flow_runs/paginate", "/task_runs/filter", "/task_runs/paginate"):
        # Refused as Prefect refuses them, and bounded so in the API's document.
        status, body = await world.server.request("POST", path, json={"limit": 201})
        assert status == 422 and "<= 200 - at `$.limit`" in body["detail"], (path, body)
        status, body = await world.server.request("POST", path, json={"limit": -1})
        assert status == 422 and ">= 0 - at `$.limit`" in body["detail"], (path, body)
    status, body = await world.server.request("POST", "/flow_runs/filter", json={"offset": -1})
    assert status == 422 and "$.offset" in body["detail"]


async def test_flow_run_paginate_returns_a_page_with_the_total_count(world):
    body = {"sort": "NAME_ASC", "limit": 4, "page": 2, "flow_runs": {"name": {"like_": "RUN"}}}
    page = await world.post("/flow_runs/paginate", body)
    assert (page["count"], page["limit"], page["pages"], page["page"]) == (6, 4, 2, 2)
    assert [r["name"] for r in page["results"]] == ["gamma%run", "zeta-run"]
    assert page["results"][0]["state_type"] == "FAILED"
    first = await world.post("/flow_runs/paginate", {"flow_runs": {"tags": {"any_": ["a"]}}})
    assert (first["count"], first["limit"], first["pages"], first["page"]) == (3, 200, 1, 1)
    beyond = await world.post("/flow_runs/paginate", {"limit": 5, "page": 3})
    assert (beyond["results"], beyond["count"], beyond["pages"]) == ([], 6, 2)
    empty = await world.post("/flow_runs/paginate", {"limit": 0})
    assert (empty["results"], empty["pages"]) == ([], 0)
    status, answer = await world.server.request("POST", "/flow_runs/paginate", json={"page": 0})
    assert status == 422 and "$.page" in answer["detail"]


async def test_flow_run_count(world):
    assert await world.post("/flow_runs/count", {}) == 6
    assert await world.post("/flow_runs/count", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}}) == 2
    assert await world.post("/flow_runs/count", {"flows": {"name": {"any_": ["report"]}},
                                                  "flow_runs": {"tags": {"is_null_": False}}}) == 2
    assert await world.post("/flow_runs/count", {"task_runs": {"name": {"any_": ["extract", "load"]}}}) == 1


# -- task runs ------------------------------------------------------------------------------------


async def test_task_run_filter_defaults_and_response(world):
    status, tasks = await world.server.request("POST", "/task_runs/filter")
    assert status == 200
    assert [t["id"] for t in tasks] == sorted(world.tasks.values(), reverse=True)
    extract = next(t for t in tasks if t["name"] == "extract")
    assert extract["flow_run_id"] == world.runs["beta_run"] and extract["tags"] == ["t1", "t2"]
    assert (extract["state_type"], extract["state"]["state_details"]["child_flow_run_id"]) == (
        "COMPLETED", world.runs["delta-run"])
    assert extract["start_time"].startswith("2024-01-01T00:25:00")
    assert extract["end_time"].startswith("2024-01-01T00:35:00")
    for key in ("task_key", "dynamic_key", "empirical_policy", "task_inputs", "flow_run_run_count",
                "estimated_run_time", "next_scheduled_start_time"):
        assert key in extract
    assert await world.post("/task_runs/count") == 5


async def test_task_run_fields_filters(world):
    m = world.tasks_matching
    assert await m({"id": {"any_": [world.tasks["solo"], world.tasks["load"]]}}) == {"solo", "load"}
    assert await m({"name": {"any_": ["load"]}}) == {"load"}
    assert await m({"name": {"like_": "TRANS"}}) == {"transform"}
    assert await m({"tags": {"all_": ["t1", "t2"]}}) == {"extract"}
    assert await m({"tags": {"is_null_": True}}) == {"transform", "cleanup"}
    either = {"tags": {"operator": "or_", "all_": ["t2"], "is_null_": True}}
    assert await m(either) == {"extract", "solo", "transform", "cleanup"}
    assert await m({"state": {"type": {"any_": ["SCHEDULED"]}}}) == {"load", "cleanup"}
    assert await m({"state": {"name": {"any_": ["AwaitingRetry"]}}}) == {"load"}
    failed_or_retrying = {
        "state": {"operator": "or_", "type": {"any_": ["FAILED"]}, "name": {"any_": ["AwaitingRetry"]}}}
    assert await m(failed_or_retrying) == {"transform", "load"}
    # start: transform 23, extract 25, solo 45 (task runs compare start_time itself, not the expected start)
    assert await m({"start_time": {"before_": at(25)}}) == {"transform", "extract"}
    assert await m({"start_time": {"after_": at(30)}}) == {"solo"}
    assert await m({"start_time": {"is_null_": True}}) == {"load", "cleanup"}
    # end: extract 35, transform 40, solo 45
    assert await m({"end_time": {"after_": at(40)}}) == {"transform", "solo"}
    assert await m({"end_time": {"before_": at(39)}}) == {"extract"}
    assert await m({"end_time": {"is_null_": False}}) == {"extract", "transform", "solo"}
    # expected: extract 21, transform 23, solo 45, cleanup 70, load 90
    assert await m({"expected_start_time": {"after_": at(45), "before_": at(70)}}) == {"solo", "cleanup"}
    assert await m({"subflow_runs": {"exists_": True}}) == {"extract"}
    assert await m({"subflow_runs": {"exists_": False}}) == ALL_TASKS - {"extract"}


async def test_task_run_flow_run_id_filter_and_its_prefect_default(world):
    m = world.tasks_matching
    beta = world.runs["beta_run"]
    assert await m({"flow_run_id": {"any_": [beta]}}) == {"extract", "load"}
    assert await m({"flow_run_id": {"is_null_": True}}) == {"solo"}
    # is_null_ defaults to false: an empty flow_run_id filter means "has a flow run".
    assert await m({"flow_run_id": {}}) == ALL_TASKS - {"solo"}
    assert await m({"flow_run_id": {"is_null_": None}}) == ALL_TASKS
    # is_null_ true wins over any_, as in Prefect.
    assert await m({"flow_run_id": {"any_": [beta], "is_null_": True}}) == {"solo"}
    assert await m({"operator": "or_", "name": {"any_": ["solo"]}, "flow_run_id": {"any_": [beta]}}) == {
        "solo", "extract", "load"}


async def test_task_runs_filtered_by_their_flow_run_flow_and_deployment(world):
    m = world.tasks_matching
    assert await m(None, flow_runs={"name": {"any_": ["beta_run"]}}) == {"extract", "load"}
    assert await m(None, flow_runs={"id": {"any_": [world.runs["gamma%run"]]}}) == {"transform"}
    # Any flow run filter needs a flow run: the orphan task run never matches it.
    assert await m(None, flow_runs={}) == ALL_TASKS - {"solo"}
    assert await m(None, flows={"name": {"any_": ["report"]}}) == {"transform", "cleanup"}
    assert await m(None, deployments={"id": {"any_": [DEPLOYMENT_2]}}) == {"extract", "load"}
    combined = {"flows": {"name": {"any_": ["report"]}}, "flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}}
    assert await m({"tags": {"is_null_": True}}, **combined) == {"transform"}
    assert await m(None, deployments={"tags": {"all_": ["x"]}}) == set()


TASK_RUN_SORTS = {
    "EXPECTED_START_TIME_ASC": ["extract", "transform", "solo", "cleanup", "load"],
    "EXPECTED_START_TIME_DESC": ["load", "cleanup", "solo", "transform", "extract"],
    "NAME_ASC": ["cleanup", "extract", "load", "solo", "transform"],
    "NAME_DESC": ["transform", "solo", "load", "extract", "cleanup"],
}


async def test_task_run_sorts_limit_offset_count_and_paginate(world):
    assert await world.task_run_names({"sort": "ID_DESC"}) == world.ids_by_id_desc(ALL_TASKS, world.tasks)
    for sort, expected in TASK_RUN_SORTS.items():
        assert await world.task_run_names({"sort": sort}) == expected, sort
    unscheduled = world.ids_by_id_desc(ALL_TASKS - {"cleanup", "load"}, world.tasks)
    assert await world.task_run_names({"sort": "NEXT_SCHEDULED_START_TIME_ASC"}) == ["cleanup", "load", *unscheduled]
    unfinished = world.ids_by_id_desc({"load", "cleanup"}, world.tasks)
    assert await world.task_run_names({"sort": "END_TIME_DESC"}) == [*unfinished, "solo", "transform", "extract"]
    status, body = await world.server.request("POST", "/task_runs/filter", json={"sort": "START_TIME_ASC"})
    assert status == 422 and "$.sort" in body["detail"]  # not a TaskRunSort

    assert await world.task_run_names({"sort": "NAME_ASC", "limit": 2, "offset": 1}) == ["extract", "load"]
    assert await world.post("/task_runs/count", {"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}) == 2
    page = await world.post("/task_runs/paginate", {"sort": "NAME_DESC", "limit": 2, "page": 3})
    assert (page["count"], page["limit"], page["pages"], page["page"]) == (5, 2, 3, 3)
    assert [t["name"] for t in page["results"]] == ["cleanup"]


# -- the stock Prefect client ---------------------------------------------------------------------


async def test_prefect_client_filter_and_count_bodies_are_understood(world):
    """The bodies prefect.client builds (model_dump of its filter models) decode and filter."""
    from prefect.client.schemas import filters as pf
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    flow_run_filter = pf.FlowRunFilter(
        state=pf.FlowRunFilterState(type=pf.FlowRunFilterStateType(any_=["COMPLETED"])),
        tags=pf.FlowRunFilterTags(all_=["a"]),
    )
    body = {
        "flows": pf.FlowFilter(name=pf.FlowFilterName(any_=["etl"])).model_dump(mode="json"),
        "flow_runs": flow_run_filter.model_dump(mode="json", exclude_unset=True),
        "task_runs": pf.TaskRunFilter(name=pf.TaskRunFilterName(any_=["load"])).model_dump(mode="json"),
        "deployments": pf.DeploymentFilter(id=pf.DeploymentFilterId(any_=[DEPLOYMENT_2])).model_dump(mode="json"),
        "work_pools": None, "work_pool_queues": None, "sort": FlowRunSort.START_TIME_DESC.value, "limit": None,
        "offset": 0,
    }
    assert await world.flow_run_names(body) == ["beta_run"]
    del body["sort"], body["limit"], body["offset"]
    assert await world.post("/flow_runs/count", body) == 1
    task_body = {
        "flows": None, "flow_runs": pf.FlowRunFilter(id=pf.FlowRunFilterId(any_=[world.runs["beta_run"]])).model_dump(
            mode="json", exclude_unset=True),
        "task_runs": pf.TaskRunFilter(tags=pf.TaskRunFilterTags(all_=["t1"])).model_dump(mode="json"),
        "deployments": None, "sort": TaskRunSort.NAME_ASC.value, "limit": 200, "offset": 0,
    }
    assert await world.task_run_names(task_body) == ["extract", "load"]
