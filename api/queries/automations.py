"""Reading automations from the automations projection; filters are evaluated in SQL."""

from __future__ import annotations

from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.automations import AutomationView, by_id, decode_automation

from ..schemas.automations import AutomationFilter
from .filtering import (
    Criteria, Resource, any_in, at_or_before, fetch_count, fetch_page, tag_table, tags_all, tags_any, tags_null,
)

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""

# Ties fall back to the id, so that pages never overlap.
ORDER = {
    "CREATED_DESC": "a.created DESC, a.id DESC",
    "UPDATED_DESC": "a.updated DESC, a.id DESC",
    "NAME_DESC": "a.name DESC, a.id DESC",
    "NAME_ASC": "a.name ASC, a.id DESC",
}

AUTOMATION_TAGS = tag_table("automation_tags", "automation_id")
AUTOMATION = Resource({
    "id": Criteria("a.id", {"any_": any_in}),
    "name": Criteria("a.name", {"any_": any_in}),
    "created": Criteria("a.created", {"before_": at_or_before}),
    "tags": Criteria("a.id", {
        "all_": tags_all(AUTOMATION_TAGS), "any_": tags_any(AUTOMATION_TAGS), "is_null_": tags_null(AUTOMATION_TAGS),
    }),
})

SQL_RELATED = (
    "SELECT a.view FROM automations a JOIN automation_resources r ON r.automation_id = a.id "
    "WHERE r.resource_id = ? ORDER BY a.created, a.id"
)
SQL_OWNED = (
    "SELECT a.id FROM automations a JOIN automation_resources r ON r.automation_id = a.id "
    "WHERE r.resource_id = ? AND r.owned = 1"
)


async def get(store: EventStore, automation_id: UUID) -> AutomationView | None:
    async with store.reading() as tx:
        return await by_id(tx, automation_id)


async def filter(  # noqa: A001 - Prefect's verb
    store: EventStore, flt: AutomationFilter | None, *, sort: str, limit: int, offset: int
) -> list[AutomationView]:
    async with store.reading() as tx:
        rows = await fetch_page(tx, "automations a", "a.view", AUTOMATION.where(tx, flt), ORDER[sort], limit, offset)
    return [decode_automation(bytes(row[0])) for row in rows]


async def count(store: EventStore, flt: AutomationFilter | None) -> int:
    async with store.reading() as tx:
        return await fetch_count(tx, "automations a", AUTOMATION.where(tx, flt))


async def related_to(store: EventStore, resource_id: str) -> list[AutomationView]:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_RELATED, resource_id)
    return [decode_automation(bytes(row[0])) for row in rows]


async def owned_by(store: EventStore, resource_id: str) -> list[UUID]:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_OWNED, resource_id)
    return [UUID(str(row[0])) for row in rows]
