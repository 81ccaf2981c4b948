"""/events: Prefect client events, over the /events/in websocket or POST /events.

The websocket handles one frame at a time and reads the next only once the event is in the
log. aiohttp answers a client's ping when the receive loop reaches it, so a pong confirms
that every event sent before the ping is stored: the Prefect client's delivery checkpoints
then really mean delivered, and what it re-sends after a reconnect is idempotent anyway.
"""

from __future__ import annotations

import contextlib

import msgspec
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from runlog.commands import client_events as service
from runlog.eventstore import InvalidEvent, SchemaError, StorageUnavailable, StoreClosed

from .. import keys
from ..http import BadRequest, decode_body, empty_response
from ..openapi import documented
from ..schemas.events import Event, check_event
from ..security import basic_credentials_match, mark_websocket_route, token_matches

routes = web.RouteTableDef()

log = structlog.get_logger("runlog.api.events")

HEARTBEAT_SECONDS = 30.0
"""aiohttp pings the client this often and drops the connection if no pong comes back."""
AUTH_TIMEOUT_SECONDS = 30.0
AUTH_FAILED = "Expected 'auth' message"
NO_TOKEN = "Auth required but no token provided"
INVALID_TOKEN = "Invalid token"
SUBPROTOCOL_REQUIRED = "'prefect' subprotocol required when auth is configured"

_GONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
_event_decoder = msgspec.json.Decoder(Event)
_auth_decoder = msgspec.json.Decoder()


@routes.post("/events")
@documented(summary="Record a batch of events", request=list[Event], status=204)
async def create_events(request: web.Request) -> web.Response:
    """Record a batch of events (204). The whole batch is checked before any of it is stored."""
    # Events are stored as sent, U+0000 included (as MessagePack, which holds it on both backends).
    batch = await decode_body(request, list[Event], nul=True)
    checked = [check_event(event, f"$[{index}]") for index, event in enumerate(batch)]
    store = request.config_dict[keys.STORE]
    for event in checked:
        await service.receive(store, event, cache=request.config_dict[keys.VIEW_CACHE])
    return empty_response(204)


NOT_A_WEBSOCKET = "{path} is a websocket: open it with a websocket upgrade (subprotocol 'prefect')"


def websocket(summary: str):  # type: ignore[no-untyped-def]
    """The document entry of a websocket route (a 101, or a 400 to a plain request), and its
    mark: with an auth string set, its upgrade is let through, the handshake checks the token."""
    document = documented(summary=summary, status=101, errors={400: "Not a websocket upgrade request"})
    return lambda handler: mark_websocket_route(document(handler))


@routes.get("/events/in")
@websocket("Receive events over a websocket (Prefect's /events/in)")
async def stream_events_in(request: web.Request) -> web.StreamResponse:
    ws = await prefect_socket(request)
    if ws.closed:
        return ws
    store = request.config_dict[keys.STORE]
    stored = skipped = 0
    async for message in ws:
        if message.type is WSMsgType.ERROR:
            log.warning("events_in_error", error=str(ws.exception()))
            break
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            event = check_event(_event_decoder.decode(message.data))
        # msgspec lets bytes that are not UTF-8 and runaway nesting through as they are.
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            skipped += 1
            log.warning("event_frame_skipped", error=str(exc))
            continue
        try:
            await service.receive(store, event, cache=request.config_dict[keys.VIEW_CACHE])
        except InvalidEvent as exc:
            skipped += 1
            log.warning("event_skipped", event_id=str(event.id), error=str(exc))
            continue
        except (StorageUnavailable, SchemaError, StoreClosed) as exc:
            # Not stored, so not confirmed: closing makes the client reconnect and re-send
            # everything since its last checkpoint, this event included.
            log.warning("events_in_storage_unavailable", error=str(exc))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"the database is unavailable")
            break
        except Exception:
            # A bug must not stop the stream: this event is lost, later ones are still stored.
            skipped += 1
            log.exception("event_not_stored", event_id=str(event.id), event_name=event.event[:200])
            continue
        stored += 1
    log.info("events_in_closed", stored=stored, skipped=skipped, close_code=ws.close_code)
    return ws


async def prefect_socket(request: web.Request, *, failed_reason: str | None = None) -> web.WebSocketResponse:
    """A websocket opened Prefect's way (subprotocol "prefect", then the auth handshake).

    Raises BadRequest (400) for a request that is not a websocket upgrade; a failed handshake
    leaves the socket closed (with FAILED_REASON, if given, as the close reason, as Prefect's
    worker channel says "authentication_failed"). The app closes open sockets on shutdown.
    """
    ws = web.WebSocketResponse(protocols=("prefect",), heartbeat=HEARTBEAT_SECONDS, autoping=True)
    if not ws.can_prepare(request).ok:
        raise BadRequest(NOT_A_WEBSOCKET.format(path=request.path.removeprefix("/api")))
    await ws.prepare(request)
    request.config_dict[keys.WEBSOCKETS].add(ws)
    auth_string = request.config_dict[keys.SETTINGS].server_api_auth_string
    if ws.ws_protocol != "prefect":
        # Like Prefect, a client that did not ask for the "prefect" subprotocol is served in
        # legacy mode, without the handshake, only while no auth string is set.
        if auth_string is not None:
            log.warning("websocket_refused", reason=SUBPROTOCOL_REQUIRED)
            await ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=(failed_reason or SUBPROTOCOL_REQUIRED).encode())
        return ws
    # Credentials on the upgrade itself (Prefect's events client sends them for proxies; a
    # browser sends the ones it was given for this origin) are as good as the message's token.
    upgraded_with_credentials = auth_string is not None and basic_credentials_match(
        request.headers.get("Authorization"), auth_string
    )
    expected = None if upgraded_with_credentials else auth_string
    if not await authenticate(ws, expected, failed_reason):
        await ws.close()  # already closed after a failure; idempotent
    return ws


async def authenticate(ws: web.WebSocketResponse, auth_string: str | None, failed_reason: str | None = None) -> bool:
    """Prefect's handshake: the first message must be {"type": "auth", "token": ...}, whose
    token must be AUTH_STRING when one is given (compared in constant time).

    Anything else first gets an auth failure and a close with the policy-violation code and
    Prefect's reason; the Prefect client reports it.
    """
    try:
        message = await ws.receive(timeout=AUTH_TIMEOUT_SECONDS)
    except TimeoutError:
        message = None
    if message is not None and message.type in _GONE:
        return False
    auth: object = None
    if message is not None and message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        try:
            auth = _auth_decoder.decode(message.data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            auth = None
    reason = None
    if not (isinstance(auth, dict) and auth.get("type") == "auth"):
        reason = AUTH_FAILED
    elif auth_string is not None and not auth.get("token"):
        reason = NO_TOKEN
    elif auth_string is not None and not token_matches(auth.get("token"), auth_string):
        reason = INVALID_TOKEN
    if reason is not None:
        reason = failed_reason or reason
        log.warning("websocket_auth_failed", reason=reason)
        with contextlib.suppress(ConnectionError):  # the client may be gone already
            await ws.send_json({"type": "auth_failure", "reason": reason})
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode())
        return False
    await ws.send_json({"type": "auth_success"})
    return True
