"""/api/runlog/deliveries: the notifier's delivery log, and replaying what was not delivered.

runlog's own API (Prefect has no delivery log): each delivery with its attempts, status codes,
timings and the redacted start of each answer; ``retry`` puts a dead letter (or a delivery
waiting for its next retry) back in the queue, due at once.
"""

from __future__ import annotations

from aiohttp import web

from runlog.commands import deliveries as commands
from runlog.projections import deliveries as model
from runlog.projections.deliveries import DeliveryView

from .. import keys
from ..http import NotFound, Unprocessable, json_response, path_uuid, query_int, query_uuid
from ..openapi import documented
from ..queries import deliveries as queries
from ..schemas import deliveries as s

routes = web.RouteTableDef()

NOT_FOUND = "Delivery not found."
_QUERY = {"status": str | None, "rule": str | None, "channel": str | None, "limit": int | None, "offset": int | None}
_LIST_DESCRIPTION = (
    f"Newest first. `status` is one of {', '.join(model.STATUSES)}; `rule` a rule's id or name; `channel` a "
    f"channel's (block document's) id; `limit` at most {queries.MAX_LIMIT} (default {queries.DEFAULT_LIMIT})."
)


def to_summary(view: DeliveryView) -> s.DeliverySummary:
    return s.DeliverySummary(**_summary_fields(view))


def _summary_fields(view: DeliveryView) -> dict:
    scheduled = view.scheduled
    return dict(
        id=view.id, status=view.status, rule_id=scheduled.rule_id, rule_name=scheduled.rule_name,
        action_index=scheduled.action_index, channel_id=view.channel_id, event_id=scheduled.event_id,
        flow_run_id=scheduled.flow_run_id, subject=scheduled.subject, attempts=len(view.attempts),
        last_status_code=view.attempts[-1].status_code if view.attempts else None,
        next_attempt_at=view.next_attempt_at, created=view.created, updated=view.updated, sent_at=view.sent_at,
        dead_reason=view.dead_reason,
    )


def to_delivery(view: DeliveryView) -> s.Delivery:
    attempts = [
        s.DeliveryAttempt(
            attempt=a.attempt, started=a.started, finished=a.finished,
            duration_ms=round((a.finished - a.started).total_seconds() * 1000, 3), status_code=a.status_code,
            outcome=a.outcome, excerpt=a.excerpt, error=a.error, next_attempt_at=a.next_attempt_at,
            parts_sent=len(a.parts_sent),
        )
        for a in view.attempts
    ]
    return s.Delivery(**_summary_fields(view), body=view.scheduled.body, resolve=view.scheduled.resolve,
                      resolves=view.scheduled.resolves, attempt_log=attempts)



@routes.get("/runlog/deliveries")
@documented(summary="List the notifier's deliveries", description=_LIST_DESCRIPTION, query=_QUERY,
            response=list[s.DeliverySummary], errors={422: "an unknown status, a bad channel id or page"})
async def list_deliveries(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in model.STATUSES:
        raise Unprocessable(f"query parameter 'status' must be one of {', '.join(model.STATUSES)}; got {status!r}")
    channel = query_uuid(request, "channel", required=False)
    found = await queries.page(
        request.config_dict[keys.STORE], status=status, rule=request.query.get("rule"), channel=channel,
        limit=query_int(request, "limit", 1, queries.MAX_LIMIT, queries.DEFAULT_LIMIT),
        offset=query_int(request, "offset", 0, 2**31 - 1, 0),
    )
    return json_response([to_summary(v) for v in found])


@routes.get("/runlog/deliveries/{id}")
@documented(summary="Read a delivery with its attempts", response=s.Delivery, errors={404: NOT_FOUND})
async def read_delivery(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    if view is None:
        raise NotFound(NOT_FOUND)
    return json_response(to_delivery(view))


@routes.post("/runlog/deliveries/{id}/retry")
@documented(summary="Retry a delivery now", response=s.Delivery,
            description="A dead letter, or a delivery waiting for its next retry, is due at once; its maximum "
                        "age counts from now.",
            errors={404: NOT_FOUND, 409: "the delivery was sent, or waits for its first attempt"})
async def retry_delivery(request: web.Request) -> web.Response:
    view = await commands.replay(request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK])
    _wake(request)
    return json_response(to_delivery(view))


@routes.post("/runlog/deliveries/retry-dead")
@documented(summary="Retry every dead letter now", response=s.RetriedDeliveries)
async def retry_dead(request: web.Request) -> web.Response:
    retried = await commands.replay_dead(request.config_dict[keys.STORE], clock=request.config_dict[keys.CLOCK])
    _wake(request)
    return json_response(s.RetriedDeliveries(retried=retried))


def _wake(request: web.Request) -> None:
    dispatcher = request.config_dict.get(keys.DISPATCHER)
    if dispatcher is not None:
        dispatcher.wake()
