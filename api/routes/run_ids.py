"""GET /api/runlog/flow_runs/ids: flow runs by the start of their id.

runlog's own extension (not part of Prefect's API), used by the CLI to accept a short id
prefix wherever it takes a run id, in both modes. Prefect's filters match whole ids only.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from .. import keys
from ..http import Unprocessable, json_response
from ..openapi import documented
from ..queries import run_ids as queries

routes = web.RouteTableDef()

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


class RunIdMatch(msgspec.Struct):
    id: str
    name: str
    state_name: str | None


def _params(request: web.Request) -> tuple[str, int]:
    prefix = request.query.get("prefix")
    if prefix is None:
        raise Unprocessable("query parameter 'prefix' is required")
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise Unprocessable(f"query parameter 'limit' is not a number: {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"query parameter 'limit' must be between 1 and {MAX_LIMIT}; got {limit}")
    return prefix, limit


_DESCRIPTION = (
    "Flow runs whose id starts with `prefix` (at least 4 hex digits; hyphens optional), in id order, at "
    f"most `limit` (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}). runlog's own endpoint, used by "
    "the CLI to accept short ids."
)
_QUERY = {"prefix": str, "limit": int | None}


@routes.get("/runlog/flow_runs/ids")
@documented(summary="Flow runs whose id starts with a prefix", description=_DESCRIPTION,
            response=list[RunIdMatch], query=_QUERY, errors={422: "a prefix that is not hex, or too short"})
async def flow_run_ids(request: web.Request) -> web.Response:
    prefix, limit = _params(request)
    try:
        found = await queries.flow_runs(request.config_dict[keys.STORE], prefix, limit)
    except queries.BadPrefix as exc:
        raise Unprocessable(str(exc)) from None
    return json_response([RunIdMatch(r.id, r.name, r.state_name) for r in found])

