"""/flow_runs/{id}/input and /flow_runs/{id}/resume: the inputs a paused flow waits for, and
resuming it with one, with Prefect 3.8's routes, status codes and messages."""

from __future__ import annotations

from aiohttp import hdrs, web

from runlog.commands import flow_run_inputs as commands
from runlog.projections import flow_run_inputs as reads
from runlog.projections.flow_run_inputs import FlowRunInputView

from .. import keys
from ..http import decode_body, json_response, no_content, path_uuid, present
from ..openapi import documented
from ..schemas.flow_run_inputs import FlowRunInput, FlowRunInputCreate, FlowRunInputFilter, ResumeFlowRun
from ..schemas.runs import OrchestrationResult
from .entity import orchestration_result

routes = web.RouteTableDef()


def to_input(view: FlowRunInputView) -> FlowRunInput:
    return FlowRunInput(
        id=view.id, created=view.created, updated=view.created, flow_run_id=view.flow_run_id, key=view.key,
        value=view.value, sender=view.sender,
    )


@routes.post("/flow_runs/{id}/input")
@documented(
    summary="Create a key/value input for a flow run", request=FlowRunInputCreate, status=201,
    errors={404: commands.RUN_NOT_FOUND, 409: "The run has an input with this key", 422: "A bad key"},
)
async def create_flow_run_input(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, FlowRunInputCreate)
    await commands.create(
        request.config_dict[keys.STORE], run_id, body.key, body.value, body.sender,
        clock=request.config_dict[keys.CLOCK],
    )
    return web.Response(status=201, body=b"null", content_type="application/json")


@routes.post("/flow_runs/{id}/input/filter")
@documented(summary="A flow run's inputs by key prefix, oldest first", request=FlowRunInputFilter,
            response=list[FlowRunInput])
async def filter_flow_run_input(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, FlowRunInputFilter)
    found = await reads.filter_inputs(request.config_dict[keys.STORE], run_id, body.prefix, body.limit,
                                      body.exclude_keys)
    return json_response([to_input(view) for view in found])


@routes.route(hdrs.METH_ANY, "/flow_runs/{id}/input/filter")
async def input_filter_other_methods(request: web.Request) -> web.Response:
    # The filter's path is also an input key's path: any method but POST gets the filter's own
    # 405 (api/routing.py does the same for fixed paths), never the input named "filter".
    raise web.HTTPMethodNotAllowed(request.method, ["POST"])


@routes.get("/flow_runs/{id}/input/{key}")
@documented(summary="A flow run input's value, as plain text", errors={404: commands.INPUT_NOT_FOUND})
async def read_flow_run_input(request: web.Request) -> web.Response:
    found = await reads.get_by_key(request.config_dict[keys.STORE], path_uuid(request), request.match_info["key"])
    view = present(found, commands.INPUT_NOT_FOUND)
    return web.Response(text=view.value, content_type="text/plain")


@routes.delete("/flow_runs/{id}/input/{key}")
@documented(summary="Delete a flow run input", status=204, errors={404: commands.INPUT_NOT_FOUND})
async def delete_flow_run_input(request: web.Request) -> web.Response:
    deleted = await commands.delete(
        request.config_dict[keys.STORE], path_uuid(request), request.match_info["key"],
        clock=request.config_dict[keys.CLOCK],
    )
    return no_content(deleted, commands.INPUT_NOT_FOUND)


@routes.post("/flow_runs/{id}/resume")
@documented(
    summary="Resume a paused flow run, with the input it waits for; 201 when a state was written",
    request=ResumeFlowRun, request_required=False, response=OrchestrationResult, status=(201, 200),
    errors={404: commands.RUN_NOT_FOUND},
)
async def resume_flow_run(request: web.Request) -> web.Response:
    run_id = path_uuid(request)
    body = await decode_body(request, ResumeFlowRun, default=ResumeFlowRun())
    resumed = await commands.resume(
        request.config_dict[keys.STORE], run_id, body.run_input,
        cache=request.config_dict[keys.VIEW_CACHE], clock=request.config_dict[keys.CLOCK],
    )
    decision = resumed.decision
    if resumed.refused:
        # Not paused, or the input refused: Prefect answers with abort details whatever the
        # status (ABORT or REJECT), and the run's state when it was paused.
        result = OrchestrationResult(state=resumed.state, status=decision.status.value,
                                     details={"type": "abort_details", "reason": decision.reason})
    else:
        result = orchestration_result(resumed, decision)
    return json_response(result, status=201 if decision.state is not None else 200)
