"""Work pool and queue events as Prefect's server emits them, over a real server on both
backends: status changes, creation, updates and deletion appear in the event feed with
Prefect's shapes, and an automation fires on a pool going NOT_READY."""

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
STATUS_EVENTS = {"filter": {"event": {"name": [
    f"prefect.{kind}.{status}" for kind in ("work-pool", "work-queue") for status in ("ready", "not-ready", "paused")
]}, "order": "ASC"}}
POOL_EVENTS = {"filter": {"event": {"prefix": ["prefect.work-pool.", "prefect.work-queue."]}, "order": "ASC"}}


async def test_status_changes_show_as_prefects_events_and_fire_an_automation(server, clock) -> None:
    automation = await ok(server, "POST", "/automations/", 201, json=ON_NOT_READY)
    pool = await ok(server, "POST", "/work_pools/", 201, json={"name": "p", "type": "process"})
    status, _ = await server.request("POST", "/work_pools/p/workers/heartbeat", json={"name": "w", "heartbeat_interval_seconds": 10})
    assert status == 204
    await ok(server, "POST", "/work_pools/p/get_scheduled_flow_runs", json={})
    clock.advance(31)
    await check_statuses(server.app[keys.STORE], clock())  # the worker OFFLINE, the pool NOT_READY

    answer = await feed_holds(server, 4, STATUS_EVENTS)
    events = answer["events"]
    assert [e["event"] for e in events] == [
        "prefect.work-pool.not-ready", "prefect.work-pool.ready", "prefect.work-queue.ready",
        "prefect.work-pool.not-ready",
    ]
    created, ready, queue_ready, not_ready = events
    # The new pool's status, as Prefect's POST /work_pools/ emits it, follows nothing, nor is followed.
    assert created["follows"] is None and ready["follows"] is None
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
        return fired["total"] >= 2

    # It fires on the new pool's not-ready and on the pool's going NOT_READY, as on Prefect's server.
    await until(triggered, what="the automation's firings on prefect.work-pool.not-ready")
    assert {f["resource"]["prefect.resource.id"] for f in fired["events"]} == {f"prefect.automation.{automation['id']}"}
    assert {f["payload"]["triggering_event"]["id"] for f in fired["events"]} == {created["id"], not_ready["id"]}


def _pool_resource(pool: dict) -> dict:
    return {
        "prefect.resource.id": f"prefect.work-pool.{pool['id']}", "prefect.resource.name": pool["name"],
        "prefect.work-pool.type": pool["type"], "prefect.resource.role": "work-pool",
    }


def _queue_resource(queue_id: str, name: str) -> dict:
    return {"prefect.resource.id": f"prefect.work-queue.{queue_id}", "prefect.resource.name": name,
            "prefect.resource.role": "work-queue"}


async def test_creating_updating_and_deleting_pools_and_queues_show_as_prefects_events(server) -> None:
    pool = await ok(server, "POST", "/work_pools/", 201, json={"name": "p", "type": "process", "description": "a"})
    queue = await ok(server, "POST", "/work_pools/p/queues", 201, json={"name": "fast", "priority": 1})
    await ok(server, "PATCH", "/work_pools/p", 204, json={"description": "b", "concurrency_limit": 3})
    await ok(server, "PATCH", "/work_pools/p", 204, json={"description": "b"})  # nothing changed: no event
    await ok(server, "PATCH", "/work_pools/p", 204, json={"is_paused": True})  # a status event only
    await ok(server, "PATCH", "/work_pools/p/queues/fast", 204, json={"name": "faster", "description": "quick"})
    await ok(server, "PATCH", "/work_pools/p/queues/default", 204, json={"priority": 1})  # moves "faster" silently
    await ok(server, "DELETE", "/work_pools/p/queues/faster", 204)
    await ok(server, "DELETE", "/work_pools/p", 204)

    events = [e for e in (await feed_holds(server, 11, POOL_EVENTS))["events"] if e["event"] != "prefect.work-pool.not-ready"]
    # The pool's deletion shows its remaining queue's and its own at one time, in no set order.
    events[-2:] = sorted(events[-2:], key=lambda e: e["event"], reverse=True)
    assert [e["event"] for e in events] == [
        "prefect.work-pool.created", "prefect.work-queue.created", "prefect.work-queue.created",
        "prefect.work-pool.updated", "prefect.work-pool.paused", "prefect.work-queue.updated",
        "prefect.work-queue.updated", "prefect.work-queue.deleted", "prefect.work-queue.deleted",
        "prefect.work-pool.deleted",
    ]
    created, default_created, fast_created, updated, _paused, renamed, reprioritised, deleted, default_deleted, pool_deleted = events
    assert pool_deleted["occurred"] == default_deleted["occurred"]
    pool_related = [{"prefect.resource.id": f"prefect.work-queue.{pool['default_queue_id']}", "prefect.resource.role": "default-queue"}]
    in_pool = [{**_pool_resource(pool), "prefect.resource.role": "work-pool"}]
    assert created["resource"] == _pool_resource(pool)
    assert created["related"] == pool_related
    assert default_created["resource"] == _queue_resource(pool["default_queue_id"], "default")
    assert fast_created["resource"] == _queue_resource(queue["id"], "fast")
    assert fast_created["related"] == in_pool
    assert updated["resource"] == _pool_resource(pool)
    assert updated["related"] == []
    assert updated["payload"] == {
        "updated_fields": ["description", "concurrency_limit"],
        "updates": {"description": {"from": "a", "to": "b"}, "concurrency_limit": {"from": None, "to": 3}},
    }
    assert renamed["resource"] == _queue_resource(queue["id"], "faster")
    assert renamed["related"] == in_pool
    assert renamed["payload"] == {
        "updated_fields": ["name", "description"],
        "updates": {"name": {"from": "fast", "to": "faster"}, "description": {"from": "", "to": "quick"}},
    }
    assert reprioritised["resource"] == _queue_resource(pool["default_queue_id"], "default")
    assert reprioritised["payload"]["updates"] == {"priority": {"from": 2, "to": 1}}
    assert deleted["resource"] == _queue_resource(queue["id"], "faster")
    assert default_deleted["resource"] == _queue_resource(pool["default_queue_id"], "default")
    assert default_deleted["related"] == in_pool
    assert pool_deleted["resource"] == _pool_resource(pool)
    assert pool_deleted["related"] == pool_related
    assert len({e["id"] for e in events}) == len(events)
