"""GET /openapi.json, the API's OpenAPI 3.1 document, and GET /docs, a page that reads it.

The page works offline: Swagger UI's files are served from the swagger-ui-py package, not a CDN,
and the page itself lists every endpoint with its schemas, which is what shows without
JavaScript, or without that package.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
import weakref
from pathlib import Path
from typing import Any

from aiohttp import web

from ..http import NotFound, json_response
from ..openapi import REF_TEMPLATE, build_document, documented

routes = web.RouteTableDef()
root_routes = web.RouteTableDef()
"""Routes of the root app: /docs, where Prefect serves its API's page too, leads to /api/docs."""

SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
"""All the page loads; nothing else of the package is served."""


_documents: weakref.WeakKeyDictionary[web.Application, dict[str, Any]] = weakref.WeakKeyDictionary()


def document_of(request: web.Request) -> dict[str, Any]:
    """The document of the root app (so every public route is in it), built once per app:
    routes cannot change once the app has started."""
    app = request.match_info.apps[0]
    if app not in _documents:
        _documents[app] = build_document(app)
    return _documents[app]


@routes.get("/openapi.json")
@documented(summary="This API's OpenAPI 3.1 document", response=dict[str, Any])
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(document_of(request))


@routes.get("/docs")
@documented(summary="This API's documentation page (HTML): Swagger UI over /api/openapi.json")
async def docs_page(request: web.Request) -> web.Response:
    document = document_of(request)
    page = render_page(document, swagger_ui=swagger_ui_dir() is not None)
    return web.Response(text=page, content_type="text/html")


@routes.get("/docs/swagger-ui/{filename}")
@documented(summary="Swagger UI's files, from the swagger-ui-py package", errors={404: "Not one of the page's files"})
async def swagger_ui_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["filename"]
    folder = swagger_ui_dir()
    if folder is None or name not in SWAGGER_UI_FILES:
        raise NotFound(f"No Swagger UI file {name!r}")
    return web.FileResponse(folder / name)


@root_routes.get("/docs")
@documented(summary="Redirect to the documentation page, /api/docs", status=302)
async def docs_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/api/docs")  # create_app mounts the API at /api


@functools.cache
def swagger_ui_dir() -> Path | None:
    """swagger-ui-py's static folder, found without importing the package (it imports jinja2)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if all((folder / name).is_file() for name in SWAGGER_UI_FILES) else None


# -- the page -----------------------------------------------------------------------------------

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; }
#endpoints { max-width: 70rem; margin: 0 auto; padding: 1rem 2rem 3rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; margin-top: 2rem; }
.operation { margin: .8rem 0; padding: .5rem .8rem; border: 1px solid #d0d7de; border-radius: 6px; }
.operation h3 { margin: 0; font-size: 1rem; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; }
dl { margin: .4rem 0 0; } dt { font-weight: 600; margin-top: .3rem; } dd { margin-left: 1.2rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; } td, th { text-align: left; padding: .15rem .8rem .15rem 0; }
code { font-family: ui-monospace, monospace; }
"""

_SWAGGER_UI = """
<script src="docs/swagger-ui/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout",
  onComplete: function () { document.getElementById("endpoints").hidden = true; }
});
</script>
"""


def render_page(document: dict[str, Any], *, swagger_ui: bool) -> str:
    """The documentation page: Swagger UI when its files are at hand, over a plain list of the
    endpoints that it hides once it has rendered (relative links: the page is /api/docs)."""
    info = document["info"]
    title = f"{info['title']} API"
    head = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style>",
    ]
    if swagger_ui:
        head.append('<link rel="stylesheet" href="docs/swagger-ui/swagger-ui.css">')
        head.append('<link rel="icon" type="image/png" href="docs/swagger-ui/favicon-32x32.png">')
    body = ['</head>\n<body>\n<div id="swagger-ui"></div>\n<main id="endpoints">']
    body.append(f"<h1>{_e(title)} <small>{_e(info['version'])}</small></h1>")
    body.append(f"<p>{_e(info.get('description', ''))} The OpenAPI document: "
                '<a href="openapi.json">/api/openapi.json</a>.</p>')
    for tag, operations in _by_tag(document).items():
        body.append(f"<h2>{_e(tag)}</h2>")
        body.extend(_operation(method, path, operation) for method, path, operation in operations)
    body.append("<h2>Schemas</h2>")
    body.extend(_component(name, schema) for name, schema in document["components"]["schemas"].items())
    body.append("</main>")
    if swagger_ui:
        body.append(_SWAGGER_UI)
    body.append("</body>\n</html>\n")
    return "\n".join(head + body)


def _by_tag(document: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            groups.setdefault(operation["tags"][0], []).append((method.upper(), path, operation))
    return groups


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    parts = [
        f'<section class="operation" id="{_e(operation["operationId"])}">',
        f'<h3><code class="method">{method}</code> <code>{_e(path)}</code> &mdash; {_e(operation["summary"])}</h3>',
    ]
    if "description" in operation:
        parts.append(f"<p>{_e(operation['description'])}</p>")
    parts.append("<dl>")
    if operation.get("parameters"):
        items = "".join(
            f"<li><code>{_e(p['name'])}</code> ({p['in']}{', required' if p['required'] else ''}): "
            f"{_describe(p['schema'])}</li>"
            for p in operation["parameters"]
        )
        parts.append(f"<dt>Parameters</dt><dd><ul>{items}</ul></dd>")
    if "requestBody" in operation:
        body = operation["requestBody"]
        optional = "" if body["required"] else " (optional)"
        schema = body["content"]["application/json"]["schema"]
        parts.append(f"<dt>Request body{optional}</dt><dd>{_describe(schema)}</dd>")
    items = ""
    for code, response in operation["responses"].items():
        content = response.get("content", {}).get("application/json")
        shape = f": {_describe(content['schema'])}" if content else ""
        items += f"<li><code>{_e(code)}</code> {_e(response['description'])}{shape}</li>"
    parts.append(f"<dt>Responses</dt><dd><ul>{items}</ul></dd></dl></section>")
    return "\n".join(parts)


def _component(name: str, schema: dict[str, Any]) -> str:
    parts = [f'<h3 id="schema-{_e(name)}"><code>{_e(name)}</code></h3>']
    if "description" in schema:
        parts.append(f"<p>{_e(schema['description'])}</p>")
    if "properties" in schema:
        required = set(schema.get("required", ()))
        rows = "".join(
            f"<tr><td><code>{_e(field)}</code></td><td>{_describe(prop)}</td>"
            f"<td>{'required' if field in required else _default(prop)}</td></tr>"
            for field, prop in schema["properties"].items()
        )
        parts.append(f"<table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>")
    else:
        parts.append(f"<p>{_describe(schema)}</p>")
    return "\n".join(parts)


_BOUNDS = (
    ("minimum", "&ge;"), ("maximum", "&le;"), ("exclusiveMinimum", "&gt;"), ("exclusiveMaximum", "&lt;"),
    ("minLength", "length &ge;"), ("maxLength", "length &le;"), ("minItems", "items &ge;"),
)


def _describe(schema: dict[str, Any]) -> str:
    """A JSON Schema as a short line of HTML: component names link to their section."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_TEMPLATE.format(name=""))
        return f'<a href="#schema-{_e(name)}"><code>{_e(name)}</code></a>'
    if "anyOf" in schema:
        return " | ".join(_describe(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{_e(json.dumps(value))}</code>" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array" and "prefixItems" in schema:  # a tuple: its items' types in order
        return "array [" + ", ".join(_describe(item) for item in schema["prefixItems"]) + "]"
    if kind == "array":
        return "array of " + _describe(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "object of " + _describe(schema["additionalProperties"])
    if kind is None:
        return _e(schema.get("description", "any JSON value"))
    text = f"<code>{_e(kind)}</code>"
    if "format" in schema:
        text += f" ({_e(schema['format'])})"
    bounds = [f"{word} {schema[key]}" for key, word in _BOUNDS if key in schema]
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _default(schema: dict[str, Any]) -> str:
    return f"default <code>{_e(json.dumps(schema['default']))}</code>" if "default" in schema else ""


def _e(text: object) -> str:
    return html.escape(str(text))
