"""runlog's own pages under /runlog/: what an event log shows and Prefect's UI has no place for
(the log itself, time travel, the notifier's deliveries, the projections).

Plain HTML rendered on the server from the templates beside this module, with one small script
of our own (static/runlog.js, no library, no build step) for live rows, the slider and the
buttons, which call the API as any client does.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from .. import keys
from ..http import NotFound
from ..openapi import documented
from ..queries import event_log
from ..routes import deliveries as api_deliveries
from ..routes import projections as api_projections
from . import log, notifications, projections, time_travel
from .render import page

index_routes = web.RouteTableDef()

STATIC_FILES = {"runlog.css": "text/css", "runlog.js": "text/javascript"}


@index_routes.get("/runlog/")
@documented(summary="runlog's own pages: the index (HTML)")
async def index(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    return page(request, "index.html", section="index", head=await store.head(), travels=await event_log.travels(store))


@index_routes.get("/runlog")
@documented(summary="Redirect to runlog's own pages, /runlog/", status=302)
async def index_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/runlog/")


@index_routes.get("/runlog/static/{filename}")
@documented(summary="The pages' stylesheet and script", errors={404: "Not one of the pages' files"})
async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["filename"]
    if name not in STATIC_FILES:
        raise NotFound(f"No file {name!r}")
    body = resources.files(__package__).joinpath("static", name).read_bytes()
    # Revalidated on every load (they are small): a new runlog's script is never mixed with an old page.
    return web.Response(body=body, content_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


# The buttons' calls, under /runlog/ beside the pages: the API's own handlers, reached where the
# browser authenticates. With RUNLOG_SERVER_API_AUTH_STRING the browser is asked for the password
# on /runlog/ (a Basic challenge) and sends it again only under that path, while /api answers
# 401 without a challenge (Prefect's UI shows its own login). A write here needs no CSRF token:
# api/security.py refuses it when the browser says it comes from another site.
action_routes = web.RouteTableDef()
action_routes.post("/runlog/actions/projections/verify")(api_projections.verify_projections)
action_routes.post("/runlog/actions/deliveries/{id}/retry")(api_deliveries.retry_delivery)
action_routes.get("/runlog/actions/deliveries/{id}")(api_deliveries.read_delivery)

routes = [*index_routes, *action_routes, *log.routes, *time_travel.routes, *notifications.routes, *projections.routes]

__all__ = ["routes"]
