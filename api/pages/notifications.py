"""/runlog/notifications: the notification rules with their channels, the channels' health, and
the delivery log (status, attempts, response codes, timings) with a button that retries a dead
letter through the API (POST /api/runlog/deliveries/{id}/retry)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.notifier import rules
from runlog.projections import deliveries as model

from .. import keys
from ..http import Unprocessable, query_int
from ..openapi import documented
from ..queries import automations, channels, deliveries
from ..routes.deliveries import to_delivery
from .render import page

routes = web.RouteTableDef()

PAGE_SIZE = 50
_QUERY = {"status": str | None, "offset": int | None}


async def _channel_names(store, ids: set[UUID]) -> dict[UUID, tuple[str, str]]:  # type: ignore[no-untyped-def]
    named = {}
    for channel_id in ids:
        found = await channels.by_id(store, channel_id)
        named[channel_id] = (found.name, found.block_type_slug) if found is not None else ("(deleted)", "")
    return named


@routes.get("/runlog/notifications")
@documented(summary="runlog's page of notification rules, channels and deliveries (HTML)", query=_QUERY,
            errors={422: "an unknown status or a bad offset"})
async def notifications_page(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in model.STATUSES:
        raise Unprocessable(f"query parameter 'status' must be one of {', '.join(model.STATUSES)}; got {status!r}")
    offset = query_int(request, "offset", 0, 2**31 - 1, 0)
    store = request.config_dict[keys.STORE]
    found = await automations.filter(store, None, sort="NAME_ASC", limit=automations.DEFAULT_LIMIT, offset=0)
    rule_rows: list[dict[str, Any]] = []
    for automation in found:
        rule = rules.rule_of(msgspec.to_builtins(automation))
        if rule is not None:
            rule_rows.append({"automation": automation, "rule": rule})
    health = {h.channel_id: h for h in await deliveries.channel_health(store)}
    listed = await deliveries.page(store, status=status, limit=PAGE_SIZE + 1, offset=offset)
    more = len(listed) > PAGE_SIZE
    shown = [to_delivery(view) for view in listed[:PAGE_SIZE]]
    names = await _channel_names(store, {r["rule"].channel_id for r in rule_rows} | set(health) | {d.channel_id for d in shown})
    channel_rows = sorted(
        ({"id": cid, "name": name, "kind": kind, "health": health.get(cid)} for cid, (name, kind) in names.items()),
        key=lambda c: (c["health"] is None or c["health"].status != "failing", c["name"]),
    )
    return page(
        request, "notifications.html", section="notifications", rules=rule_rows, channels=channel_rows, names=names,
        deliveries=shown, shown_status=status, statuses=model.STATUSES, offset=offset, page_size=PAGE_SIZE, more=more,
    )
