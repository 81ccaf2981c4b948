"""Reading the delivery log: a page of deliveries, newest first, filtered by status, rule or channel."""

from __future__ import annotations

from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections import deliveries as model
from runlog.projections.deliveries import DeliveryView

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

_COLUMNS = ", ".join(model.DELIVERIES.columns)
# Each filter is a fixed condition; only its values travel as parameters.
_BY_STATUS = "status = ?"
_BY_RULE = "(rule_id = ? OR rule_name = ?)"
_BY_CHANNEL = "channel_id = ?"


async def get(store: EventStore, delivery_id: UUID) -> DeliveryView | None:
    async with store.reading() as tx:
        return await model.get(tx, delivery_id)


async def page(
    store: EventStore, *, status: str | None = None, rule: str | None = None, channel: UUID | None = None,
    limit: int = DEFAULT_LIMIT, offset: int = 0,
) -> list[DeliveryView]:
    """``rule`` matches a rule's id or its name when the delivery was scheduled."""
    conditions: list[str] = []
    params: list[object] = []
    if status is not None:
        conditions.append(_BY_STATUS)
        params.append(status)
    if rule is not None:
        conditions.append(_BY_RULE)
        params += [rule, rule]
    if channel is not None:
        conditions.append(_BY_CHANNEL)
        params.append(str(channel))
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    sql = f"SELECT {_COLUMNS} FROM deliveries {where}ORDER BY created DESC, id DESC LIMIT ? OFFSET ?"  # noqa: S608
    async with store.reading() as tx:
        rows = await tx.fetch(sql, *params, limit, offset)
    return [model.view_of(row) for row in rows]


async def channel_health(store: EventStore) -> list[model.ChannelHealth]:
    """Every channel's health as its deliveries left it (channels never delivered to are absent)."""
    async with store.reading() as tx:
        return await model.health(tx)
