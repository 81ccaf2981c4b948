"""GET /api/openapi.json, the OpenAPI 3.1 document built from the routes, and /docs, its page."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import msgspec
from aiohttp import web
from openapi_spec_validator import validate

from runlog.api.openapi import UNDOCUMENTED, build_document, documented
from runlog.api.routes.docs import swagger_ui_dir

from .http_server import serve


def env(tmp_path) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": f"sqlite:///{tmp_path}/r.db"}


def registered(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, public path) of every route the app serves, sub-apps included, but HEAD."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from registered(resource.get_info()["app"])
            continue
        for route in resource:
            if route.method != "HEAD":
                yield route.method, resource.canonical


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


async def fetch_document(server) -> dict[str, Any]:
    async with server.session.get(server.base + "/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        return await response.json()


async def test_the_document_is_a_valid_openapi_3_1_document(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "runlog"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


async def test_every_registered_route_appears_with_its_method(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
        routes = set(registered(server.app))
    assert ("GET", "/api/openapi.json") in routes and ("GET", "/docs") in routes
    assert ("POST", "/api/flow_runs/") in routes and ("PATCH", "/api/v2/concurrency_limits/{id_or_name}") in routes
    documented_routes = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert documented_routes == routes
    operation_ids = [op["operationId"] for methods in document["paths"].values() for op in methods.values()]
    assert len(operation_ids) == len(set(operation_ids))


async def test_every_schema_reference_resolves_to_a_component(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
    components = document["components"]["schemas"]
    found = set(refs(document))
    assert "#/components/schemas/FlowRunCreate" in found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in components, ref


async def test_operations_carry_the_handlers_request_response_and_status_codes(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
    components = document["components"]["schemas"]
    create = document["paths"]["/api/flow_runs/"]["post"]
    assert create["requestBody"]["required"] is True
    assert create["requestBody"]["content"]["application/json"]["schema"] == ref("FlowRunCreate")
    assert {"201", "200", "422"} <= create["responses"].keys()
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == ref("FlowRun")
    assert "flow_id" in components["FlowRunCreate"]["required"]
    assert "name" not in components["FlowRunCreate"]["required"]
    assert components["FlowRunCreate"]["properties"]["flow_id"] == {"type": "string", "format": "uuid"}

    read = document["paths"]["/api/flow_runs/{id}"]["get"]
    uuid_schema = {"type": "string", "format": "uuid"}
    assert read["parameters"] == [{"name": "id", "in": "path", "required": True, "schema": uuid_schema}]
    assert "404" in read["responses"] and "requestBody" not in read

    delete = document["paths"]["/api/flow_runs/{id}"]["delete"]
    assert "content" not in delete["responses"]["204"]

    states = document["paths"]["/api/flow_run_states/"]["get"]
    assert states["parameters"][0]["name"] == "flow_run_id" and states["parameters"][0]["required"] is True

    filter_runs = document["paths"]["/api/flow_runs/filter"]["post"]
    assert filter_runs["requestBody"]["required"] is False  # an empty body means no filter


def test_an_undocumented_route_still_appears_and_an_indescribable_type_costs_nothing():
    class Line(msgspec.Struct):
        data: msgspec.Raw = msgspec.Raw(b"")  # msgspec cannot put this default in a schema

    routes = web.RouteTableDef()

    @routes.get("/things/{name}")
    async def read_thing(request: web.Request) -> web.Response:
        raise NotImplementedError

    @routes.post("/lines/")
    @documented(summary="Store lines", request=list[Line], status=204)
    async def store_lines(request: web.Request) -> web.Response:
        raise NotImplementedError

    api = web.Application()
    api.add_routes(routes)
    app = web.Application()
    app.add_subapp("/api", api)
    document = build_document(app)
    validate(document)

    read = document["paths"]["/api/things/{name}"]["get"]
    assert read["summary"] == "Read thing" and read["description"] == UNDOCUMENTED
    assert read["responses"] == {"default": {"description": UNDOCUMENTED}}
    assert read["parameters"][0]["schema"] == {"type": "string"}
    store = document["paths"]["/api/lines/"]["post"]
    assert "could not be generated" in store["requestBody"]["content"]["application/json"]["schema"]["description"]


async def test_the_docs_page_names_every_endpoint_and_its_schemas(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
        async with server.session.get(server.base + "/docs") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
    for path, methods in document["paths"].items():
        assert f"<code>{html.escape(path)}</code>" in page, path
        for operation in methods.values():
            assert html.escape(operation["summary"]) in page
    assert 'id="schema-FlowRunCreate"' in page
    # Offline: everything the page loads comes from this server.
    assert "https://" not in page and "http://" not in page


async def test_docs_at_the_root_leads_to_the_page(tmp_path):
    async with serve(env(tmp_path)) as server:
        root = server.base.removesuffix("/api")
        async with server.session.get(root + "/docs", allow_redirects=False) as response:
            assert response.status == 302
            assert response.headers["Location"] == "/api/docs"
        async with server.session.get(root + "/docs") as response:
            assert response.status == 200 and response.content_type == "text/html"


async def test_swagger_ui_is_served_from_its_package_and_nothing_else_of_it(tmp_path):
    folder = swagger_ui_dir()
    assert folder is not None, "swagger-ui-py is a dependency of runlog"
    async with serve(env(tmp_path)) as server:
        async with server.session.get(server.base + "/docs") as response:
            page = await response.text()
        assert 'src="docs/swagger-ui/swagger-ui-bundle.js"' in page
        async with server.session.get(server.base + "/docs/swagger-ui/swagger-ui-bundle.js") as response:
            assert response.status == 200
            assert response.content_type in ("application/javascript", "text/javascript")
            assert await response.read() == (folder / "swagger-ui-bundle.js").read_bytes()
        for name in ("oauth2-redirect.html", "..%2Fcore.py", "missing.js"):
            status, body = await server.request("GET", "/docs/swagger-ui/" + name)
            assert status == 404, name
            assert "detail" in body
