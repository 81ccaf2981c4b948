"""Listing variables from the variables projection; filters are evaluated in SQL. One variable
is read by the projection (projections/variables.py), which commands share."""

from __future__ import annotations

from runlog.eventstore import EventStore
from runlog.projections.variables import VariableView, decode_variable, get, get_by_name

from ..schemas.variables import VariableFilter
from .filtering import Criteria, Resource, any_in, fetch_count, fetch_page, like, tag_table, tags_all, tags_null

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""

# Ties fall back to the id, so that pages never overlap.
ORDER = {
    "CREATED_DESC": "v.created DESC, v.id DESC",
    "UPDATED_DESC": "v.updated DESC, v.id DESC",
    "NAME_DESC": "v.name DESC, v.id DESC",
    "NAME_ASC": "v.name ASC, v.id DESC",
}


# Prefect's VariableFilter over the variables row aliased ``v`` (see filtering.py).
VARIABLE_TAGS = tag_table("variable_tags", "variable_id")
VARIABLE = Resource({
    "id": Criteria("v.id", {"any_": any_in}),
    "name": Criteria("v.name", {"any_": any_in, "like_": like}),
    "tags": Criteria("v.id", {"all_": tags_all(VARIABLE_TAGS), "is_null_": tags_null(VARIABLE_TAGS)}),
})


async def filter(  # noqa: A001 - Prefect's verb
    store: EventStore, flt: VariableFilter | None, *, sort: str, limit: int, offset: int
) -> list[VariableView]:
    async with store.reading() as tx:
        rows = await fetch_page(tx, "variables v", "v.view", VARIABLE.where(tx, flt), ORDER[sort], limit, offset)
    return [decode_variable(bytes(row[0])) for row in rows]


async def count(store: EventStore, flt: VariableFilter | None) -> int:
    async with store.reading() as tx:
        return await fetch_count(tx, "variables v", VARIABLE.where(tx, flt))


__all__ = ["count", "filter", "get", "get_by_name"]
