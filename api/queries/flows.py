"""Reading flows from the flows projection."""

from __future__ import annotations

import fnmatch
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.flows import FlowView, decode_flow

from ..schemas.flows import FlowFilterRequest

SQL_GET = "SELECT view FROM flows WHERE id = ?"
SQL_ALL = "SELECT view FROM flows ORDER BY name"

DEFAULT_LIMIT = 200


async def get(store: EventStore, flow_id: UUID) -> FlowView | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_GET, str(flow_id))
    return decode_flow(bytes(rows[0][0])) if rows else None


def _like(pattern: str, name: str) -> bool:
    """Prefect's like_ is a case-insensitive substring match (ILIKE %pattern%)."""
    return pattern.lower() in name.lower() or fnmatch.fnmatch(name.lower(), pattern.lower().replace("%", "*"))


def _matches(view: FlowView, body: FlowFilterRequest) -> bool:
    f = body.flows
    if f is None:
        return True
    if f.id is not None and f.id.any_ is not None and str(view.id) not in {str(i) for i in f.id.any_}:
        return False
    if f.name is not None:
        if f.name.any_ is not None and view.name not in f.name.any_:
            return False
        if f.name.like_ is not None and not _like(f.name.like_, view.name):
            return False
    if f.tags is not None:
        if f.tags.all_ and not set(f.tags.all_) <= set(view.tags):
            return False
        if f.tags.any_ and not set(f.tags.any_) & set(view.tags):
            return False
        if f.tags.is_null_ is not None and (not view.tags) != f.tags.is_null_:
            return False
    return True


async def filter(store: EventStore, body: FlowFilterRequest) -> list[FlowView]:  # noqa: A001 - Prefect's verb
    # Flows number in the hundreds, so they are filtered after one ordered read.
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_ALL)
    views = [v for v in (decode_flow(bytes(r[0])) for r in rows) if _matches(v, body)]
    if body.sort == "CREATED_DESC":
        views.sort(key=lambda v: v.created, reverse=True)
    elif body.sort == "UPDATED_DESC":
        views.sort(key=lambda v: v.updated, reverse=True)
    elif body.sort == "NAME_DESC":
        views.reverse()
    start = max(body.offset or 0, 0)
    return views[start:] if body.limit is None else views[start : start + body.limit]
