"""The ``at`` query parameter of the read routes that can look back in time.

``?at=POSITION`` or ``?at=2026-01-02T03:04:05Z`` answers from a fold of the log up to that
position (projections/time_travel.py) instead of from the live tables; the answer carries the
position it reflects in the ``X-Runlog-Position`` header. A bad ``at`` is a 422.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from runlog.projections.time_travel import BadMoment, Moment, resolve

from . import keys
from .http import Unprocessable

POSITION_HEADER = "X-Runlog-Position"
AT_QUERY = {"at": str | None}
"""For ``documented(query=...)``: a log position or an ISO 8601 time, optional."""


async def requested_moment(request: web.Request) -> Moment | None:
    """The moment ``?at=`` names, or None for the live view; Unprocessable for a bad one."""
    raw = request.query.get("at")
    if raw is None:
        return None
    try:
        return await resolve(request.config_dict[keys.STORE], raw)
    except BadMoment as exc:
        raise Unprocessable(str(exc)) from None


def shown_at(request: web.Request, moment: Moment) -> datetime:
    """The "now" a past view is shown at (what counts as a held lease, an online worker, run time
    so far): when that position was recorded, or the time asked for, but never later than the
    server's clock (an injected clock may run behind the store's own timestamps)."""
    now = request.config_dict[keys.CLOCK]()
    return now if moment.time is None else min(moment.time, now)


def at_position(response: web.Response, moment: Moment) -> web.Response:
    response.headers[POSITION_HEADER] = str(moment.position)
    return response


def not_yet(what: str, moment: Moment) -> str:
    """The 404 detail for an entity that did not exist (or no longer did) at ``moment``."""
    return f"{what} not found at log position {moment.position}"


__all__ = ["AT_QUERY", "POSITION_HEADER", "at_position", "shown_at", "not_yet", "requested_moment"]
