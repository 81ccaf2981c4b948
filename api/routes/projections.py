"""The read models as the operator sees them: where each stands, and rebuilding them.

GET /admin/projections answers ``projections/status.py``'s figures; POST
/admin/projections/rebuild rebuilds beside the live tables (projections/rebuild.py) and answers
as it goes, one JSON object a line: ``{"done": N, "total": M}`` now and then, then
``{"rebuilt": [...]}`` (or ``{"detail": ...}`` if it failed midway). The rebuild goes on if
the client goes away: it is safe to leave, and a rebuild stopped halfway would be resumed by
the next one anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses

import msgspec
from aiohttp import web

from runlog.projections.rebuild import RebuildBusy, UnknownProjection, check, rebuild
from runlog.projections.status import ProjectionStatus, statuses
from runlog.projections.verify import verify

from .. import keys
from ..http import decode_body, json_response
from ..openapi import documented

routes = web.RouteTableDef()

PROGRESS_SECONDS = 0.25
"""How often a rebuild's answer reports progress."""

_encoder = msgspec.json.Encoder()
_running: set[asyncio.Task] = set()  # rebuilds outliving their request are kept referenced here


class RebuildRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    names: list[str] = msgspec.field(default_factory=list)
    """The projections to rebuild; every one when empty."""


class RebuiltProjection(msgspec.Struct, kw_only=True):
    name: str
    version: int
    position: int
    events: int
    seconds: float


class RebuildLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line of a rebuild's answer: progress, then what was rebuilt or why it failed."""

    done: int | None = None
    total: int | None = None
    rebuilt: list[RebuiltProjection] | None = None
    detail: str | None = None


class VerifiedTable(msgspec.Struct, kw_only=True):
    projection: str
    table: str
    equal: bool
    live: int
    """Rows in the live table."""
    rebuilt: int
    """Rows a rebuild from the log makes."""
    only_live: list[str]
    """The first rows (as text) found only in the live table, at most VERIFY_EXAMPLES."""
    only_rebuilt: list[str]


class VerifyAnswer(msgspec.Struct, kw_only=True):
    head: int
    """The log position the tables were compared at."""
    equal: bool
    tables: list[VerifiedTable]


VERIFY_EXAMPLES = 5


def _line(value: object) -> bytes:
    return _encoder.encode(value) + b"\n"


@routes.get("/admin/projections")
@documented(summary="Every projection: kind, versions, checkpoint and lag behind the log's head",
            response=list[ProjectionStatus])
async def list_projections(request: web.Request) -> web.Response:
    return json_response(await statuses(request.config_dict[keys.STORE]))


@routes.post("/admin/projections/rebuild")
@documented(
    summary="Rebuild projections from the log beside the live tables and swap them in",
    description="Answers JSON lines: progress objects {done, total}, then {rebuilt: [...]} or {detail}.",
    request=RebuildRequest, request_required=False, response=RebuildLine, media_type="application/x-ndjson",
    errors={409: "A rebuild of these projections is already running", 422: "An unknown projection name"},
)
async def rebuild_projections(request: web.Request) -> web.StreamResponse:
    body = await decode_body(request, RebuildRequest, default=RebuildRequest())
    store = request.config_dict[keys.STORE]
    try:
        check(store, body.names)
    except UnknownProjection as exc:
        return json_response({"detail": str(exc)}, status=422)
    except RebuildBusy as exc:
        return json_response({"detail": str(exc)}, status=409)
    progress = [0, 0]

    def advanced(done: int, total: int) -> None:
        progress[:] = [done, total]

    task = asyncio.create_task(rebuild(store, body.names, on_progress=advanced))
    _running.add(task)
    task.add_done_callback(_running.discard)
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    shown = None
    while True:
        done, _ = await asyncio.wait({task}, timeout=PROGRESS_SECONDS)
        if progress != shown:
            shown = list(progress)
            await response.write(_line({"done": shown[0], "total": shown[1]}))
        if done:
            break
    try:
        rebuilt = task.result()
    except Exception as exc:  # noqa: BLE001 - the answer has begun: the error is its last line
        await response.write(_line({"detail": f"the rebuild failed: {exc}"}))
    else:
        await response.write(_line({"rebuilt": [RebuiltProjection(**dataclasses.asdict(r)) for r in rebuilt]}))
    await response.write_eof()
    return response


@routes.post("/admin/projections/verify")
@documented(
    summary="Compare every projection table with a rebuild from the log (`runlog projections verify`)",
    description="Reads the live tables and the log's head in one snapshot, replays the log into a scratch "
                "database and compares table by table. Writes nothing; takes as long as a replay of the log.",
    response=VerifyAnswer,
)
async def verify_projections(request: web.Request) -> web.Response:
    found = await verify(request.config_dict[keys.SETTINGS].database_url)
    return json_response(VerifyAnswer(head=found.head, equal=found.equal, tables=[
        VerifiedTable(
            projection=t.projection, table=t.table, equal=t.equal, live=t.live, rebuilt=t.rebuilt,
            only_live=[repr(r) for r in t.only_live[:VERIFY_EXAMPLES]],
            only_rebuilt=[repr(r) for r in t.only_rebuilt[:VERIFY_EXAMPLES]],
        )
        for t in found.tables
    ]))
