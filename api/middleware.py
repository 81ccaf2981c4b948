"""The one error boundary and the canonical log line, and the edge checks run inside them.

Every request gets an id (bound into structlog's context) and exactly one log line when it
ends. Errors are mapped here and nowhere else: msgspec decoding errors to 422 with the field
path, missing streams to 404, an unreachable database to 503 with Retry-After (the Prefect
client retries it), a client that disconnects mid-request to status 499 in its request line
(the client's doing, not a server error), and anything unexpected to a logged 500.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence

import msgspec
import structlog
from aiohttp import web

from runlog.commands.errors import BadRequest, Busy, Conflict, DomainError, Forbidden, NotFound, Unprocessable
from runlog.eventstore import (
    ConcurrencyError,
    InvalidEvent,
    SchemaError,
    StorageMisconfigured,
    StorageUnavailable,
    StreamNotFound,
    WriteRejected,
)
from runlog.projections.block_secrets import SealBroken

from .errors import RunlogError
from .http import json_response
from .keys import MAX_BODY_BYTES

log = structlog.get_logger("runlog.api")
_request_lines = logging.getLogger("runlog.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Check = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
"""An edge check (api/security.py, api/prefect_ui.py): the answer to a request it takes (a
refusal, a UI file), or None to pass the request on."""
Observe = Callable[[web.Request, int, float], None]
"""Told of every request answered: the request, its status and the seconds it took."""

# structlog's own context variable for request_id (bind_contextvars makes it once, and
# merge_contextvars puts it in every line logged in the request): set and reset directly, it
# costs a tenth of bind_contextvars and unbind_contextvars, which look it up by name each time.
_bound = structlog.contextvars.bind_contextvars(request_id=...)
_REQUEST_ID = _bound["request_id"].var
structlog.contextvars.reset_contextvars(**_bound)
del _bound

RETRY_AFTER_SECONDS = 2
CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a request whose client disconnected before it was answered; never sent."""

# The one place domain errors (runlog.commands.errors) become HTTP statuses.
_DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404, Conflict: 409, Forbidden: 403, Unprocessable: 422, Busy: 503, BadRequest: 400,
}


def _error(status: int, detail: object, **headers: str) -> web.Response:
    response = json_response({"detail": detail}, status=status)
    response.headers.update(headers)
    return response


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def new_request_id() -> str:
    """32 random hex digits, as uuid4().hex was: os.urandom's, without building a UUID
    (several times cheaper, and it is made for every request)."""
    return os.urandom(16).hex()


def edge(checks: Sequence[Check] = (), observe: Observe | None = None):  # type: ignore[no-untyped-def]
    """The app's one middleware: ``errors_and_logging`` around ``checks``, run in order before
    the handler (the auth string, CSRF, the UI's files); the first that answers a request
    answers it, else the handler does. Every request answered is given to ``observe`` (the
    metrics' counter, api/metrics.py; None when RUNLOG_METRICS_ENABLED is false).

    One middleware, not one per check: aiohttp wraps the handler once per middleware, and every
    wrapper is a coroutine frame that each resumption of the handler (after every database
    round trip) passes through again. The checks' answers and errors go through the same
    error boundary and log line as the handlers'."""
    checks = tuple(checks)

    @web.middleware
    async def errors_and_logging(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request.headers.get("X-Request-ID") or new_request_id()
        bound = _REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            for check in checks:
                response = await check(request)
                if response is not None:
                    break
            else:
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
        except DomainError as exc:
            status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
            if isinstance(exc, Busy):
                # The Prefect client retries 503 (honouring Retry-After) on every call, 409 on none.
                return _error(status, exc.detail, **{"Retry-After": str(math.ceil(exc.retry_after))})
            return _error(status, exc.detail)
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
        except WriteRejected as exc:
            # Prefect answers a write its database refuses (a broken unique or foreign key) the same way.
            status = 409
            return _error(409, f"Data integrity conflict: {exc}")
        except StorageMisconfigured as exc:
            # Not Retry-After: the operator must fix the URL or the database; retrying cannot help.
            status = 503
            log.error("storage_misconfigured", error=str(exc))
            return _error(503, f"the database is misconfigured: {exc}")
        except SealBroken as exc:
            # The operator's key does not open the stored secrets (a restore without its key): say
            # so, as the message holds neither the secret nor the token.
            status = 500
            log.error("block_key_mismatch", error=str(exc))
            return _error(500, str(exc))
        except (StorageUnavailable, SchemaError) as exc:
            status = 503
            log.warning("storage_unavailable", error=str(exc))
            return _error(503, f"the database is unavailable: {exc}", **{"Retry-After": str(RETRY_AFTER_SECONDS)})
        except Exception as exc:
            if isinstance(exc, ConnectionError) and _client_gone(request):
                # The client went away mid-request (aiohttp fails the body read with "Connection
                # lost"). The server is fine and nobody is left to answer: the request line says so
                # at INFO with nginx's 499, "client closed request", and no error is logged.
                status = CLIENT_CLOSED_REQUEST
                return _error(status, "the client closed the connection before the request was complete")
            status = 500
            log.exception("unhandled_error", method=request.method, path=request.path)
            return _error(500, "internal server error; the server log has the details (request id " + request_id + ")")
        finally:
            seconds = time.perf_counter() - started
            if observe is not None:
                observe(request, status, seconds)
            # Checked here: at WARNING, structlog would build a bound logger per request only to drop the line.
            if _request_lines.isEnabledFor(logging.INFO):
                extra = {"client_disconnected": True} if status == CLIENT_CLOSED_REQUEST else {}
                log.info(
                    "request",
                    method=request.method,
                    path=request.path,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    **extra,
                )
            _REQUEST_ID.reset(bound)

    return errors_and_logging
