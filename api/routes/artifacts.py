"""/artifacts: what flows and tasks publish (markdown, tables, links, progress, images), and the
latest artifact of each key, with Prefect 3.8's routes and shapes."""

from __future__ import annotations


from aiohttp import web

from runlog.commands import artifacts as commands
from runlog.projections.artifacts import ArtifactView

from .. import keys
from ..http import decode_body, json_response, no_content, path_uuid, present, sent_fields
from ..openapi import documented
from ..queries import artifacts as queries
from ..schemas import artifacts as s
from .listing import listing_routes, timeless

routes = web.RouteTableDef()

NOT_FOUND = "Artifact not found."
_FILTER_ERRORS = {422: "A bad limit, or a filter runlog cannot evaluate"}


def to_artifact(view: ArtifactView) -> s.Artifact:
    return s.Artifact(
        id=view.id, created=view.created, updated=view.updated, key=view.key, type=view.type,
        description=view.description, data=view.data, metadata_=view.metadata_, flow_run_id=view.flow_run_id,
        task_run_id=view.task_run_id,
    )


def to_collection(found: queries.Collection) -> s.ArtifactCollection:
    latest = found.latest
    assert latest.key is not None
    return s.ArtifactCollection(
        id=found.id, created=found.created, updated=latest.updated, key=latest.key, latest_id=latest.id,
        type=latest.type, description=latest.description, data=latest.data, metadata_=latest.metadata_,
        flow_run_id=latest.flow_run_id, task_run_id=latest.task_run_id,
    )




listing_routes(
    routes, __name__, "/artifacts", "artifacts", queries.ARTIFACTS, timeless(to_artifact), sort="ID_DESC",
    filter=(s.ArtifactFilterRequest, s.Artifact, "List artifacts"), count=(s.ArtifactCountRequest, "Count artifacts"),
    errors=_FILTER_ERRORS, count_errors=_FILTER_ERRORS,
)
listing_routes(
    routes, __name__, "/artifacts/latest", "latest_artifacts", queries.COLLECTIONS, timeless(to_collection), sort="ID_DESC",
    filter=(s.ArtifactCollectionFilterRequest, s.ArtifactCollection, "List the latest artifact of each key"),
    count=(s.ArtifactCollectionCountRequest, "Count the keys with artifacts"), errors=_FILTER_ERRORS,
    count_errors=_FILTER_ERRORS,
)


@routes.post("/artifacts/")
@documented(
    summary="Create an artifact", request=s.ArtifactCreate, response=s.Artifact, status=201,
    errors={422: "A bad key, or a field runlog cannot store"},
)
async def create_artifact(request: web.Request) -> web.Response:
    body = await decode_body(request, s.ArtifactCreate)
    view = await commands.create(request.config_dict[keys.STORE], body, clock=request.config_dict[keys.CLOCK])
    return json_response(to_artifact(view), status=201)


@routes.get("/artifacts/{key}/latest")
@documented(
    summary="Read the latest artifact of a key",
    description="As in Prefect, the answer carries the id of the key's latest-artifact row, not the artifact's.",
    response=s.Artifact, errors={404: NOT_FOUND},
)
async def read_latest_artifact(request: web.Request) -> web.Response:
    found = present(await queries.latest(request.config_dict[keys.STORE], request.match_info["key"]), NOT_FOUND)
    latest = found.latest
    return json_response(s.Artifact(
        id=found.id, created=found.created, updated=latest.updated, key=latest.key, type=latest.type,
        description=latest.description, data=latest.data, metadata_=latest.metadata_,
        flow_run_id=latest.flow_run_id, task_run_id=latest.task_run_id,
    ))


@routes.get("/artifacts/{id}")
@documented(summary="Read an artifact", response=s.Artifact, errors={404: NOT_FOUND})
async def read_artifact(request: web.Request) -> web.Response:
    view = await queries.get(request.config_dict[keys.STORE], path_uuid(request))
    return json_response(to_artifact(present(view, NOT_FOUND)))


@routes.patch("/artifacts/{id}")
@documented(
    summary="Update an artifact's data, description or metadata", request=s.ArtifactUpdate, status=204,
    errors={404: NOT_FOUND},
)
async def update_artifact(request: web.Request) -> web.Response:
    artifact_id = path_uuid(request)
    body = await decode_body(request, s.ArtifactUpdate)
    updated = await commands.update(
        request.config_dict[keys.STORE], artifact_id, sent_fields(body), clock=request.config_dict[keys.CLOCK]
    )
    return no_content(updated, NOT_FOUND)


@routes.delete("/artifacts/{id}")
@documented(summary="Delete an artifact", status=204, errors={404: NOT_FOUND})
async def delete_artifact(request: web.Request) -> web.Response:
    deleted = await commands.delete(request.config_dict[keys.STORE], path_uuid(request), clock=request.config_dict[keys.CLOCK])
    return no_content(deleted, NOT_FOUND)
