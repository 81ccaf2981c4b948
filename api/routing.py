"""Fixed paths win over templated ones, as OpenAPI matches them.

aiohttp resolves a request to the first resource whose path and method both match, so
``PATCH /flow_runs/filter`` (a fixed path served only for POST) would reach the
``PATCH /flow_runs/{id}`` handler with the id "filter", and a 405's Allow header would list
the methods of both resources. Giving such a fixed path a route for any other method, which
answers 405 with its own methods, makes it the only resource that path ever reaches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fixed_paths_win(app: web.Application) -> None:
    """Give every fixed path of ``app`` that a templated path of ``app`` also matches a 405 for
    the methods it does not serve. Call it once every route is added."""
    resources = list(app.router.resources())
    templated = [r for r in resources if isinstance(r, web.DynamicResource)]
    for resource in resources:
        if not isinstance(resource, web.PlainResource):
            continue
        path = resource.canonical
        if not any(other.get_info()["pattern"].fullmatch(path) for other in templated):
            continue
        methods = sorted({route.method for route in resource} - {hdrs.METH_ANY})
        if methods:
            resource.add_route(hdrs.METH_ANY, _method_not_allowed(methods))


def _method_not_allowed(methods: list[str]) -> Handler:
    async def method_not_allowed(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, methods)

    return method_not_allowed
