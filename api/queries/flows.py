"""Listing flows from the flows projection; filters are evaluated in SQL (run_filters.FLOW).
A flow by id is read by the projection (projections/flows.py), which commands share."""

from __future__ import annotations

from runlog.eventstore import EventStore, Tx
from runlog.projections.flows import FlowView, decode_flow, get

from ..schemas.flows import FlowFilterRequest
from .filtering import fetch_count, fetch_page
from .run_filters import FLOW

DEFAULT_LIMIT = 200

# A flow's update time is only in its view, so it is read there and compared as a time (its
# text form need not sort chronologically); the name breaks ties, as flows are listed by name.
_UPDATED = {
    "sqlite": "julianday(json_extract(CAST(f.view AS TEXT), '$.updated'))",
    "postgres": "(convert_from(f.view, 'UTF8')::jsonb ->> 'updated')::timestamptz",
}
ORDER = {
    "NAME_ASC": "f.name ASC",
    "NAME_DESC": "f.name DESC",
    "CREATED_DESC": "f.created DESC, f.name ASC",
}


def _order(tx: Tx, sort: str) -> str:
    if sort == "UPDATED_DESC":
        return f"{_UPDATED[tx.dialect]} DESC, f.name ASC"
    return ORDER[sort]


async def filter(store: EventStore, body: FlowFilterRequest) -> list[FlowView]:  # noqa: A001 - Prefect's verb
    async with store.reading() as tx:
        rows = await fetch_page(
            tx, "flows f", "f.view", FLOW.where(tx, body.flows), _order(tx, body.sort or "NAME_ASC"),
            body.limit, max(body.offset or 0, 0),
        )
    return [decode_flow(bytes(row[0])) for row in rows]


async def count(store: EventStore, body: FlowFilterRequest) -> int:
    async with store.reading() as tx:
        return await fetch_count(tx, "flows f", FLOW.where(tx, body.flows))


__all__ = ["count", "filter", "get"]
