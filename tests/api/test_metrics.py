"""GET /metrics: Prometheus' text format over a real socket, parsed with prometheus_client's
own parser, on both backends; counts by route template, the log's gauges, RUNLOG_METRICS_ENABLED.

The instruments are the process's (prometheus_client's registry), so a test compares a scrape
after its requests with one before them rather than trusting a count to start at zero.
"""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from runlog.api import keys
from runlog.api.metrics import (
    HTTP_BUCKETS, HTTP_DURATION, HTTP_DURATION_HELP, HTTP_REQUESTS, HTTP_REQUESTS_HELP, RequestCounts, read_gauges,
)
from runlog.commands import deliveries
from runlog.eventstore import RowChanges
from runlog.projections.checkpoints import CHECKPOINTS, checkpoint
from runlog.projections.event_feed import NAME as EVENT_FEED

from ..servers import serve, until
from .conftest import START, TIME_BASED_SERVICES_OFF

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(server) -> Samples:
    """Every sample of one scrape, keyed by (sample name, labels)."""
    origin = server.base.removesuffix("/api")
    async with server.session.get(origin + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


async def test_requests_are_counted_by_route_template_and_status(server) -> None:
    status, flow = await server.request("POST", "/flows/", json={"name": f"metrics-{uuid.uuid4().hex[:8]}"})
    assert status == 201
    before = await scrape(server)
    reads, misses = 7, 3
    for _ in range(reads):
        assert (await server.request("GET", f"/flows/{flow['id']}"))[0] == 200
    for _ in range(misses):
        assert (await server.request("GET", f"/flows/{uuid.uuid4()}"))[0] == 404
    after = await scrape(server)

    route = "/api/flows/{id}"
    counted = "runlog_http_requests_total"
    assert value(after, counted, method="GET", route=route, status="200") - \
        value(before, counted, method="GET", route=route, status="200") == reads
    assert value(after, counted, method="GET", route=route, status="404") - \
        value(before, counted, method="GET", route=route, status="404") == misses
    timed = "runlog_http_request_duration_seconds_count"
    assert value(after, timed, method="GET", route=route) - value(before, timed, method="GET", route=route) \
        == reads + misses
    # A raw path (with an id in it) never becomes a label: one series per route, not per run.
    routes = {labels["route"] for labels in labelled(after, counted)}
    assert not any(flow["id"] in r for r in routes), routes


async def test_an_unknown_path_is_counted_under_one_label(server) -> None:
    before = await scrape(server)
    for n in range(4):
        assert (await server.request("GET", f"/no-such-thing-{n}"))[0] == 404
    after = await scrape(server)
    counted = "runlog_http_requests_total"
    assert value(after, counted, method="GET", route="(unmatched)", status="404") - \
        value(before, counted, method="GET", route="(unmatched)", status="404") == 4


def test_one_process_request_counts_give_the_samples_of_prometheus_clients_instruments() -> None:
    """A server of one process keeps its request counts as plain numbers (api/metrics.py's
    RequestCounts): scraped, they are the samples prometheus_client's Counter and Histogram give
    for the same requests, in the same order (their _created times aside)."""
    def request(method: str, route: str) -> Any:
        resource = SimpleNamespace(canonical=route)
        return SimpleNamespace(method=method, match_info=SimpleNamespace(route=SimpleNamespace(resource=resource)))

    counts, registry = RequestCounts(), CollectorRegistry()
    counter = Counter(HTTP_REQUESTS, HTTP_REQUESTS_HELP, ("method", "route", "status"), registry=registry)
    histogram = Histogram(HTTP_DURATION, HTTP_DURATION_HELP, ("method", "route"), buckets=HTTP_BUCKETS,
                          registry=registry)
    answered = [
        ("POST", "/api/flow_runs/{id}/set_state", 201, 0.004), ("GET", "/api/flows/{id}", 200, 0.001),
        ("POST", "/api/flow_runs/{id}/set_state", 200, 0.0025), ("GET", "/api/flows/{id}", 404, 0.0),
        ("POST", "/api/flow_runs/{id}/set_state", 201, 12.5), ("GET", "(unmatched)", 404, 0.3),
        ("POST", "/api/flow_runs/{id}/set_state", 201, 0.1), ("GET", "/api/flows/{id}", 200, 10.0),
    ]
    for method, route, status, seconds in answered:
        counts.observe(request(method, route), status, seconds)
        counter.labels(method, route, str(status)).inc()
        histogram.labels(method, route).observe(seconds)

    def samples(families: Any) -> list[tuple[str, str, dict[str, str], float | None]]:
        return [(family.name, sample.name, sample.labels, None if sample.name.endswith("_created") else sample.value)
                for family in families for sample in family.samples]

    ours, theirs = samples(counts.collect()), samples(registry.collect())
    assert ours == theirs
    assert ("runlog_http_requests", "runlog_http_requests_total",
            {"method": "POST", "route": "/api/flow_runs/{id}/set_state", "status": "201"}, 3.0) in ours
    assert ("runlog_http_request_duration_seconds", "runlog_http_request_duration_seconds_bucket",
            {"method": "GET", "route": "/api/flows/{id}", "le": "0.001"}, 2.0) in ours


async def test_appends_and_group_commit_batches_are_counted(server) -> None:
    before = await scrape(server)
    created = 5
    for n in range(created):
        assert (await server.request("POST", "/flows/", json={"name": f"batch-{n}-{uuid.uuid4().hex[:6]}"}))[0] == 201
    after = await scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    committed = delta("runlog_eventstore_appends_total", outcome="committed")
    rejected = delta("runlog_eventstore_appends_total", outcome="rejected")
    assert committed >= created  # background services may append beside the test's requests
    assert delta("runlog_eventstore_events_appended_total") >= created
    # Every committed or rejected append request was in exactly one batch.
    assert delta("runlog_eventstore_batch_appends_sum") == committed + rejected
    assert 1 <= delta("runlog_eventstore_batch_appends_count") <= committed + rejected


async def test_the_log_head_and_each_checkpoint_with_its_lag(server) -> None:
    store = server.app[keys.STORE]
    assert (await server.request("POST", "/flows/", json={"name": f"head-{uuid.uuid4().hex[:8]}"}))[0] == 201
    # The event feed's projection service folds the log from its checkpoint; wait for it to reach the head.
    head = await store.head()
    async def caught_up() -> bool:
        return await checkpoint(store, EVENT_FEED) >= head

    await until(caught_up, what="the event feed's checkpoint reaching the head")
    samples = await scrape(server)
    scraped_head = value(samples, "runlog_log_head_position")
    assert scraped_head >= head
    assert value(samples, "runlog_metrics_database_up") == 1
    projections = {labels["projection"] for labels in labelled(samples, "runlog_projection_checkpoint_position")}
    assert EVENT_FEED in projections, projections
    assert value(samples, "runlog_projection_checkpoint_position", projection=EVENT_FEED) >= head
    if value(samples, "runlog_projection_lag_events", projection=EVENT_FEED) == 0:  # nothing appended since
        assert value(samples, "runlog_projection_lag_seconds", projection=EVENT_FEED) == 0
    for name in projections:
        position = value(samples, "runlog_projection_checkpoint_position", projection=name)
        assert position <= await checkpoint(store, name)  # it may have moved on since the scrape
        assert value(samples, "runlog_projection_lag_events", projection=name) == max(0, scraped_head - position)


async def test_a_projection_behind_the_head_shows_its_lag_in_events_and_log_time(server) -> None:
    store = server.app[keys.STORE]
    assert (await server.request("POST", "/flows/", json={"name": f"a-{uuid.uuid4().hex[:8]}"}))[0] == 201
    # A checkpoint that stopped here, as a stalled projection's would.
    stalled, at = f"stalled-{uuid.uuid4().hex[:8]}", await store.head()
    changes = RowChanges()
    changes.upsert(CHECKPOINTS, (stalled, at))
    await store.write_tables(changes)
    for n in range(3):
        assert (await server.request("POST", "/flows/", json={"name": f"b-{n}-{uuid.uuid4().hex[:8]}"}))[0] == 201

    samples = await scrape(server)
    head = value(samples, "runlog_log_head_position")
    assert value(samples, "runlog_projection_checkpoint_position", projection=stalled) == at
    assert value(samples, "runlog_projection_lag_events", projection=stalled) == head - at >= 3
    # Log time: from the first event it has not folded to the head, as the store recorded them.
    first, last = [r async for r in store.read_all(after=at, limit=1)], [
        r async for r in store.read_all(after=int(head) - 1, limit=1)]
    expected = (last[0].recorded_at - first[0].recorded_at).total_seconds()
    assert value(samples, "runlog_projection_lag_seconds", projection=stalled) == pytest.approx(expected)


async def test_workers_are_counted_by_pool_and_status(server) -> None:
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    assert (await server.request("POST", "/work_pools/", json={"name": pool, "type": "process"}))[0] == 201
    for name in ("w1", "w2"):
        status, _ = await server.request("POST", f"/work_pools/{pool}/workers/heartbeat", json={"name": name})
        assert status == 204
    samples = await scrape(server)
    assert value(samples, "runlog_workers", work_pool=pool, status="ONLINE") == 2


async def test_deliveries_waiting_or_dead_are_gauged_by_channel_and_status(server) -> None:
    # Scheduled to a channel that does not exist: the server's dispatcher dead-letters them.
    store, clock, channel = server.app[keys.STORE], server.app[keys.CLOCK], uuid.uuid4()
    for _ in range(2):
        await deliveries.schedule(store, rule_id=uuid.uuid4(), channel_id=channel, event_id=uuid.uuid4(),
                                  subject="s", body="b", clock=clock)

    async def dead() -> bool:
        return value(await scrape(server), "runlog_notifier_deliveries", channel_id=str(channel), status="dead") == 2

    await until(dead, what="both deliveries dead-lettered")
    samples = await scrape(server)
    assert value(samples, "runlog_notifier_deliveries", channel_id=str(channel), status="pending") == 0


async def test_background_services_show_which_process_leads_and_when_they_last_ran(server) -> None:
    pid = str(os.getpid())

    async def led() -> bool:
        samples = await scrape(server)
        return value(samples, "runlog_service_leading", service="lease_expiry", pid=pid) == 1 and \
            value(samples, "runlog_service_last_run_timestamp_seconds", service="lease_expiry") > 0

    await until(led, what="lease_expiry's first round")
    samples = await scrape(server)
    # The round ran at the server's (manual) clock's time, which the test never moved.
    assert value(samples, "runlog_service_last_run_timestamp_seconds", service="lease_expiry") \
        == START.timestamp()


async def test_a_database_read_that_times_out_leaves_the_database_gauges_out(server) -> None:
    families = await read_gauges(server.app[keys.STORE], timeout=0)
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [("runlog_metrics_database_up", [0])]


async def test_metrics_can_be_turned_off(env, clock) -> None:
    off = {**TIME_BASED_SERVICES_OFF, **env, "RUNLOG_METRICS_ENABLED": "false"}
    unmatched = {"method": "GET", "route": "(unmatched)", "status": "404"}
    before = REGISTRY.get_sample_value("runlog_http_requests_total", unmatched) or 0.0
    async with serve(off, clock=clock) as server:
        origin = server.base.removesuffix("/api")
        async with server.session.get(origin + "/metrics") as response:
            assert response.status == 404
            assert "detail" in await response.json()
    # Nor are its requests counted (the process's counts, which another server would show).
    assert (REGISTRY.get_sample_value("runlog_http_requests_total", unmatched) or 0.0) == before
