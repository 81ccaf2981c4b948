"""Work pool and queue status changes as Prefect's server events, over a real server on both
backends: they appear in the event feed with Prefect's shapes, and an automation fires on a
pool going NOT_READY."""

from __future__ import annotations

from runlog.api import keys
from runlog.commands.workers import check_statuses

from ..servers import until
from .test_events_feed import feed, feed_holds, ok

ON_NOT_READY = {
    "name": "pool down", "enabled": True,
    "trigger": {
        "type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
        "match": {"prefect.resource.id": "prefect.work-pool.*"},
        "expect": ["prefect.work-pool.not-ready"], "after": [], "for_each": [],
    },
    "actions": [{"type": "do-nothing"}],
}
POOL_EVENTS = {"filter": {"event": {"prefix": ["prefect.work-pool.", "prefect.work-queue."]}, "order": "ASC"}}


async def test_status_changes_show_as_prefects_events_and_fire_an_automation(server, clock) -> None:
    automation = await ok(server, "POST", "/automations/", 201, json=ON_NOT_READY)
    pool = await ok(server, "POST", "/work_pools/", 201, json={"name": "p", "type": "process"})
    status, _ = await server.request("POST", "/work_pools/p/workers/heartbeat", json={"name": "w", "heartbeat_interval_seconds": 10})
    assert status == 204
    await ok(server, "POST", "/work_pools/p/get_scheduled_flow_runs", json={})
    clock.advance(31)
    await check_statuses(server.app[keys.STORE], clock())  # the worker OFFLINE, the pool NOT_READY

    answer = await feed_holds(server, 3, POOL_EVENTS)
    events = answer["events"]
    assert [e["event"] for e in events] == [
        "prefect.work-pool.ready", "prefect.work-queue.ready", "prefect.work-pool.not-ready",
    ]
    ready, queue_ready, not_ready = events
    assert ready["resource"] == {
        "prefect.resource.id": f"prefect.work-pool.{pool['id']}", "prefect.resource.name": "p",
        "prefect.work-pool.type": "process",
    }
    assert not_ready["follows"] == ready["id"]  # within ten minutes of the previous status event
    assert not_ready["occurred"] == "2026-03-01T12:00:31Z"
    assert queue_ready["resource"] == {
        "prefect.resource.id": f"prefect.work-queue.{pool['default_queue_id']}", "prefect.resource.name": "default",
        "prefect.resource.role": "work-queue",
    }
    assert queue_ready["related"] == [{
        "prefect.resource.id": f"prefect.work-pool.{pool['id']}", "prefect.resource.name": "p",
        "prefect.work-pool.type": "process", "prefect.resource.role": "work-pool",
    }]

    fired: dict = {}

    async def triggered() -> bool:
        fired.update(await feed(server, {"filter": {"event": {"name": ["prefect.automation.triggered"]}}}))
        return fired["total"] >= 1

    await until(triggered, what="the automation's firing on prefect.work-pool.not-ready")
    [firing] = fired["events"]
    assert firing["resource"]["prefect.resource.id"] == f"prefect.automation.{automation['id']}"
    assert firing["payload"]["triggering_event"]["id"] == not_ready["id"]
