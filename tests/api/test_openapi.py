"""GET /api/openapi.json, the OpenAPI 3.1 document built from the routes, and /docs, its page."""

from __future__ import annotations

import asyncio
import html
import os
import sys
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from openapi_spec_validator import validate

from runlog.api.openapi import UNDOCUMENTED, build_document, documented
from runlog.api.routes.docs import swagger_ui_dir

from ..servers import serve


def env(tmp_path) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": f"sqlite:///{tmp_path}/r.db"}


def registered(app: web.Application) -> Iterator[tuple[str, str]]:
    """(method, public path) of every route the app serves, sub-apps included, but HEAD and the
    any-method 405s of fixed paths (api/routing.py)."""
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            yield from registered(resource.get_info()["app"])
            continue
        for route in resource:
            if route.method not in ("HEAD", "*"):
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
    assert read["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": uuid_schema},
        # time travel (api/at.py): optional
        {"name": "at", "in": "query", "required": False, "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    ]
    assert "404" in read["responses"] and "requestBody" not in read

    delete = document["paths"]["/api/flow_runs/{id}"]["delete"]
    assert "content" not in delete["responses"]["204"]

    states = document["paths"]["/api/flow_run_states/"]["get"]
    assert states["parameters"][0]["name"] == "flow_run_id" and states["parameters"][0]["required"] is True

    filter_runs = document["paths"]["/api/flow_runs/filter"]["post"]
    assert filter_runs["requestBody"]["required"] is False  # an empty body means no filter


class Opaque:
    """A type msgspec knows nothing of."""


def test_an_undocumented_route_still_appears_and_an_indescribable_type_costs_nothing():
    class Line(msgspec.Struct):
        data: Opaque  # msgspec cannot describe this type at all

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
    assert read["parameters"][0]["schema"] == {"type": "string", "minLength": 1}
    store = document["paths"]["/api/lines/"]["post"]
    assert "could not be generated" in store["requestBody"]["content"]["application/json"]["schema"]["description"]


async def test_the_document_declares_what_the_server_checks(tmp_path):
    async with serve(env(tmp_path)) as server:
        document = await fetch_document(server)
    components = document["components"]["schemas"]
    date_time = {"type": "string", "format": "date-time"}
    # Every datetime, nullable or not, nested or not, is an RFC 3339 date-time.
    assert components["FlowRun"]["properties"]["created"] == date_time
    assert date_time in components["FlowRun"]["properties"]["start_time"]["anyOf"]
    assert date_time in components["StateDetails"]["properties"]["scheduled_time"]["anyOf"]
    assert date_time in components["TimeFilter"]["properties"]["before_"]["anyOf"]
    assert components["LogCreate"]["properties"]["timestamp"] == date_time
    # Prefect's page bounds, and its typed work pool, work queue and deployment filters.
    limit = components["FlowRunFilterRequest"]["properties"]["limit"]["anyOf"][0]
    assert (limit["minimum"], limit["maximum"]) == (0, 200)
    for name in ("WorkQueueFilter", "WorkPoolFilter", "DeploymentFilterPaused"):
        assert components[name]["additionalProperties"] is False, name
    assert ref("WorkQueueFilter") in components["FlowRunFilterRequest"]["properties"]["work_pool_queues"]["anyOf"]
    # A route taking a UUID in its path says it answers 422 for anything else.
    assert "422" in document["paths"]["/api/flow_runs/{id}"]["delete"]["responses"]
    assert "422" in document["paths"]["/api/v2/concurrency_limits/leases/{lease_id}/renew"]["post"]["responses"]
    assert "400" in document["paths"]["/api/events/in"]["get"]["responses"]
    # The import's request is described, though its type has a default msgspec cannot show.
    line = components["ExportedEvent"]
    assert {"stream_id", "id", "type"} <= set(line["required"]) and "data" in line["properties"]
    assert "pattern" in line["properties"]["data_base64"]["anyOf"][0]


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


# -- the document against the server: schemathesis over a real socket, on both backends --------

SCHEMATHESIS_CONFIG = """
seed = 20261205
workers = 1
max-failures = 50
suppress-health-check = ["all"]
warnings = false

[generation]
max-examples = {examples}
deterministic = true
database = "none"
# A string holding U+0000 is refused on both backends (README, "Errors"): not generated.
allow-x00 = false

[phases.stateful]
max-steps = 6

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
"""
"""What fails the run: a 5xx, a status code or content type the document does not list for the
operation, a body or header that violates its schema, and a fixed path answering a method it
does not serve other than 405 with its own Allow. Not checked: negative_data_rejection, since
runlog decodes bodies as leniently as Prefect does (60.0 and "60" are ints), and
positive_data_acceptance, since documented refusals depend on state (an unknown lease is 410,
a full limit 423, CSRF 422 by design), not on the request's shape."""


def operations(document: dict[str, Any]) -> int:
    return sum(1 for methods in document["paths"].values() for _ in methods)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_every_documented_route_answers_as_the_document_says(tmp_path, store_url):
    """Every operation in /api/openapi.json (whatever routes exist: none is listed here), with
    requests generated from the document by schemathesis, against the real server."""
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.replace("{examples}", "12"))
    report = tmp_path / "report"
    # The scheduler is off: fuzzed deployments with second-long intervals would each get up to
    # 100 runs per pass, loading the server the document's checks run against.
    env = {"RUNLOG_HOME": str(home), "RUNLOG_DATABASE_URL": store_url, "RUNLOG_SERVICES_SCHEDULER_ENABLED": "false"}
    async with serve(env) as server:
        document = await fetch_document(server)
        root = server.base.removesuffix("/api")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run",
            server.base + "/openapi.json", "--url", root, "--report-dir", str(report),
            "--output-truncate", "false",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
        )
        try:
            # A bound against a hung run, not a speed check: with about 200 operations the run
            # takes 2-3 minutes on an idle 2-core box and several times that on a loaded one.
            output, _ = await asyncio.wait_for(process.communicate(), timeout=840)
        finally:
            if process.returncode is None:  # timed out (or cancelled): never leave it running
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-25000:]
    count = operations(document) - 1  # schemathesis leaves out GET /api/openapi.json, the document itself
    assert f"Selected: {count}/{count}" in text and f"Tested: {count}" in text, text[-3000:]
