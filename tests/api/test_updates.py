"""PATCH and DELETE of task runs and flows over the API."""

from __future__ import annotations

from .http_server import serve
from .test_cli_runs import local, seed  # noqa: F401 - the fixture is used by name


async def test_task_runs_can_be_renamed_and_deleted_and_flows_retagged(local):
    async with serve(local) as server:
        ids = await seed(server)
        assert (await server.request("PATCH", f"/task_runs/{ids['task']}", json={"name": "renamed"}))[0] == 204
        assert (await server.request("GET", f"/task_runs/{ids['task']}"))[1]["name"] == "renamed"
        assert (await server.request("PATCH", f"/flows/{ids['flow']}", json={"tags": ["etl"]}))[0] == 204
        assert (await server.request("GET", f"/flows/{ids['flow']}"))[1]["tags"] == ["etl"]
        assert (await server.request("DELETE", f"/task_runs/{ids['task']}"))[0] == 204
        assert (await server.request("GET", f"/task_runs/{ids['task']}"))[0] == 404
