"""POST /flow_runs/history, /task_runs/history, /flow_runs/lateness and the /ui/ summaries over a
real server on both backends: a small history seeded through the API with fixed state times,
read with the server's manual clock at 12:00 (the runs are between 10:00 and 11:40)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import START

T0 = START - timedelta(hours=2)  # 10:00, two hours before the server's "now"
NOW = START


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def state(kind: str, minutes: float, scheduled: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "timestamp": at(minutes)}
    if scheduled is not None:
        body["state_details"] = {"scheduled_time": at(scheduled)}
    return body


class World:
    def __init__(self, server) -> None:
        self.server = server
        self.flows: dict[str, str] = {}
        self.runs: dict[str, str] = {}
        self.tasks: dict[str, str] = {}

    async def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = await self.server.request("POST", path, json=body)
        assert status == expect, (path, body, status, answer)
        return answer

    async def flow_run(self, name: str, flow: str, *states: dict[str, Any], **fields: Any) -> None:
        body = {"flow_id": self.flows[flow], "name": name, "state": states[0], **fields}
        self.runs[name] = (await self.post("/flow_runs/", body, expect=201))["id"]
        for later in states[1:]:
            await self.post(f"/flow_runs/{self.runs[name]}/set_state", {"state": later, "force": True}, expect=201)

    async def task_run(self, name: str, flow_run: str, *states: dict[str, Any]) -> None:
        body = {"task_key": name, "dynamic_key": "0", "name": name, "flow_run_id": self.runs[flow_run],
                "state": states[0]}
        self.tasks[name] = (await self.post("/task_runs/", body, expect=201))["id"]
        for later in states[1:]:
            await self.post(f"/task_runs/{self.tasks[name]}/set_state", {"state": later, "force": True}, expect=201)


@pytest.fixture
async def world(server):
    """
    flow run  flow    states (minutes after 10:00)                  expected  lateness s  run time s
    a         etl     Pending 1, Running 3, Completed 8 (tag x)     1         120         300
    b         etl     Pending 2, Running 4, Failed 6                2         120         120
    c         etl     Scheduled 0 for 12                            12        6480 (now)  0
    d         report  Pending 27, Running 28 (still running)        27        60          5520 (now)
    e         etl     Scheduled 0 for 40                            40        4800 (now)  0
    f         report  Scheduled 0 for 5, Cancelled 6                5         60          0
    g         report  Completed 100 (subflow of b's task wrapper)   100       0           0
    task runs of a: t1 Pending 1, Running 2, Completed 4; t2 Running 3, Crashed 5; t3 Running 4;
    t4 Pending 5, Cancelled 6; of b: wrapper Running 100 (g's parent, Completed with it).
    """
    w = World(server)
    for name in ("etl", "report", "idle"):
        w.flows[name] = (await w.post("/flows/", {"name": name}, expect=201))["id"]
    for deployment in ("d1", "d2"):
        await w.post("/deployments/", {"name": deployment, "flow_id": w.flows["etl"]}, expect=201)
    await w.flow_run("a", "etl", state("PENDING", 1), state("RUNNING", 3), state("COMPLETED", 8), tags=["x"])
    await w.flow_run("b", "etl", state("PENDING", 2), state("RUNNING", 4), state("FAILED", 6))
    await w.flow_run("c", "etl", state("SCHEDULED", 0, scheduled=12))
    await w.flow_run("d", "report", state("PENDING", 27), state("RUNNING", 28))
    await w.flow_run("e", "etl", state("SCHEDULED", 0, scheduled=40))
    await w.flow_run("f", "report", state("SCHEDULED", 0, scheduled=5), state("CANCELLED", 6))
    await w.task_run("t1", "a", state("PENDING", 1), state("RUNNING", 2), state("COMPLETED", 4))
    await w.task_run("t2", "a", state("RUNNING", 3), state("CRASHED", 5))
    await w.task_run("t3", "a", state("RUNNING", 4))
    await w.task_run("t4", "a", state("PENDING", 5), state("CANCELLED", 6))
    await w.task_run("wrapper", "b", state("RUNNING", 100))
    await w.flow_run("g", "report", state("COMPLETED", 100), parent_task_run_id=w.tasks["wrapper"])
    return w


def history_body(start: float, end: float, interval: float, **filters: Any) -> dict[str, Any]:
    return {"history_start": at(start), "history_end": at(end), "history_interval_seconds": interval, **filters}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def tallies(bucket: dict[str, Any]) -> dict[tuple[str, str], tuple[int, float, float]]:
    return {
        (s["state_type"], s["state_name"]): (s["count_runs"], s["sum_estimated_run_time"], s["sum_estimated_lateness"])
        for s in bucket["states"]
    }


async def test_flow_run_history_counts_runs_by_current_state_in_buckets_placed_by_expected_start(world):
    buckets = await world.post("/flow_runs/history", history_body(0, 25, 600))
    # ceil(25 / 10) buckets, the last running past the end to 10:30.
    assert [(utc(b["interval_start"]), utc(b["interval_end"])) for b in buckets] == [
        (T0, T0 + timedelta(minutes=10)), (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)),
        (T0 + timedelta(minutes=20), T0 + timedelta(minutes=30)),
    ]
    assert buckets[0]["interval_start"].endswith("Z")
    assert tallies(buckets[0]) == {
        ("COMPLETED", "Completed"): (1, 300.0, 120.0),
        ("FAILED", "Failed"): (1, 120.0, 120.0),
        # Cancelled without running: its start time is its end time, a minute after expected.
        ("CANCELLED", "Cancelled"): (1, 0.0, 60.0),
    }
    # Never started and past due: late until the server's "now", 12:00.
    assert tallies(buckets[1]) == {("SCHEDULED", "Scheduled"): (1, 0.0, 6480.0)}
    # In the overhang past 10:25, still counted; a Running run's time runs to "now".
    assert tallies(buckets[2]) == {("RUNNING", "Running"): (1, 5520.0, 60.0)}


async def test_history_empty_buckets_have_no_states_and_filters_apply(world):
    buckets = await world.post("/flow_runs/history", history_body(0, 30, 600, flow_runs={"tags": {"all_": ["x"]}}))
    assert [tallies(b) for b in buckets] == [{("COMPLETED", "Completed"): (1, 300.0, 120.0)}, {}, {}]
    assert buckets[1]["states"] == []
    by_flow = await world.post("/flow_runs/history", history_body(0, 30, 1800, flows={"name": {"any_": ["report"]}}))
    assert tallies(by_flow[0]) == {
        ("CANCELLED", "Cancelled"): (1, 0.0, 60.0), ("RUNNING", "Running"): (1, 5520.0, 60.0),
    }
    # Prefect's name for the queue filter here is work_queues; a queue nothing is in matches nothing.
    none = await world.post("/flow_runs/history", history_body(0, 30, 1800, work_queues={"name": {"any_": ["nope"]}}))
    assert none[0]["states"] == []


async def test_history_answers_at_most_500_buckets_and_none_for_an_empty_range(world):
    assert len(await world.post("/flow_runs/history", history_body(0, 1000 / 60, 1))) == 500
    assert await world.post("/flow_runs/history", history_body(10, 10, 60)) == []
    assert await world.post("/flow_runs/history", history_body(10, 5, 60)) == []


@pytest.mark.parametrize(("body", "detail"), [
    (history_body(0, 10, 0.5), "History interval must not be less than 1 second."),
    (history_body(0, 10, -3), "History interval must not be less than 1 second."),
    (history_body(0, 10, 1e30), "History interval is too large."),
    (history_body(0, 10, 10**12), "History range ends after the latest representable time."),
])
async def test_history_refuses_an_interval_under_a_second_or_a_range_beyond_time_with_a_422(world, body, detail):
    for path in ("/flow_runs/history", "/task_runs/history"):
        assert await world.post(path, body, expect=422) == {"detail": detail}


async def test_history_without_history_interval_seconds_is_a_422_as_prefect_has_no_other_name_for_it(world):
    body = {"history_start": at(0), "history_end": at(10), "history_interval": 60}
    answer = await world.post("/flow_runs/history", body, expect=422)
    assert "history_interval_seconds" in str(answer["detail"])


@pytest.mark.parametrize("path", [
    "/flow_runs/history", "/task_runs/history", "/ui/task_runs/dashboard/counts", "/ui/flows/next-runs",
    "/ui/flows/count-deployments", "/ui/flow_runs/count-task-runs",
])
async def test_routes_that_need_a_body_answer_an_empty_or_malformed_one_with_a_422(server, path):
    for body in (b"", b"{", b"[]"):
        status, answer = await server.request("POST", path, data=body, headers={"Content-Type": "application/json"})
        assert status == 422 and "detail" in answer, (path, body, status, answer)


async def test_task_run_history_counts_task_runs_the_same_way(world):
    buckets = await world.post("/task_runs/history", history_body(0, 10, 600))
    assert tallies(buckets[0]) == {
        ("COMPLETED", "Completed"): (1, 120.0, 60.0),
        ("CRASHED", "Crashed"): (1, 120.0, 0.0),
        ("RUNNING", "Running"): (1, 2 * 3600 - 240.0, 0.0),
        ("CANCELLED", "Cancelled"): (1, 0.0, 60.0),
    }
    only_a = await world.post("/task_runs/history", history_body(0, 10, 600, task_runs={"name": {"any_": ["t1"]}}))
    assert tallies(only_a[0]) == {("COMPLETED", "Completed"): (1, 120.0, 60.0)}


async def test_lateness_is_the_mean_estimated_start_time_delta_in_seconds_or_null(world):
    assert await world.post("/flow_runs/lateness") == pytest.approx((120 + 120 + 6480 + 60 + 4800 + 60 + 0) / 7)
    assert await world.post("/flow_runs/lateness", {"flow_runs": {"tags": {"all_": ["x"]}}}) == 120.0
    assert await world.post("/flow_runs/lateness", {"flow_runs": {"name": {"any_": ["nothing"]}}}) is None


async def test_the_ui_scatter_lists_runs_by_expected_start_newest_first_with_duration_and_lateness(world):
    points = await world.post("/ui/flow_runs/history")
    by_id = {v: k for k, v in world.runs.items()}
    assert [by_id[p["id"]] for p in points] == ["g", "e", "d", "c", "f", "b", "a"]
    a = points[-1]
    assert (a["state_type"], utc(a["timestamp"]), a["duration"], a["lateness"]) == (
        "COMPLETED", T0 + timedelta(minutes=3), 300.0, 120.0)
    c = points[3]  # not started: placed at its expected start
    assert (utc(c["timestamp"]), c["lateness"]) == (T0 + timedelta(minutes=12), 6480.0)
    page = await world.post("/ui/flow_runs/history", {"limit": 2, "offset": 1, "sort": "NAME_ASC"})
    assert [by_id[p["id"]] for p in page] == ["b", "c"]
    await world.post("/ui/flow_runs/history", {"limit": 1001}, expect=422)
    # A null limit, as Prefect's v1 runs page sends it, is the default (FastAPI's reading of null).
    assert await world.post("/ui/flow_runs/history", {"limit": None}) == points


async def test_ui_task_run_counts_by_state_list_every_state_type(world):
    # wrapper took its subflow run's Completed state.
    assert await world.post("/ui/task_runs/count") == {
        "COMPLETED": 2, "PENDING": 0, "RUNNING": 1, "FAILED": 0, "CANCELLED": 1, "CRASHED": 1, "PAUSED": 0,
        "CANCELLING": 0, "SCHEDULED": 0,
    }
    only_a = await world.post("/ui/task_runs/count", {"flow_runs": {"id": {"any_": [world.runs["a"]]}}})
    assert only_a["RUNNING"] == 1


async def test_dashboard_counts_finished_task_runs_in_twenty_buckets_of_start_time(world):
    body = {"task_runs": {"start_time": {"after_": at(0.5), "before_": at(19.2)}}}
    counts = await world.post("/ui/task_runs/dashboard/counts", body)
    assert len(counts) == 20  # one minute each, from 10:00 to 10:19:59.999999
    expected = [{"completed": 0, "failed": 0} for _ in range(20)]
    expected[2] = {"completed": 1, "failed": 0}  # t1 started 10:02, Completed
    expected[3] = {"completed": 0, "failed": 1}  # t2 started 10:03, Crashed counts as failed
    expected[6] = {"completed": 1, "failed": 0}  # t4 Cancelled at 10:06 (its start): "completed"
    assert counts == expected
    # The state filter the client sends is replaced by "finished", as Prefect does.
    running = {"task_runs": {**body["task_runs"], "state": {"type": {"any_": ["RUNNING"]}}}}
    assert await world.post("/ui/task_runs/dashboard/counts", running) == expected


async def test_dashboard_counts_need_a_start_time_lower_bound(world):
    answer = await world.post("/ui/task_runs/dashboard/counts", {"task_runs": {}}, expect=422)
    assert answer == {"detail": "task_runs.start_time.after_ is required"}
    await world.post("/ui/task_runs/dashboard/counts", {}, expect=422)


async def test_per_flow_and_per_run_counts_answer_every_id_asked(world):
    unknown = "00000000-0000-0000-0000-000000000001"
    assert await world.post("/ui/flows/count-deployments", {"flow_ids": [world.flows["etl"], unknown]}) == {
        world.flows["etl"]: 2, unknown: 0}
    # b's one task run is the parent of the subflow run g: not a task of its own.
    assert await world.post("/ui/flow_runs/count-task-runs", {"flow_run_ids": [world.runs["a"], world.runs["b"]]}) == {
        world.runs["a"]: 4, world.runs["b"]: 0}
    assert await world.post("/ui/flows/count-deployments", {"flow_ids": []}) == {}
    await world.post("/ui/flows/count-deployments", {"flow_ids": "x"}, expect=422)


async def test_next_runs_are_each_flows_scheduled_run_due_soonest(world):
    answer = await world.post("/ui/flows/next-runs", {"flow_ids": [world.flows["etl"], world.flows["idle"]]})
    assert answer[world.flows["idle"]] is None
    nxt = answer[world.flows["etl"]]
    assert (nxt["id"], nxt["flow_id"], nxt["name"], nxt["state_type"], nxt["state_name"]) == (
        world.runs["c"], world.flows["etl"], "c", "SCHEDULED", "Scheduled")
    assert utc(nxt["next_scheduled_start_time"]) == T0 + timedelta(minutes=12)
