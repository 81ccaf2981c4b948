"""api.logging: JSON lines off a terminal, console output on one, bound context, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog

from runlog.api.logging import configure_logging

PG_URL = "postgresql://runlog:hunter2@db.example:5432/runlog"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def capture(level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, stream=stream)
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_is_one_json_line_with_timestamp_level_and_event() -> None:
    stream = capture()
    structlog.get_logger("runlog.test").info("server_started", port=4200)
    (line,) = lines(stream)
    assert line["event"] == "server_started" and line["level"] == "info" and line["port"] == 4200
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_bound_context_vars_appear_on_every_line() -> None:
    stream = capture()
    structlog.contextvars.bind_contextvars(request_id="req-1")
    structlog.get_logger().info("request_finished", status=200)
    logging.getLogger("aiohttp.access").info("GET /api/health")
    assert [line["request_id"] for line in lines(stream)] == ["req-1", "req-1"]


def test_stdlib_records_go_through_the_same_pipeline_at_the_same_level() -> None:
    stream = capture("WARNING")
    logging.getLogger("asyncpg.pool").info("too quiet to show")
    logging.getLogger("asyncpg.pool").warning("connection lost after %d s", 3)
    structlog.get_logger().info("also_too_quiet")
    (line,) = lines(stream)
    assert line == {**line, "event": "connection lost after 3 s", "level": "warning", "logger": "asyncpg.pool"}
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize("key", ["password", "db_password", "client_secret", "token", "api_key", "Authorization"])
def test_values_under_secret_keys_are_masked(key: str) -> None:
    stream = capture()
    structlog.get_logger().info("connecting", **{key: "hunter2"}, nested={key: "hunter2", "user": "runlog"})
    (line,) = lines(stream)
    assert line[key] == "********" and line["nested"] == {key: "********", "user": "runlog"}
    assert "hunter2" not in stream.getvalue()


def test_passwords_in_urls_are_masked_wherever_they_appear() -> None:
    stream = capture()
    log = structlog.get_logger()
    log.info("store_opened", database_url=PG_URL, urls=[PG_URL])
    log.warning("retrying", detail=f"could not reach {PG_URL}: timeout")
    logging.getLogger("asyncpg").error("cannot connect to %s", PG_URL)
    try:
        raise ConnectionError(f"refused: {PG_URL}")
    except ConnectionError:
        log.exception("store_failed")
    out = stream.getvalue()
    assert "hunter2" not in out
    parsed = lines(stream)
    assert parsed[0]["database_url"] == "postgresql://runlog:********@db.example:5432/runlog"
    assert parsed[0]["urls"] == [parsed[0]["database_url"]]
    assert "ConnectionError: refused: postgresql://runlog:********@db.example" in parsed[3]["exception"]


def test_a_terminal_gets_the_console_renderer_still_without_secrets() -> None:
    stream = TTY()
    configure_logging("INFO", stream=stream)
    structlog.get_logger().info("store_opened", database_url=PG_URL, password="hunter2")
    out = stream.getvalue()
    assert "store_opened" in out and "hunter2" not in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_configuring_again_replaces_the_handler_instead_of_adding_one() -> None:
    first = capture()
    second = capture()
    structlog.get_logger().info("once")
    assert first.getvalue() == "" and len(lines(second)) == 1


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown logging level 'LOUD'"):
        configure_logging("loud", stream=io.StringIO())
