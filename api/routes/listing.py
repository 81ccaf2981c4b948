"""What every POST .../filter, .../count and .../paginate route does, written once: decode the
optional body, run the resource's declared Listing (api/queries/filtering.py), encode the answer.
``listing_routes`` declares a resource's routes from a table (its bodies, sort and summaries)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from .. import keys
from ..http import decode_body, json_response, page_limit
from ..openapi import documented
from ..queries.filtering import DEFAULT_LIMIT, Listing
from ..schemas.filters import Page
from .entity import named

Shape = Callable[[Any, datetime], Any]
"""What a listed view is answered as, given "now" (a run's estimated times depend on it)."""


Prepare = Callable[[web.Request, list[Any]], Awaitable[Shape]]
"""For a resource whose answer needs reads beyond its view (a deployment's queue): given the
request and the page's views, the Shape to answer them with."""


def timeless(shape: Callable[[Any], Any]) -> Shape:
    """A Shape for what does not depend on the time of the request."""
    return lambda view, _now: shape(view)


async def _body(request: web.Request, kind: type) -> Any:
    return await decode_body(request, kind, default=kind())  # an empty body filters nothing


async def listed(
    request: web.Request, kind: type, listing: Listing[Any], shape: Shape, *, sort: str, prepare: Prepare | None = None
) -> web.Response:
    """A page of what the body's filter admits, at its offset, in its sort (``sort`` by default)."""
    body = await _body(request, kind)
    views = await listing.page(
        request.config_dict[keys.STORE], body, sort=body.sort or sort, limit=page_limit(body.limit, DEFAULT_LIMIT),
        offset=body.offset or 0,
    )
    if prepare is not None:
        shape = await prepare(request, views)
    now = request.config_dict[keys.CLOCK]()
    return json_response([shape(view, now) for view in views])


async def counted(request: web.Request, kind: type, listing: Listing[Any]) -> web.Response:
    return json_response(await listing.count(request.config_dict[keys.STORE], await _body(request, kind)))


async def paginated(
    request: web.Request, kind: type, listing: Listing[Any], shape: Shape, *, sort: str, prepare: Prepare | None = None
) -> web.Response:
    """Page ``page`` (from 1) and the count of all that match, read from one snapshot so they agree."""
    body = await _body(request, kind)
    limit, page = page_limit(body.limit, DEFAULT_LIMIT), body.page or 1
    views, count = await listing.page_and_count(
        request.config_dict[keys.STORE], body, sort=body.sort or sort, limit=limit, offset=(page - 1) * limit
    )
    if prepare is not None:
        shape = await prepare(request, views)
    now = request.config_dict[keys.CLOCK]()
    pages = (count + limit - 1) // limit if limit > 0 else 0
    return json_response(Page(results=[shape(v, now) for v in views], count=count, limit=limit, pages=pages, page=page))


def listing_routes(
    routes: web.RouteTableDef, module: str, path: str, name: str, listing: Listing[Any], shape: Shape, *,
    sort: str,
    filter: tuple[type, type, str],  # noqa: A002 - the route's verb
    count: tuple[type, str],
    paginate: tuple[type, str] | None = None,
    errors: dict[int, str] | None = None,
    count_errors: dict[int, str] | None = None,
    prepare: Prepare | None = None,
) -> None:
    """POST {path}/filter, {path}/count and, when given, {path}/paginate; the handlers are named
    filter_{name}, count_{name} and paginate_{name} in ``module`` (their OpenAPI operationIds and
    tag). Each verb's tuple is its body type, (for filter) the type of one listed item, and its
    summary; ``errors`` documents filter's error answers, ``count_errors`` count's; ``prepare``,
    when given, makes the shape from each page's views."""
    filter_body, item, filter_summary = filter
    count_body, count_summary = count

    @documented(
        summary=filter_summary, request=filter_body, request_required=False, response=list[item], errors=errors
    )
    async def filter_handler(request: web.Request) -> web.Response:
        return await listed(request, filter_body, listing, shape, sort=sort, prepare=prepare)

    @documented(summary=count_summary, request=count_body, request_required=False, response=int, errors=count_errors)
    async def count_handler(request: web.Request) -> web.Response:
        return await counted(request, count_body, listing)

    handlers = [("filter", filter_handler), ("count", count_handler)]
    if paginate is not None:
        paginate_body, paginate_summary = paginate

        @documented(summary=paginate_summary, request=paginate_body, request_required=False, response=Page)
        async def paginate_handler(request: web.Request) -> web.Response:
            return await paginated(request, paginate_body, listing, shape, sort=sort, prepare=prepare)

        handlers.append(("paginate", paginate_handler))
    for verb, handler in handlers:
        routes.post(f"{path}/{verb}")(named(handler, f"{verb}_{name}", module))
