"""Structured logging for the runlog server and CLI: one structlog pipeline for our own events
and for stdlib loggers (asyncpg, aiohttp), JSON lines off a terminal, and no secrets in output.

    configure_logging(settings.logging_level)
    log = structlog.get_logger(__name__)
    structlog.contextvars.bind_contextvars(request_id=rid)
    log.info("flow_run_state_changed", flow_run_id=str(run_id), state="RUNNING")
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from structlog.typing import EventDict, Processor, WrappedLogger

from runlog.eventstore.urls import MASK, mask_url

from .settings import LOG_LEVELS

_SECRET_KEY_PARTS = ("password", "secret", "token", "api_key", "authorization")
# A URL anywhere in a string, up to whitespace or a quote: masking finds the "user:pass@" part.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in _SECRET_KEY_PARTS)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _URL.sub(lambda m: mask_url(m.group(0)), value) if "://" in value else value
    if isinstance(value, Mapping):
        return {k: MASK if _is_secret_key(k) else _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Mask values under secret-sounding keys, and passwords in URLs anywhere in a value."""
    for key, value in event_dict.items():
        if key.startswith("_"):
            continue  # structlog's own bookkeeping (_record, _from_structlog), not log content
        event_dict[key] = MASK if _is_secret_key(key) else _redact(value)
    return event_dict


class _RunlogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our root handler; a distinct class so reconfiguring replaces it instead of adding another."""


def command_logging_level(level: str) -> str:
    """The level a command logs at: RUNLOG_LOGGING_LEVEL, but never below WARNING unless it is DEBUG.

    What a command does in-process, opening the database or (in ephemeral mode) serving its own
    requests, is logged at INFO for a server's operator; a person running ``runlog flow-run ls``
    wants the answer, and those lines only when debugging. ``runlog server start`` sets the
    server's own level again when it starts serving.
    """
    level = level.upper()
    if level == "DEBUG":
        return level
    return max(level, "WARNING", key=LOG_LEVELS.index)


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Send structlog events and stdlib log records at LEVEL and above to STREAM (stderr).

    Calling it again replaces the previous configuration.
    """
    level = level.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown logging level {level!r}; expected one of {', '.join(LOG_LEVELS)}")
    stream = sys.stderr if stream is None else stream
    is_tty = bool(getattr(stream, "isatty", None) and stream.isatty())

    # Run for structlog events and for foreign (stdlib) records alike, so an asyncpg warning
    # inside a request carries the request id and the same timestamp and level keys.
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if is_tty:
        # ConsoleRenderer formats exceptions itself (and warns if format_exc_info ran first).
        final.append(structlog.dev.ConsoleRenderer())
    else:
        # Exceptions become text here, so redact again: their messages may quote a URL.
        final += [structlog.processors.format_exc_info, redact_secrets, structlog.processors.JSONRenderer()]

    handler = _RunlogHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _RunlogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so a later configure_logging (a test capturing output, the server
        # applying its settings after the CLI) also reaches loggers already in use.
        cache_logger_on_first_use=False,
    )


class _MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL in a header, a broken request line) at
    ERROR with a traceback, though it answers 400: the client's mistake, not the server's.
    Such a record becomes one line at INFO, like the line of any other refused request."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or not 400 <= (exc.code or 0) < 500:
            return True
        detail = " ".join(str(exc.message or exc).split())
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg, record.args = "malformed_request from %s: %s", (remote, detail)
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info = record.exc_text = None
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


def quiet_malformed_requests() -> None:
    """Install the filter on aiohttp's server logger, once per process."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _MalformedRequestFilter) for f in logger.filters):
        logger.addFilter(_MalformedRequestFilter())
