"""/variables over a real server on both backends: Prefect's routes, limits and status codes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from runlog.api import keys
from runlog.schema import events as catalogue


START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def create(server, name: str, value, tags=None) -> dict:
    body = {"name": name, "value": value} | ({} if tags is None else {"tags": tags})
    status, answer = await server.request("POST", "/variables/", json=body)
    assert status == 201, answer
    return answer


async def variable_events(server) -> list[catalogue.AnyEvent]:
    store = server.app[keys.STORE]
    return [catalogue.decode(r.data) async for r in store.read_all() if r.type.startswith("variable.")]


def assert_detail(status: int, answer, expected: int) -> None:
    assert status == expected, answer
    assert isinstance(answer, dict) and answer.get("detail"), answer


async def test_any_json_value_is_stored_and_read_back_by_id_and_by_name(server) -> None:
    values = {"a-string": "text", "an_int": 42, "a-float": 2.5, "a-bool": False, "an-object": {"k": [1, {"x": None}]},
              "a-list": [1, "two", 3.0], "a-null": None, "": "empty names are Prefect's too"}
    for name, value in values.items():
        created = await create(server, name, value, tags=["t1"])
        assert created["name"] == name and created["value"] == value and created["tags"] == ["t1"]
        assert created["created"] == created["updated"] == "2026-03-01T12:00:00Z"
        status, by_id = await server.request("GET", f"/variables/{created['id']}")
        assert status == 200 and by_id == created
        status, by_name = await server.request("GET", f"/variables/name/{name}")
        if name:  # "/variables/name/" is no route for an empty name
            assert status == 200 and by_name == created


async def test_a_taken_name_gets_409_and_appends_nothing(server) -> None:
    await create(server, "threshold", 1)
    before = await variable_events(server)
    status, answer = await server.request("POST", "/variables/", json={"name": "threshold", "value": 2})
    assert_detail(status, answer, 409)
    assert answer["detail"] == "A variable with the name 'threshold' already exists."
    assert await variable_events(server) == before


async def test_concurrent_creations_of_one_name_let_exactly_one_succeed(server) -> None:
    answers = await asyncio.gather(*(
        server.request("POST", "/variables/", json={"name": "contested", "value": i}) for i in range(12)
    ))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * 11, answers
    status, count = await server.request("POST", "/variables/count", json={"variables": {"name": {"any_": ["contested"]}}})
    assert status == 200 and count == 1
    assert sum(isinstance(e, catalogue.VariableCreated) for e in await variable_events(server)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Upper", "value": 1}, "name"),
        ({"name": "has space", "value": 1}, "name"),
        ({"name": "dots.no", "value": 1}, "name"),
        ({"name": "a" * 256, "value": 1}, "name"),
        ({"name": "no-value"}, "value"),
        ({"name": "extra", "value": 1, "colour": "red"}, "colour"),
        ({"name": "tags", "value": 1, "tags": "not-a-list"}, "tags"),
        ({"name": "nul", "value": 1, "tags": ["a\u0000b"]}, "NUL"),
    ],
)
async def test_a_bad_name_body_or_tag_gets_422_naming_it(server, body, field) -> None:
    status, answer = await server.request("POST", "/variables/", json=body)
    assert_detail(status, answer, 422)
    assert field in str(answer["detail"])
    assert await variable_events(server) == []


async def test_names_of_255_characters_and_values_of_5000_json_characters_are_the_limits(server) -> None:
    await create(server, "a" * 255, 1)
    await create(server, "at-limit", "x" * 4998)  # 5,000 characters as JSON, quotes included
    status, answer = await server.request("POST", "/variables/", json={"name": "over-limit", "value": "x" * 4999})
    assert_detail(status, answer, 422)
    assert answer["detail"] == "Variable value must be less than 5000 characters"
    status, answer = await server.request("POST", "/variables/", json={"name": "big-list", "value": list(range(2000))})
    assert_detail(status, answer, 422)
    # Prefect measures the JSON in bytes: 2,500 two-byte characters are 5,002 bytes with the quotes.
    await create(server, "accents-at-limit", "\u00e9" * 2499)
    status, answer = await server.request("POST", "/variables/", json={"name": "accents", "value": "\u00e9" * 2500})
    assert_detail(status, answer, 422)


async def test_patch_by_id_and_by_name_change_only_what_was_sent(server, clock) -> None:
    created = await create(server, "config", {"a": 1}, tags=["x"])
    clock.advance(5)
    status, _ = await server.request("PATCH", f"/variables/{created['id']}", json={"value": [1, 2]})
    assert status == 204
    status, read = await server.request("GET", f"/variables/{created['id']}")
    assert read["value"] == [1, 2] and read["tags"] == ["x"] and read["name"] == "config"
    assert read["created"] == "2026-03-01T12:00:00Z" and read["updated"] == "2026-03-01T12:00:05Z"
    status, _ = await server.request("PATCH", "/variables/name/config", json={"tags": ["y", "z"], "name": "renamed"})
    assert status == 204
    status, read = await server.request("GET", "/variables/name/renamed")
    assert status == 200 and read["tags"] == ["y", "z"] and read["value"] == [1, 2] and read["id"] == created["id"]
    assert (await server.request("GET", "/variables/name/config"))[0] == 404
    status, _ = await server.request("PATCH", "/variables/name/renamed", json={"value": None})
    assert status == 204
    assert (await server.request("GET", "/variables/name/renamed"))[1]["value"] is None


async def test_patch_errors_are_404_409_and_422(server) -> None:
    first = await create(server, "first", 1)
    await create(server, "second", 2)
    status, answer = await server.request("PATCH", f"/variables/{uuid.uuid4()}", json={"value": 1})
    assert_detail(status, answer, 404)
    status, answer = await server.request("PATCH", "/variables/name/nobody", json={"value": 1})
    assert_detail(status, answer, 404)
    status, answer = await server.request("PATCH", "/variables/name/first", json={"name": "second"})
    assert_detail(status, answer, 409)
    for body in ({"name": None}, {"tags": None}, {"name": "Bad Name"}, {"value": "x" * 5000}, {"unknown": 1}):
        status, answer = await server.request("PATCH", f"/variables/{first['id']}", json=body)
        assert_detail(status, answer, 422)
    status, answer = await server.request("PATCH", "/variables/not-a-uuid", json={"value": 1})
    assert_detail(status, answer, 422)
    assert (await server.request("GET", f"/variables/{first['id']}"))[1] == first  # nothing changed


async def test_delete_by_id_and_by_name_then_404_and_the_name_is_free_again(server) -> None:
    one = await create(server, "one", 1)
    await create(server, "two", 2)
    assert (await server.request("DELETE", f"/variables/{one['id']}"))[0] == 204
    assert (await server.request("DELETE", "/variables/name/two"))[0] == 204
    for path in (f"/variables/{one['id']}", "/variables/name/two"):
        status, answer = await server.request("GET", path)
        assert_detail(status, answer, 404)
        status, answer = await server.request("DELETE", path)
        assert_detail(status, answer, 404)
    again = await create(server, "one", "again")
    assert again["id"] != one["id"]


async def test_filter_and_count_by_id_name_and_tags_with_prefect_sorts(server, clock) -> None:
    made = {}
    for name, tags in (("alpha_1", ["prod", "db"]), ("alpha_2", ["prod"]), ("beta", []), ("gamma", ["db"])):
        made[name] = await create(server, name, name, tags=tags)
        clock.advance(1)

    async def names(body: dict) -> list[str]:
        status, answer = await server.request("POST", "/variables/filter", json=body)
        assert status == 200, answer
        status, count = await server.request("POST", "/variables/count", json={"variables": body.get("variables")})
        assert status == 200
        if "limit" not in body and "offset" not in body:
            assert count == len(answer)
        return [v["name"] for v in answer]

    assert await names({}) == ["alpha_1", "alpha_2", "beta", "gamma"]
    assert await names({"sort": "NAME_DESC"}) == ["gamma", "beta", "alpha_2", "alpha_1"]
    assert await names({"sort": "CREATED_DESC", "limit": 2, "offset": 1}) == ["beta", "alpha_2"]
    assert await names({"limit": None, "offset": None, "sort": None, "variables": None}) == [
        "alpha_1", "alpha_2", "beta", "gamma"]
    assert await names({"variables": {"name": {"any_": ["beta", "gamma", "nope"]}}}) == ["beta", "gamma"]
    # like_ is a case-insensitive substring match where % and _ are wildcards, as in Prefect.
    assert await names({"variables": {"name": {"like_": "ALPHA"}}}) == ["alpha_1", "alpha_2"]
    assert await names({"variables": {"name": {"like_": "a_1"}}}) == ["alpha_1"]
    assert await names({"variables": {"name": {"like_": "ph_"}}}) == ["alpha_1", "alpha_2"]
    assert await names({"variables": {"tags": {"all_": ["prod", "db"]}}}) == ["alpha_1"]
    assert await names({"variables": {"tags": {"all_": ["db"]}}}) == ["alpha_1", "gamma"]
    assert await names({"variables": {"tags": {"is_null_": True}}}) == ["beta"]
    assert await names({"variables": {"tags": {"is_null_": False}}}) == ["alpha_1", "alpha_2", "gamma"]
    assert await names({"variables": {"id": {"any_": [made["beta"]["id"]]}}}) == ["beta"]
    assert await names({"variables": {"operator": "or_", "name": {"any_": ["beta"]}, "tags": {"all_": ["db"]}}}) == [
        "alpha_1", "beta", "gamma"]
    # A value that looks like SQL is only ever a bound parameter.
    assert await names({"variables": {"name": {"like_": "'; DROP TABLE variables; --"}}}) == []
    assert len(await names({})) == 4


async def test_a_bad_filter_limit_or_filter_field_gets_422(server) -> None:
    for body in ({"limit": 201}, {"limit": -1}, {"offset": -1}, {"sort": "SIDEWAYS"},
                 {"variables": {"name": {"ilike_": "x"}}}):
        status, answer = await server.request("POST", "/variables/filter", json=body)
        assert_detail(status, answer, 422)
    status, answer = await server.request("POST", "/variables/count", json={"variables": {"bogus": {}}})
    assert_detail(status, answer, 422)


async def test_every_variable_write_is_an_event_on_the_variables_stream(server) -> None:
    created = await create(server, "logged", 1)
    await server.request("PATCH", "/variables/name/logged", json={"value": 2})
    await server.request("DELETE", f"/variables/{created['id']}")
    store = server.app[keys.STORE]
    records = [r async for r in store.read_stream("variables")]
    assert [r.type for r in records] == ["variable.created", "variable.updated", "variable.deleted"]
    updated = catalogue.decode(records[1].data)
    assert isinstance(updated, catalogue.VariableUpdated) and updated.changes == {"value": 2}
