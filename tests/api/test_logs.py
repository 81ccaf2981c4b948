"""Run logs: POST /logs/ stores a batch, POST /logs/filter reads it back (Prefect 3.8 shapes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from runlog.api.queries.logs import parse_text_query

from ..servers import serve

T0 = datetime(2026, 11, 21, 19, 9, 52, 804786, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


def line(message: str, seconds: float, *, level: int = 20, flow_run_id=None, task_run_id=None,
         name: str = "prefect.flow_runs") -> dict:
    return {
        "name": name, "level": level, "message": message, "timestamp": iso(T0 + timedelta(seconds=seconds)),
        "flow_run_id": None if flow_run_id is None else str(flow_run_id),
        "task_run_id": None if task_run_id is None else str(task_run_id),
    }


async def read(server, body: dict | None = None) -> list[dict]:
    status, logs = await server.request("POST", "/logs/filter", json=body or {})
    assert status == 200, logs
    return logs


async def test_a_batch_is_stored_and_read_back(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        flow_run_id, task_run_id = uuid.uuid4(), uuid.uuid4()
        batch = [
            line("flow starting with n=3", 0, flow_run_id=flow_run_id),
            line("flaky attempt 1", 1, level=30, flow_run_id=flow_run_id, task_run_id=task_run_id,
                 name="prefect.task_runs"),
        ]
        assert await server.request("POST", "/logs/", json=batch) == (201, None)
        logs = await read(server)
        assert [
            {k: v for k, v in log.items() if k not in ("id", "created", "updated")} for log in logs
        ] == batch
        for log in logs:
            uuid.UUID(log["id"])
            assert log["created"] == log["updated"]
            assert datetime.fromisoformat(log["created"]) >= T0
        assert len({log["id"] for log in logs}) == 2


async def test_an_empty_batch_is_fine(tmp_path, sqlite_url):
    async with serve(env(tmp_path, sqlite_url)) as server:
        assert await server.request("POST", "/logs/", json=[]) == (201, None)
        assert await read(server) == []


async def test_nul_characters_are_replaced_not_refused(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        batch = [line("before\x00after", 0, name="odd\x00logger")]
        assert await server.request("POST", "/logs/", json=batch) == (201, None)
        (log,) = await read(server)
        assert log["message"] == "before\ufffdafter" and log["name"] == "odd\ufffdlogger"


async def test_filters_sort_and_paging(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        run_a, run_b, task = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        batch = [
            line("a0", 0, level=10, flow_run_id=run_a),
            line("a1", 1, level=20, flow_run_id=run_a, task_run_id=task),
            line("a2", 2, level=40, flow_run_id=run_a),
            line("b3", 3, level=20, flow_run_id=run_b),
            line("b4", 4, level=50, flow_run_id=run_b),
        ]
        # Sent out of timestamp order: reads sort by timestamp, not by arrival.
        assert (await server.request("POST", "/logs/", json=batch[::-1]))[0] == 201

        async def messages(body: dict) -> list[str]:
            return [log["message"] for log in await read(server, body)]

        assert await messages({}) == ["a0", "a1", "a2", "b3", "b4"]
        assert await messages({"sort": "TIMESTAMP_DESC"}) == ["b4", "b3", "a2", "a1", "a0"]
        assert await messages({"logs": {"flow_run_id": {"any_": [str(run_a)]}}}) == ["a0", "a1", "a2"]
        assert await messages({"logs": {"flow_run_id": {"any_": []}}}) == []
        assert await messages({"logs": {"task_run_id": {"any_": [str(task)]}}}) == ["a1"]
        assert await messages({"logs": {"flow_run_id": {"any_": [str(run_a)]}, "task_run_id": {"is_null_": True}}}) \
            == ["a0", "a2"]
        assert await messages({"logs": {"task_run_id": {"is_null_": False}}}) == ["a1"]
        assert await messages({"logs": {"level": {"ge_": 20, "le_": 40}}}) == ["a1", "a2", "b3"]
        assert await messages({"logs": {"level": {"ge_": 40}}}) == ["a2", "b4"]
        window = {"after_": iso(T0 + timedelta(seconds=1)), "before_": iso(T0 + timedelta(seconds=3))}
        assert await messages({"logs": {"timestamp": window}}) == ["a1", "a2", "b3"]
        assert await messages({"logs": {"operator": "or_", "level": {"ge_": 50},
                                        "task_run_id": {"any_": [str(task)]}}}) == ["a1", "b4"]
        assert await messages({"limit": 2}) == ["a0", "a1"]
        assert await messages({"limit": 2, "offset": 2}) == ["a2", "b3"]
        assert await messages({"limit": 2, "offset": 4}) == ["b4"]
        assert await messages({"limit": 0}) == []
        assert await messages({"sort": "TIMESTAMP_DESC", "limit": 1, "offset": 1}) == ["b3"]


async def test_the_prefect_clients_filter_body_is_understood(tmp_path, sqlite_url):
    """What prefect's read_logs sends: the full LogFilter dump, nulls included."""
    async with serve(env(tmp_path, sqlite_url)) as server:
        run = uuid.uuid4()
        await server.request("POST", "/logs/", json=[line("hello", 0, flow_run_id=run), line("other", 1)])
        body = {
            "logs": {"operator": "and_", "level": None, "timestamp": None,
                     "flow_run_id": {"any_": [str(run)]}, "task_run_id": None, "text": None},
            "limit": None, "offset": 0, "sort": "TIMESTAMP_ASC",
        }
        assert [log["message"] for log in await read(server, body)] == ["hello"]


async def test_text_search(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        batch = [
            line("Connection timeout while polling", 0), line("all good", 1), line("debug: retrying", 2),
            line("50% done_now", 3, name="custom.logger"),
        ]
        await server.request("POST", "/logs/", json=batch)

        async def found(query: str) -> list[str]:
            return [log["message"] for log in await read(server, {"logs": {"text": {"query": query}}})]

        assert await found("TIMEOUT good") == ["Connection timeout while polling", "all good"]
        assert await found('"connection timeout"') == ["Connection timeout while polling"]
        assert await found("-debug") == ["Connection timeout while polling", "all good", "50% done_now"]
        assert await found("custom") == ["50% done_now"]  # the logger name is searched too
        assert await found("0%") == ["50% done_now"]  # LIKE's wildcards are matched literally
        assert await found("e_n") == ["50% done_now"]
        assert await found("   ") == [m["message"] for m in batch]


def test_text_query_syntax():
    assert parse_text_query('error -debug !info +must "a \\"b\\"" - x') == (
        ["error", 'a "b"', "x"], ["debug", "info"], ["must"],
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},  # not a list
        [{"name": "x", "level": 20, "message": "m"}],  # no timestamp
        [{**line("m", 0), "level": 2**63}],  # more than a 64-bit column holds
        [{**line("m", 0), "level": "twenty"}],  # "20" is 20, as Prefect reads it
        [{**line("m", 0), "flow_run_id": "not-a-uuid"}],
        [{**line("m", 0), "surprise": 1}],  # LogCreate forbids unknown fields, as Prefect's does
        [{**line("m", 0), "timestamp": "yesterday"}],
        None,
    ],
)
async def test_a_bad_log_batch_is_422(tmp_path, sqlite_url, body):
    async with serve(env(tmp_path, sqlite_url)) as server:
        status, response = await server.request("POST", "/logs/", json=body)
        assert status == 422 and "detail" in response
        assert await read(server) == []


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"limit": -1},
        {"offset": -1},
        {"offset": 2**64},
        {"sort": "LEVEL_ASC"},
        {"logs": {"level": {"ge_": 2**64}}},
        {"logs": {"level": {"gt_": 1}}},
        {"logs": {"operator": "xor_"}},
        {"logs": {"text": {"query": "x" * 201}}},
        {"logs": {"timestamp": {"before_": "soon"}}},
    ],
)
async def test_a_bad_filter_is_422(tmp_path, store_url, body):
    async with serve(env(tmp_path, store_url)) as server:
        status, response = await server.request("POST", "/logs/filter", json=body)
        assert status == 422 and "detail" in response


async def test_extreme_but_valid_values_are_stored(tmp_path, store_url):
    async with serve(env(tmp_path, store_url)) as server:
        batch = [
            {**line("m" * 100_000, 0), "level": -(2**63), "timestamp": "0001-01-01T00:00:00Z"},
            {**line("\U0001f600 naive time", 0), "level": 2**63 - 1, "timestamp": "9999-12-31T23:59:59.999999"},
        ]
        assert await server.request("POST", "/logs/", json=batch) == (201, None)
        logs = await read(server)
        assert [log["level"] for log in logs] == [-(2**63), 2**63 - 1]
        assert logs[1]["timestamp"] == "9999-12-31T23:59:59.999999Z"
        assert logs[1]["message"] == "\U0001f600 naive time"
