"""POST /api/runlog/logs/import, which ``runlog events push`` sends run log lines to, on both backends."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from runlog.api.errors import RunlogError
from runlog.api.eventlines import ExportedEvent, log_to_line, read_line
from runlog.api.schemas.logs import ExportedLog
from runlog.commands.clock import ManualClock

from ..servers import serve

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def env_for(url: str, home) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"RUNLOG_HOME": str(home), "RUNLOG_DATABASE_URL": url}


async def read_logs(server) -> list:  # type: ignore[no-untyped-def]
    status, logs = await server.request("POST", "/logs/filter", json={})
    assert status == 200
    return logs


def log_line(**fields: object) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "name": "n", "level": 20, "message": "m",
            "timestamp": "2024-05-01T00:00:00Z", **fields}


async def test_the_log_import_endpoint_keeps_ids_and_created_and_stores_each_id_once(tmp_path, store_url):
    async with serve(env_for(store_url, tmp_path), clock=ManualClock(T0)) as server:
        kept = log_line(created="2023-01-02T03:04:05.123456Z", message="kept")
        fresh = log_line(message="no created: import time")
        status, answer = await server.request("POST", "/runlog/logs/import", json=[kept, fresh, kept])
        assert status == 200 and answer == {"imported": 2, "skipped": 1}
        status, answer = await server.request("POST", "/runlog/logs/import", json=[fresh, kept])
        assert status == 200 and answer == {"imported": 0, "skipped": 2}
        stored = {log["message"]: log for log in await read_logs(server)}
    assert set(stored) == {"kept", "no created: import time"}
    assert stored["kept"]["id"] == kept["id"]
    assert stored["kept"]["created"].startswith("2023-01-02T03:04:05.123456")
    assert datetime.fromisoformat(stored["no created: import time"]["created"]) == T0


async def test_the_log_import_endpoint_refuses_a_bad_batch_whole_with_a_detail(tmp_path, store_url):
    async with serve(env_for(store_url, tmp_path)) as server:
        good, bad = log_line(), log_line(id="not-a-uuid")
        status, answer = await server.request("POST", "/runlog/logs/import", json=[good, bad])
        assert status == 422 and "$[1].id" in answer["detail"]
        status, answer = await server.request("POST", "/runlog/logs/import", json=[log_line(level="high")])
        assert status == 422 and "level" in answer["detail"]
        assert await read_logs(server) == []


def test_export_lines_tell_log_lines_from_events_by_the_record_mark_alone():
    log = ExportedLog(id=uuid.uuid4(), name="n", level=20, message="m", timestamp=T0, created=T0)
    assert read_line(log_to_line(log), 1) == log
    event = {"stream_id": "s", "id": str(uuid.uuid4()), "type": "t", "data": {"record": "log"}}
    assert isinstance(read_line(json.dumps(event).encode(), 2), ExportedEvent)
    with pytest.raises(RunlogError, match="line 3: unknown record 'metric'"):
        read_line(json.dumps({**event, "record": "metric"}).encode(), 3)
    with pytest.raises(RunlogError, match="line 4: not an exported log line"):
        read_line(b'{"record": "log", "id": "x"}', 4)
