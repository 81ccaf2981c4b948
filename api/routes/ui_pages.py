"""Endpoints only Prefect's web UI calls, in Prefect 3.8.8's shape: the flow run graph (v2) of the
run page, a task run with its flow run's name (v2's task run page), saved searches (v1's runs
page), the check of a form's values against its schema, and the collection registry's views."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from aiohttp import web

from runlog.commands import parameter_templates as templates
from runlog.commands import saved_searches as searches
from runlog.projections import flows as flow_views
from runlog.projections import variables as variable_reads
from runlog.projections.runs import FlowRunView, TaskRunView

from .. import keys
from ..http import (
    BadRequest, NotFound, Unprocessable, decode_body, empty_response, json_response, page_limit, path_uuid, present,
)
from ..openapi import documented
from ..prefect_ui import prefect_package_dir
from ..queries import artifacts as artifact_queries
from ..queries import runs as run_queries
from ..queries.filtering import DEFAULT_LIMIT
from ..queries.run_filters import FLOW_RUNS, TASK_RUNS
from ..schemas import filters as f
from ..schemas.artifacts import ArtifactFilterRequest
from ..schemas.ui_pages import (
    Edge, Graph, GraphArtifact, GraphState, Node, SavedSearch, SavedSearchCreate, SavedSearchFilterRequest, SchemaValidation,
    UITaskRun,
)
from .task_runs import to_task_run

routes = web.RouteTableDef()

GRAPH_MAX_NODES = 10_000
GRAPH_MAX_ARTIFACTS = 10_000
"""Prefect's defaults (server.flow_run_graph.max_nodes and max_artifacts)."""

_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def _since(request: web.Request) -> datetime:
    raw = request.query.get("since")
    if raw is None:
        return _EARLIEST
    try:
        since = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(f"since: not an ISO 8601 date-time: {raw!r}") from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


async def _graph_artifacts(store: Any, flow_run_id: UUID) -> dict[UUID | None, list[GraphArtifact]]:
    """The flow run's artifacts (results aside), oldest first, by task run (None: the flow run's own)."""
    body = msgspec.convert({"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}}, ArtifactFilterRequest)
    views = await artifact_queries.ARTIFACTS.page(store, body, sort="CREATED_DESC", limit=None, offset=0)
    views = sorted((v for v in views if v.type != "result"), key=lambda v: v.created)[:GRAPH_MAX_ARTIFACTS]
    latest: dict[str, UUID | None] = {}
    for key in {v.key for v in views if v.key is not None}:
        found = await artifact_queries.latest(store, key)
        latest[key] = found.latest.id if found is not None else None
    grouped: dict[UUID | None, list[GraphArtifact]] = {}
    for v in views:
        grouped.setdefault(v.task_run_id, []).append(GraphArtifact(
            id=v.id, created=v.created, key=v.key, type=v.type,
            is_latest=v.key is None or latest.get(v.key) == v.id,
            data=v.data if v.type == "progress" else None,
        ))
    return grouped


def _input_ids(task_run: TaskRunView) -> list[tuple[UUID, bool]]:
    """The runs TASK_RUN's inputs came from: (id, whether it is an encapsulating parent)."""
    found = []
    for key, arguments in (task_run.task_inputs or {}).items():
        for argument in arguments or []:
            raw = argument.get("id") if isinstance(argument, dict) else None
            if raw is None:
                continue
            try:
                found.append((UUID(str(raw)), key == "__parents__"))
            except ValueError:
                continue
    return found


@routes.get("/flow_runs/{id}/graph-v2")
@documented(
    summary="The graph of a flow run's task runs and subflow runs, their states and artifacts",
    response=Graph, query={"since": datetime | None},
    errors={400: "More nodes than the graph may have", 404: "Flow run not found", 422: "A bad 'since'"},
)
async def read_flow_run_graph_v2(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    run_id = path_uuid(request)
    since = _since(request)
    run: FlowRunView = present(await run_queries.get_flow_run(store, run_id), f"Flow run {run_id} not found")
    task_runs: list[TaskRunView] = await TASK_RUNS.page(
        store, msgspec.convert({"task_runs": {"flow_run_id": {"any_": [str(run_id)]}}}, f.TaskRunFilterRequest),
        sort="ID_DESC", limit=None, offset=0,
    )
    subflows: dict[UUID, FlowRunView] = {}
    if task_runs:
        body = msgspec.convert(
            {"flow_runs": {"parent_task_run_id": {"any_": [str(t.id) for t in task_runs]}}}, f.FlowRunFilterRequest,
        )
        for sub in await FLOW_RUNS.page(store, body, sort="ID_DESC", limit=None, offset=0):
            if sub.parent_task_run_id is not None:
                subflows[sub.parent_task_run_id] = sub
    flow_names: dict[UUID, str] = {}
    for sub in subflows.values():
        if sub.flow_id not in flow_names:
            flow = await flow_views.get(store, sub.flow_id)
            flow_names[sub.flow_id] = flow.name if flow is not None else ""

    # One node per task run, or per subflow run for the task run that wraps one (as Prefect's query).
    nodes: dict[UUID, dict[str, Any]] = {}
    for t in task_runs:
        sub = subflows.get(t.id)
        start = (sub.start_time or sub.expected_start_time if sub else None) or t.start_time or t.expected_start_time
        if start is None:
            continue
        task_type = t.state.type if t.state else None
        end = (sub.end_time if sub else None) or t.end_time or (
            t.expected_start_time if task_type is not None and task_type.value == "COMPLETED" else None
        )
        node_id = sub.id if sub else t.id
        nodes[node_id] = {
            "kind": "flow-run" if sub else "task-run", "id": node_id,
            "label": f"{flow_names[sub.flow_id]} / {sub.name}" if sub else t.name,
            "state_type": (sub.state.type if sub.state else None) if sub else task_type,
            "start_time": start, "end_time": end, "inputs": _input_ids(t),
        }
    parents: dict[UUID, list[UUID]] = {n: [] for n in nodes}
    children: dict[UUID, list[UUID]] = {n: [] for n in nodes}
    encapsulating: dict[UUID, list[UUID]] = {n: [] for n in nodes}
    for node_id, node in nodes.items():
        for parent_id, is_encapsulating in node["inputs"]:
            if parent_id not in nodes:
                continue
            if is_encapsulating:
                encapsulating[node_id].append(parent_id)
            else:
                parents[node_id].append(parent_id)
                children[parent_id].append(node_id)

    def by_start(ids: list[UUID]) -> list[Edge]:
        return [Edge(id=i) for i in sorted(dict.fromkeys(ids), key=lambda i: nodes[i]["start_time"])]

    artifacts = await _graph_artifacts(store, run_id)
    shown = sorted(
        (n for n in nodes.values() if n["end_time"] is None or n["end_time"] >= since),
        key=lambda n: (n["start_time"], n["end_time"] is None, n["end_time"] or n["start_time"]),
    )
    if len(shown) > GRAPH_MAX_NODES:
        raise BadRequest(f"The graph of flow run {run_id} has more than {GRAPH_MAX_NODES} nodes.")
    graph_nodes = [
        (n["id"], Node(
            kind=n["kind"], id=n["id"], label=n["label"], state_type=n["state_type"], start_time=n["start_time"],
            end_time=n["end_time"], parents=by_start(parents[n["id"]]), children=by_start(children[n["id"]]),
            encapsulating=by_start(encapsulating[n["id"]]), artifacts=artifacts.get(n["id"], []),
        ))
        for n in shown
    ]
    states = await run_queries.flow_run_states(store, run_id)
    return json_response(Graph(
        start_time=run.start_time or run.expected_start_time, end_time=run.end_time,
        root_node_ids=[n["id"] for n in shown if not parents[n["id"]]], nodes=graph_nodes,
        artifacts=artifacts.get(None, []),
        states=[GraphState(id=s.id, timestamp=s.timestamp, type=s.type, name=s.name) for s in states],
    ))


@routes.get("/ui/task_runs/{id}")
@documented(summary="Read a task run, with its flow run's name", response=UITaskRun, errors={404: "Task not found"})
async def read_task_run_with_flow_run_name(request: web.Request) -> web.Response:
    store = request.config_dict[keys.STORE]
    view: TaskRunView = present(await run_queries.get_task_run(store, path_uuid(request)), "Task not found")
    shaped = msgspec.structs.asdict(to_task_run(view, request.config_dict[keys.CLOCK]()))
    run = await run_queries.get_flow_run(store, view.flow_run_id) if view.flow_run_id is not None else None
    return json_response(UITaskRun(**shaped, flow_run_name=run.name if run is not None else None))


# -- saved searches ---------------------------------------------------------------------------

_SEARCH_NOT_FOUND = "Saved search not found"


def _search(view: searches.SavedSearchView) -> SavedSearch:
    return msgspec.convert(msgspec.structs.asdict(view), SavedSearch)


@routes.put("/saved_searches/")
@documented(
    summary="Save a search: created (201), or its filters replaced when the name exists (200)",
    request=SavedSearchCreate, response=SavedSearch, status=(201, 200),
)
async def create_saved_search(request: web.Request) -> web.Response:
    body = await decode_body(request, SavedSearchCreate)
    view, created = await searches.save(
        request.config_dict[keys.STORE], body.name, [msgspec.structs.asdict(f) for f in body.filters],
        clock=request.config_dict[keys.CLOCK],
    )
    return json_response(_search(view), status=201 if created else 200)


@routes.get("/saved_searches/{id}")
@documented(summary="Read a saved search", response=SavedSearch, errors={404: _SEARCH_NOT_FOUND})
async def read_saved_search(request: web.Request) -> web.Response:
    state = await searches.load(request.config_dict[keys.STORE])
    return json_response(_search(present(state.by_id.get(path_uuid(request)), _SEARCH_NOT_FOUND)))


@routes.post("/saved_searches/filter")
@documented(
    summary="Saved searches, by name", request=SavedSearchFilterRequest, request_required=False,
    response=list[SavedSearch],
)
async def read_saved_searches(request: web.Request) -> web.Response:
    body = await decode_body(request, SavedSearchFilterRequest, default=SavedSearchFilterRequest())
    limit = page_limit(body.limit, DEFAULT_LIMIT)
    state = await searches.load(request.config_dict[keys.STORE])
    found = sorted(state.by_id.values(), key=lambda s: s.name)[body.offset:body.offset + limit]
    return json_response([_search(v) for v in found])


@routes.delete("/saved_searches/{id}")
@documented(summary="Delete a saved search", status=204, errors={404: _SEARCH_NOT_FOUND})
async def delete_saved_search(request: web.Request) -> web.Response:
    found = await searches.delete(
        request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK],
    )
    present(found or None, _SEARCH_NOT_FOUND)
    return empty_response()


# -- schema validation (the UI's forms: blocks, deployment runs, work pool job variables) ------------


def _fix_properties(properties: dict[str, Any], required: list[str]) -> None:
    """Prefect's preprocessing of pydantic-v1-style schemas: an optional property without a default
    may be null, and a tuple's list of ``items`` is its ``prefixItems``."""
    for key, schema in properties.items():
        if not isinstance(schema, dict):
            continue
        if key not in required and "type" in schema and schema.get("type") != "null" and "default" not in schema:
            schema["anyOf"] = [{"type": schema.pop("type")}, {"type": "null"}]
        if isinstance(schema.get("items"), list) and schema["items"] and not schema.get("prefixItems"):
            schema["prefixItems"] = schema.pop("items")
        if isinstance(schema.get("properties"), dict):
            _fix_properties(schema["properties"], schema.get("required", []))


def _preprocess(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    if isinstance(schema.get("properties"), dict):
        _fix_properties(schema["properties"], schema.get("required", []))
    definitions = schema.get("definitions")
    if isinstance(definitions, dict):
        for definition in list(definitions.values()):
            if not isinstance(definition, dict):
                continue
            if isinstance(definition.get("properties"), dict):
                _fix_properties(definition["properties"], definition.get("required", []))
            if "block_type_slug" in definition and "title" in definition:
                # A block may also be given as a reference to a saved one ({"$ref": id or {...}}).
                definitions[definition["title"]] = {"oneOf": [definition, {
                    "type": "object",
                    "properties": {"$ref": {"oneOf": [
                        {"type": "string", "format": "uuid"},
                        {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
                    ]}},
                    "required": ["$ref"],
                }]}
    return schema


def _error_tree(errors: list[Any]) -> dict[str, Any]:
    """Prefect's build_error_obj: errors nested by property and index; a placeholder's own error
    wins over the others at its path, and an unrendered template is no error."""
    by_path: dict[tuple[Any, ...], list[Any]] = {}
    for error in errors:
        by_path.setdefault(tuple(error.relative_path), []).append(error)
    kept = []
    for grouped in by_path.values():
        own = [e for e in grouped if e.validator == "_placeholders"]
        kept.extend(own or grouped)
    tree: list[Any] = []
    for error in kept:
        if isinstance(error.instance, templates.Placeholder) and not isinstance(error.instance, templates.HydrationError):
            continue
        path = list(error.relative_path)
        if error.validator == "required":
            path.append(error.message.partition(" ")[0].strip("'"))
        current = tree
        if not path:
            current.append(error.message)
        while path:
            part = path.pop(0)
            key = "index" if isinstance(part, int) else "property"
            if not path:
                current.append({key: part, "errors": [error.message]})
                break
            entry = next((e for e in current if isinstance(e, dict) and e.get(key) == part), None)
            if entry is None:
                entry = {key: part, "errors": []}
                current.append(entry)
            current = entry["errors"]
    return {"errors": tree, "valid": not tree}


def _validator_class() -> Any:
    import jsonschema

    def placeholders(_validator: Any, _value: Any, instance: Any, _schema: Any) -> Any:
        if isinstance(instance, templates.HydrationError):
            yield jsonschema.ValidationError(instance.message)

    validators = dict(jsonschema.Draft202012Validator.VALIDATORS, _placeholders=placeholders)
    return jsonschema.validators.create(
        meta_schema=jsonschema.Draft202012Validator.META_SCHEMA, validators=validators, version="runlog-ui",
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        id_of=jsonschema.Draft202012Validator.ID_OF,
        # every subschema also runs the placeholder check, as Prefect's validator does
        applicable_validators=lambda schema: {**schema, "_placeholders": None}.items(),
    )


@routes.post("/ui/schemas/validate")
@documented(
    summary="Check values against a JSON schema, workspace variables resolved: the errors by property",
    request=SchemaValidation, response=dict[str, Any], errors={422: "Not a valid schema"},
)
async def validate_schema_values(request: web.Request) -> web.Response:
    import jsonschema
    import referencing

    body = await decode_body(request, SchemaValidation)
    schema = _preprocess(body.schema)
    validator_class = _validator_class()
    try:
        validator_class.check_schema(schema, format_checker=validator_class.FORMAT_CHECKER)
    except jsonschema.SchemaError as exc:
        raise Unprocessable(f"Invalid schema: {exc.message}") from None
    variables: dict[str, Any] = {}
    for name in templates.variable_names(body.values):
        found = await variable_reads.get_by_name(request.config_dict[keys.STORE], name)
        if found is not None:
            variables[name] = found.value
    values = templates.hydrate(body.values, templates.Context(render_variables=True, variables=variables))
    try:
        validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER,
                                    registry=referencing.Registry())
        errors = list(validator.iter_errors(values))
    except RecursionError:
        raise Unprocessable("Invalid schema: Unable to validate schema with circular references.") from None
    except referencing.exceptions.Unresolvable as exc:
        raise Unprocessable(f"Invalid schema: Validation failed. Failure reason: {exc}") from None
    return json_response(_error_tree(errors))


# -- collection views (the work pool form's worker types) ---------------------------------------

KNOWN_VIEWS = ("aggregate-block-metadata", "aggregate-flow-metadata", "aggregate-worker-metadata", "demo-flows")
"""The views Prefect's server knows. It fetches them from Prefect's collection registry and falls
back to the copies the prefect package ships; runlog fetches nothing and serves the copies."""


@routes.get("/collections/views/{view}")
@documented(
    summary="A view of Prefect's collection registry, from the copy the prefect package ships",
    response=dict[str, Any], errors={404: "An unknown view, or one the installed prefect package has no copy of"},
)
async def read_view_content(request: web.Request) -> web.Response:
    view = request.match_info["view"]
    if view not in KNOWN_VIEWS:
        raise NotFound(f"View {view} not found in registry")
    package = prefect_package_dir()
    path = package / "server" / "api" / "collections_data" / "views" / f"{view}.json" if package else None
    if path is None or not path.is_file():
        raise NotFound(f"Requested content missing for view {view}")
    data = json.loads(path.read_bytes())
    if view == "aggregate-worker-metadata" and isinstance(data.get("prefect"), dict):
        data["prefect"].pop("prefect-agent", None)  # as Prefect's server: agents are gone
    return json_response(data)
