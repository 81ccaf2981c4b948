"""/api/runlog/channels: what runlog adds to channels (notification block documents, read and
written through /block_documents/): a test send, and each channel's health.

A test send goes through the notifier's real sender with the block's secrets opened and answers
with what the receiver said; it records nothing (it is not a delivery).
"""

from __future__ import annotations

from aiohttp import web

from runlog.notifier.probe import send_test

from .. import keys
from ..http import decode_body, json_response, path_uuid
from ..openapi import documented
from ..queries import deliveries as queries
from ..schemas import channels as s

routes = web.RouteTableDef()


@routes.post("/runlog/channels/{id}/test")
@documented(
    summary="Send a test message through a channel", request=s.ChannelTestRequest, request_required=False,
    response=s.ChannelTest,
    description="Sent now, once, with no retry; the answer is the receiver's, whatever it was (`sent` says "
                "whether a delivery would have counted it delivered). Nothing is recorded.",
    errors={404: "no block document with this id", 422: "the block document is not a notification channel"},
)
async def send_channel_test(request: web.Request) -> web.Response:
    body = await decode_body(request, s.ChannelTestRequest, default=s.ChannelTestRequest())
    settings = request.config_dict[keys.SETTINGS]
    channel_id = path_uuid(request)
    kind, attempt = await send_test(
        request.config_dict[keys.STORE], request.config_dict[keys.KEYRING], channel_id,
        now=request.config_dict[keys.CLOCK](), message=body.message, base_urls=dict(settings.notifier_base_urls or ()),
    )
    return json_response(s.ChannelTest(
        channel_id=channel_id, kind=kind, sent=attempt.outcome == "sent", outcome=attempt.outcome.value,
        status_code=attempt.status, elapsed_ms=round(attempt.elapsed * 1000, 3), target=attempt.target,
        excerpt=attempt.excerpt, error=attempt.error,
    ))


@routes.get("/runlog/channels/health")
@documented(
    summary="Every channel's health", response=list[s.ChannelHealth],
    description="A channel is failing after its endpoint answered a delivery with 404 or 410, until a later "
                "delivery to it is sent; channels never delivered to are not listed.",
)
async def channel_health(request: web.Request) -> web.Response:
    return json_response(await queries.channel_health(request.config_dict[keys.STORE]))
