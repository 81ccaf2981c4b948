"""Two server processes' worth of apps on one database: cached views never cause a wrong decision."""

from __future__ import annotations

from ..servers import serve


async def test_a_server_with_a_stale_cached_view_decides_again_against_the_database(tmp_path, store_url):
    env = {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}
    async with serve(env) as first, serve(env) as second:
        _, flow = await first.request("POST", "/flows/", json={"name": "shared"})
        _, run = await first.request("POST", "/flow_runs/", json={"flow_id": flow["id"]})
        path = f"/flow_runs/{run['id']}/set_state"
        # The first server decides PENDING -> RUNNING and caches the run at that version.
        status, result = await first.request("POST", path, json={"state": {"type": "RUNNING"}})
        assert (status, result["status"]) == (201, "ACCEPT")
        # The second server moves the run on: the first's cached view is now stale.
        status, result = await second.request("POST", path, json={"state": {"type": "CANCELLING"}})
        assert (status, result["status"]) == (201, "ACCEPT")
        # Decided against the stale cache (RUNNING), COMPLETED would be accepted; against the
        # database the run is CANCELLING, which may only become CANCELLED.
        status, result = await first.request("POST", path, json={"state": {"type": "COMPLETED"}})
        assert (status, result["status"]) == (200, "REJECT")
        assert result["state"]["type"] == "CANCELLING"
        _, states = await first.request("GET", f"/flow_run_states/?flow_run_id={run['id']}")
        assert [s["type"] for s in states] == ["PENDING", "RUNNING", "CANCELLING"]
