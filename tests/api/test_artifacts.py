"""/artifacts over a real server on both backends: Prefect's routes, shapes and "latest per key"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


from runlog.api import keys
from runlog.projections.artifacts import collection_id_for
from runlog.schema import events as catalogue


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def assert_detail(status: int, answer, expected: int) -> None:
    assert status == expected, answer
    assert isinstance(answer, dict) and answer.get("detail"), answer


async def create(server, **body) -> dict:
    status, answer = await server.request("POST", "/artifacts/", json=body)
    assert status == 201, answer
    return answer


async def latest(server, key: str) -> tuple[int, dict]:
    return await server.request("GET", f"/artifacts/{key}/latest")


async def new_flow_run(server, name: str) -> dict:
    status, flow = await server.request("POST", "/flows/", json={"name": "artifact-flow"})
    assert status in (200, 201), flow
    status, run = await server.request("POST", "/flow_runs/", json={"flow_id": flow["id"], "name": name})
    assert status == 201, run
    return run


async def test_create_answers_201_with_prefects_shape_and_reads_back_by_id(server) -> None:
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {"key": "report", "type": "table", "description": "**rows**", "data": {"rows": [[1, "a"]], "n": 2.5},
            "metadata_": {"source": "db"}, "flow_run_id": run_id, "task_run_id": task_id}
    created = await create(server, **body)
    assert {k: created[k] for k in body} == body
    assert set(created) == set(body) | {"id", "created", "updated"}
    assert created["created"] == created["updated"] == "2026-03-01T12:00:00Z"
    status, read = await server.request("GET", f"/artifacts/{created['id']}")
    assert status == 200 and read == created
    minimal = await create(server)
    assert minimal["key"] is None and minimal["data"] is None and minimal["type"] is None


async def test_bad_bodies_and_ids_get_422_and_unknown_ids_404(server) -> None:
    for body in ({"key": "Upper"}, {"key": "under_score"}, {"key": "k" * 2001}, {"colour": "red"},
                 {"metadata_": {"n": 1}}, {"flow_run_id": "not-a-uuid"}, {"type": "a\u0000b"}):
        status, answer = await server.request("POST", "/artifacts/", json=body)
        assert_detail(status, answer, 422)
    for method in ("GET", "PATCH", "DELETE"):
        status, answer = await server.request(method, "/artifacts/not-a-uuid", json={})
        assert_detail(status, answer, 422)
        status, answer = await server.request(method, f"/artifacts/{uuid.uuid4()}", json={})
        assert_detail(status, answer, 404)
    status, answer = await latest(server, "no-such-key")
    assert_detail(status, answer, 404)
    status, answer = await server.request("POST", "/artifacts/count")
    assert status == 200 and answer == 0  # nothing refused was stored


async def test_long_metadata_values_keep_their_first_500_characters_as_in_prefect(server) -> None:
    created = await create(server, metadata_={"long": "x" * 600, "short": "y" * 500})
    assert created["metadata_"] == {"long": "x" * 500 + "...", "short": "y" * 500}
    await server.request("PATCH", f"/artifacts/{created['id']}", json={"metadata_": {"long": "z" * 501}})
    assert (await server.request("GET", f"/artifacts/{created['id']}"))[1]["metadata_"] == {"long": "z" * 500 + "..."}


async def test_the_latest_artifact_of_a_key_is_the_newest_under_a_stable_collection_id(server, clock) -> None:
    first = await create(server, key="daily", type="markdown", data="# one")
    clock.advance(10)
    second = await create(server, key="daily", type="table", data="[]", description="two")
    await create(server, data="no key")  # artifacts without a key have no latest row
    status, answer = await latest(server, "daily")
    # As in Prefect: the collection's id and creation time, the latest artifact's everything else.
    assert status == 200
    assert answer["id"] == str(collection_id_for(uuid.UUID(first["id"]))) != first["id"]
    assert answer["created"] == first["created"] and answer["updated"] == second["updated"]
    assert (answer["type"], answer["data"], answer["description"]) == ("table", "[]", "two")
    status, collections = await server.request("POST", "/artifacts/latest/filter", json={})
    assert status == 200 and len(collections) == 1
    assert collections[0]["latest_id"] == second["id"] and collections[0]["key"] == "daily"
    assert collections[0]["id"] == answer["id"]
    assert (await server.request("POST", "/artifacts/latest/count", json={}))[1] == 1
    assert (await server.request("POST", "/artifacts/count", json={}))[1] == 3


async def test_patching_the_latest_shows_in_its_key_and_patching_an_older_one_does_not(server, clock) -> None:
    older = await create(server, key="progress", type="progress", data=0.0)
    newer = await create(server, key="progress", type="progress", data=10.0)
    clock.advance(3)
    assert (await server.request("PATCH", f"/artifacts/{newer['id']}", json={"data": 55.5}))[0] == 204
    status, answer = await latest(server, "progress")
    assert answer["data"] == 55.5 and answer["updated"] == "2026-03-01T12:00:03Z"
    assert (await server.request("PATCH", f"/artifacts/{older['id']}", json={"data": 99.0}))[0] == 204
    assert (await latest(server, "progress"))[1]["data"] == 55.5
    read = (await server.request("GET", f"/artifacts/{older['id']}"))[1]
    assert read["data"] == 99.0 and read["type"] == "progress"
    # Only the fields sent change; an explicit null sets one to null.
    await server.request("PATCH", f"/artifacts/{newer['id']}", json={"description": "half", "metadata_": None})
    await server.request("PATCH", f"/artifacts/{newer['id']}", json={"description": None})
    read = (await server.request("GET", f"/artifacts/{newer['id']}"))[1]
    assert read["data"] == 55.5 and read["description"] is None and read["metadata_"] is None
    status, answer = await server.request("PATCH", f"/artifacts/{newer['id']}", json={"key": "other"})
    assert_detail(status, answer, 422)


async def test_deleting_the_latest_hands_its_key_to_the_newest_left_then_removes_it(server, clock) -> None:
    first = await create(server, key="chart", data="1")
    clock.advance(1)
    second = await create(server, key="chart", data="2")
    clock.advance(1)
    third = await create(server, key="chart", data="3")
    collection_id = (await latest(server, "chart"))[1]["id"]
    assert (await server.request("DELETE", f"/artifacts/{second['id']}"))[0] == 204  # not the latest
    assert (await latest(server, "chart"))[1]["data"] == "3"
    assert (await server.request("DELETE", f"/artifacts/{third['id']}"))[0] == 204
    status, answer = await latest(server, "chart")
    assert status == 200 and answer["data"] == "1" and answer["id"] == collection_id
    assert answer["created"] == first["created"]  # Prefect copies the new latest's creation time
    _, collections = await server.request("POST", "/artifacts/latest/filter", json={})
    assert [c["latest_id"] for c in collections] == [first["id"]]
    assert (await server.request("DELETE", f"/artifacts/{first['id']}"))[0] == 204
    status, answer = await latest(server, "chart")
    assert_detail(status, answer, 404)
    assert (await server.request("POST", "/artifacts/latest/count", json={}))[1] == 0
    status, answer = await server.request("DELETE", f"/artifacts/{first['id']}")
    assert_detail(status, answer, 404)


async def test_artifact_filters_by_key_type_runs_and_id_are_prefects(server, clock) -> None:
    run_a, run_b = await new_flow_run(server, "run-a"), await new_flow_run(server, "run-b")
    task_id = str(uuid.uuid4())
    made = {}
    for name, body in (
        ("report-a", {"key": "report", "type": "markdown", "flow_run_id": run_a["id"]}),
        ("report-b", {"key": "report", "type": "markdown", "flow_run_id": run_b["id"], "task_run_id": task_id}),
        ("table", {"key": "table-x", "type": "table", "flow_run_id": run_a["id"]}),
        ("link", {"key": "link", "type": "markdown"}),
        ("keyless", {"type": "image"}),
    ):
        made[name] = await create(server, data=name, **body)
        clock.advance(1)

    async def names(body: dict, path: str = "/artifacts/filter") -> list[str]:
        status, answer = await server.request("POST", path, json=body)
        assert status == 200, answer
        count_path = path.replace("filter", "count")
        count_body = {k: v for k, v in body.items() if k not in ("sort", "limit", "offset")}
        status, count = await server.request("POST", count_path, json=count_body)
        assert status == 200
        if "limit" not in body and "offset" not in body:
            assert count == len(answer), (body, count, answer)
        return [a["data"] for a in answer]

    by_key = {"sort": "KEY_ASC"}
    assert await names({"sort": "CREATED_DESC"}) == ["keyless", "link", "table", "report-b", "report-a"]
    assert await names(by_key) == ["link", "report-b", "report-a", "table", "keyless"]
    assert await names({"sort": "KEY_DESC", "limit": 2}) == ["keyless", "table"]
    assert await names({"sort": "CREATED_DESC", "offset": 3}) == ["report-b", "report-a"]
    assert await names({"artifacts": {"key": {"any_": ["report"]}}} | by_key) == ["report-b", "report-a"]
    assert await names({"artifacts": {"key": {"like_": "RE"}}} | by_key) == ["report-b", "report-a"]
    assert await names({"artifacts": {"key": {"like_": "t%e"}}} | by_key) == ["table"]
    assert await names({"artifacts": {"key": {"exists_": False}}}) == ["keyless"]
    assert await names({"artifacts": {"type": {"any_": ["table", "image"]}}} | by_key) == ["table", "keyless"]
    assert await names({"artifacts": {"type": {"not_any_": ["markdown"]}}} | by_key) == ["table", "keyless"]
    assert await names({"artifacts": {"flow_run_id": {"any_": [run_a["id"]]}}} | by_key) == ["report-a", "table"]
    assert await names({"artifacts": {"task_run_id": {"any_": [task_id]}}}) == ["report-b"]
    assert await names({"artifacts": {"id": {"any_": [made["link"]["id"]]}}}) == ["link"]
    assert await names({"artifacts": {"operator": "or_", "type": {"any_": ["image"]}, "key": {"any_": ["link"]}}}
                       | by_key) == ["link", "keyless"]
    assert await names({"flow_runs": {"name": {"any_": ["run-b"]}}}) == ["report-b"]
    assert await names({"flows": {"name": {"any_": ["artifact-flow"]}}} | by_key) == ["report-b", "report-a", "table"]
    assert await names({"artifacts": {"key": {"like_": "'; DROP TABLE artifacts; --"}}}) == []
    # The same filters over the latest artifact of each key.
    latest_path = "/artifacts/latest/filter"
    assert await names({"sort": "KEY_ASC"}, latest_path) == ["link", "report-b", "table"]
    assert await names({"artifacts": {"type": {"any_": ["markdown"]}}, "sort": "KEY_ASC"}, latest_path) == [
        "link", "report-b"]
    assert await names({"artifacts": {"latest_id": {"any_": [made["table"]["id"]]}}}, latest_path) == ["table"]
    assert await names({"flow_runs": {"name": {"any_": ["run-a"]}}}, latest_path) == ["table"]
    assert await names({"artifacts": {"key": {"exists_": True}}, "sort": "UPDATED_DESC"}, latest_path) == [
        "link", "table", "report-b"]


async def test_bad_limits_and_unknown_filter_fields_get_422(server) -> None:
    for path in ("/artifacts/filter", "/artifacts/latest/filter"):
        for body in ({"limit": 201}, {"limit": -1}, {"offset": -1}, {"sort": "SIDEWAYS"},
                     {"artifacts": {"key": {"startswith_": "x"}}}):
            status, answer = await server.request("POST", path, json=body)
            assert_detail(status, answer, 422)


async def test_deployment_criteria_other_than_id_match_no_artifact(server) -> None:
    # runlog knows a deployment only by its id (as run filters do): its name or tags match none.
    await create(server, key="deployed", data=1)
    for path in ("/artifacts/filter", "/artifacts/latest/filter"):
        status, answer = await server.request("POST", path, json={"deployments": {"name": {"any_": ["d"]}}})
        assert (status, answer) == (200, [])
    status, answer = await server.request("POST", "/artifacts/count", json={"deployments": {"tags": {"all_": ["x"]}}})
    assert (status, answer) == (200, 0)
    assert (await server.request("POST", "/artifacts/count", json={}))[1] == 1


async def test_each_artifact_is_its_own_stream_of_events(server) -> None:
    created = await create(server, key="evented", data=1)
    await server.request("PATCH", f"/artifacts/{created['id']}", json={"data": 2})
    await server.request("DELETE", f"/artifacts/{created['id']}")
    store = server.app[keys.STORE]
    records = [r async for r in store.read_stream(f"artifact-{created['id']}")]
    assert [r.type for r in records] == ["artifact.created", "artifact.updated", "artifact.deleted"]
    assert catalogue.decode(records[1].data).changes == {"data": 2}
