"""The one error boundary and the canonical log line.

Every request gets an id (bound into structlog's context) and exactly one log line when it
ends. Errors are mapped here and nowhere else: msgspec decoding errors to 422 with the field
path, missing streams to 404, an unreachable database to 503 with Retry-After (the Prefect
client retries it), and anything unexpected to a logged 500.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from runlog.eventstore import ConcurrencyError, InvalidEvent, SchemaError, StorageUnavailable, StreamNotFound

from .errors import RunlogError
from .http import json_response
from .keys import MAX_BODY_BYTES

log = structlog.get_logger("runlog.api")
_request_lines = logging.getLogger("runlog.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

RETRY_AFTER_SECONDS = 2


def _error(status: int, detail: object, **headers: str) -> web.Response:
    response = json_response({"detail": detail}, status=status)
    response.headers.update(headers)
    return response


@web.middleware
async def errors_and_logging(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        # aiohttp's own errors (unknown path, wrong method, body too large) in Prefect's shape.
        detail = exc.reason
        if exc.status == 413:
            detail = f"request body too large; the limit is {request.app[MAX_BODY_BYTES]} bytes"
        response = _error(exc.status, detail)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        return response
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        status = 422
        return _error(422, f"invalid request body: {exc}")
    except (InvalidEvent, RunlogError) as exc:
        # RunlogError: input a person got wrong (a line of an import that is not base64, say).
        status = 422
        return _error(422, str(exc))
    except StreamNotFound as exc:
        status = 404
        return _error(404, str(exc))
    except ConcurrencyError as exc:
        # Commands retry conflicts themselves; one that still conflicts is a busy resource.
        status = 409
        return _error(409, str(exc))
    except (StorageUnavailable, SchemaError) as exc:
        status = 503
        log.warning("storage_unavailable", error=str(exc))
        return _error(503, f"the database is unavailable: {exc}", **{"Retry-After": str(RETRY_AFTER_SECONDS)})
    except Exception:
        status = 500
        log.exception("unhandled_error", method=request.method, path=request.path)
        return _error(500, "internal server error; the server log has the details (request id " + request_id + ")")
    finally:
        # Checked here: at WARNING, structlog would build a bound logger per request only to drop the line.
        if _request_lines.isEnabledFor(logging.INFO):
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        structlog.contextvars.unbind_contextvars("request_id")
