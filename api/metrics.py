"""GET /metrics: the server's Prometheus metrics, in Prometheus' text format.

Two kinds of metric. Counters and histograms of what happens in the hot path (HTTP requests
here, appends in eventstore/metrics.py, service rounds in commands/runner.py, delivery attempts
in notifier/dispatcher.py) are bumped in memory as it happens: prometheus_client instruments,
but for the HTTP requests of a one-process server, plain numbers read when scraped (RequestCounts).
Gauges of what the database holds (the log's head, each checkpoint and its lag, workers by pool
and status, deliveries waiting or dead) are read when Prometheus scrapes, under a short timeout
so that a slow database leaves them out instead of hanging the scrape.

With `runlog server start --workers N` each process keeps its instruments in files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode; api/server.py makes the
directory and removes it), so whichever process answers a scrape reports every process.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client import metrics as prometheus_instruments
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from runlog.eventstore import EventStore, EventStoreError

from . import keys
from .openapi import documented

log = structlog.get_logger("runlog.api")

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
READ_TIMEOUT_SECONDS = 2.0
"""How long a scrape waits for the database's gauges; Prometheus' own default timeout is 10 s."""

UNMATCHED = "(unmatched)"
"""The route label of a request no route matched: raw paths would make a series per typo."""

HTTP_REQUESTS = "runlog_http_requests"
HTTP_REQUESTS_HELP = "HTTP requests answered, by method, route template and status"
HTTP_DURATION = "runlog_http_request_duration_seconds"
HTTP_DURATION_HELP = "Time to answer an HTTP request, by method and route template"
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)

# -- the hot path -----------------------------------------------------------------------------


def route_template(request: web.Request) -> str:
    """The matched route's template (aiohttp's canonical name: /api/flow_runs/{id}), never the
    raw path, so that one series counts every run's requests."""
    resource = request.match_info.route.resource
    return UNMATCHED if resource is None else resource.canonical


def in_files() -> bool:
    """Whether prometheus_client keeps this process's instruments in files (its multiprocess
    mode, which it picks when it is imported, by this same test of the environment)."""
    return MULTIPROC_VAR in os.environ or MULTIPROC_VAR.lower() in os.environ


class _Timing:
    """One (method, route)'s histogram: how many requests took each bucket's time, their seconds."""

    __slots__ = ("buckets", "seconds", "created")

    def __init__(self) -> None:
        self.buckets = [0] * len(HTTP_BUCKETS)
        self.seconds = 0.0
        self.created = time.time()


class _Count:
    """One (method, route, status)'s counter, and its route's histogram."""

    __slots__ = ("count", "timing", "created")

    def __init__(self, timing: _Timing) -> None:
        self.count = 0
        self.timing = timing
        self.created = time.time()


class RequestCounts:
    """The HTTP request counter and histogram of a server that is one process, kept as plain
    numbers and handed to prometheus_client as samples when it is scraped.

    A request costs a dict lookup and three additions, where prometheus_client's Counter and
    Histogram check, lock and convert on every call (some fifteen calls a request). A server of
    several processes needs instruments in files every process can read: `instruments`."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], _Count] = {}
        self._timings: dict[tuple[str, str], _Timing] = {}

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        """Count one answered request."""
        key = (request.method, route_template(request), status)
        counted = self._counts.get(key)
        if counted is None:
            method, route, _ = key
            timing = self._timings.get((method, route))
            if timing is None:
                timing = self._timings[method, route] = _Timing()
            counted = self._counts[key] = _Count(timing)
        counted.count += 1
        timing = counted.timing
        timing.buckets[bisect.bisect_left(HTTP_BUCKETS, seconds)] += 1  # the first bound >= seconds
        timing.seconds += seconds

    def describe(self) -> list[Metric]:
        return [Metric(HTTP_REQUESTS, HTTP_REQUESTS_HELP, "counter"),
                Metric(HTTP_DURATION, HTTP_DURATION_HELP, "histogram")]

    def collect(self) -> list[Metric]:
        """The samples prometheus_client's Counter and Histogram would give, in their order."""
        created = prometheus_instruments._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, as they read it
        requests, duration = self.describe()
        for (method, route, status), counted in list(self._counts.items()):
            labels = {"method": method, "route": route, "status": str(status)}
            requests.add_sample(HTTP_REQUESTS + "_total", labels, float(counted.count))
            if created:
                requests.add_sample(HTTP_REQUESTS + "_created", labels, counted.created)
        for (method, route), timing in list(self._timings.items()):
            labels = {"method": method, "route": route}
            count = 0.0
            for bound, n in zip(HTTP_BUCKETS, timing.buckets):
                count += n
                duration.add_sample(HTTP_DURATION + "_bucket", {**labels, "le": floatToGoString(bound)}, count)
            duration.add_sample(HTTP_DURATION + "_count", labels, count)
            duration.add_sample(HTTP_DURATION + "_sum", labels, timing.seconds)
            if created:
                duration.add_sample(HTTP_DURATION + "_created", labels, timing.created)
        return [requests, duration]


def instruments() -> Callable[[web.Request, int, float], None]:
    """prometheus_client's Counter and Histogram of the HTTP requests (in this process's files
    when several serve), and the function that counts a request in them."""
    counter = Counter(HTTP_REQUESTS, HTTP_REQUESTS_HELP, ("method", "route", "status"))
    histogram = Histogram(HTTP_DURATION, HTTP_DURATION_HELP, ("method", "route"), buckets=HTTP_BUCKETS)
    # (method, route, status) -> its counter and histogram: labels() checks and converts the
    # values and takes a lock on every call. Bounded: the routes are the app's templates.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(request: web.Request, status: int, seconds: float) -> None:
        key = (request.method, route_template(request), status)
        pair = children.get(key)
        if pair is None:
            method, route, _ = key
            pair = children[key] = (counter.labels(method, route, str(status)), histogram.labels(method, route))
        pair[0].inc()
        pair[1].observe(seconds)

    return observe


if in_files():
    observe_request = instruments()
else:
    _COUNTS = RequestCounts()
    REGISTRY.register(_COUNTS)  # type: ignore[arg-type]
    observe_request = _COUNTS.observe
"""Count one answered request (the error middleware calls it for every request when
RUNLOG_METRICS_ENABLED)."""


# -- read at scrape time ----------------------------------------------------------------------

SQL_CHECKPOINTS = "SELECT name, position FROM projection_checkpoints ORDER BY name"
SQL_WORKERS = (
    "SELECT p.name, w.status, count(*) FROM workers w JOIN work_pools p ON p.id = w.work_pool_id "
    "GROUP BY p.name, w.status ORDER BY p.name, w.status"
)
# Sent deliveries only grow; runlog_notifier_delivery_attempts_total counts them. The ones
# waiting and the dead letters are what needs attention (the status index serves this).
SQL_DELIVERIES = (
    "SELECT channel_id, status, count(*) FROM deliveries WHERE status IN ('pending', 'retrying', 'dead') "
    "GROUP BY channel_id, status ORDER BY channel_id, status"
)


async def _read_gauges(store: EventStore) -> list[Metric]:
    head = await store.head()
    async with store.reading() as tx:
        checkpoints = await tx.fetch(SQL_CHECKPOINTS)
        workers = await tx.fetch(SQL_WORKERS)
        deliveries = await tx.fetch(SQL_DELIVERIES)
    head_family = GaugeMetricFamily("runlog_log_head_position", "Position of the last event in the log")
    head_family.add_metric([], head)
    position = GaugeMetricFamily(
        "runlog_projection_checkpoint_position",
        "Log position up to which an asynchronous projection (or the notifier's matcher) has folded",
        labels=["projection"],
    )
    lag = GaugeMetricFamily(
        "runlog_projection_lag_events", "Events in the log an asynchronous projection has not folded yet",
        labels=["projection"],
    )
    lag_seconds = GaugeMetricFamily(
        "runlog_projection_lag_seconds",
        "Log time an asynchronous projection is behind: from the first event it has not folded to the head's",
        labels=["projection"],
    )
    head_at = await _recorded_at(store, head)
    for name, at in checkpoints:
        at = int(at)
        position.add_metric([name], at)
        lag.add_metric([name], max(0, head - at))
        first_unfolded = await _recorded_at(store, at + 1) if at < head else None
        behind = (head_at - first_unfolded).total_seconds() if head_at and first_unfolded else 0.0
        lag_seconds.add_metric([name], max(0.0, behind))
    worker_family = GaugeMetricFamily(
        "runlog_workers", "Workers by work pool and their last recorded status", labels=["work_pool", "status"],
    )
    for pool, status, count in workers:
        worker_family.add_metric([pool, status], int(count))
    delivery_family = GaugeMetricFamily(
        "runlog_notifier_deliveries", "Deliveries waiting to be sent (pending, retrying) or dead-lettered, by channel",
        labels=["channel_id", "status"],
    )
    for channel_id, status, count in deliveries:
        delivery_family.add_metric([str(channel_id), status], int(count))
    return [head_family, position, lag, lag_seconds, worker_family, delivery_family]


async def _recorded_at(store: EventStore, position: int) -> datetime | None:
    """When the event at POSITION was recorded (None: no such event, the log is empty)."""
    if position < 1:
        return None
    async with contextlib.aclosing(store.read_all(after=position - 1, limit=1)) as records:
        async for record in records:
            return record.recorded_at
    return None


async def read_gauges(store: EventStore, timeout: float = READ_TIMEOUT_SECONDS) -> list[Metric]:
    """The database's gauges and runlog_metrics_database_up: 1 when they were read in time, else
    0 and no database gauges (a stale number is worse than a gap, which alerts can see)."""
    up = GaugeMetricFamily(
        "runlog_metrics_database_up", "1 when this scrape read the database's gauges in time, else 0",
    )
    try:
        async with asyncio.timeout(timeout):
            families = await _read_gauges(store)
    except (TimeoutError, EventStoreError) as exc:
        log.warning("metrics_database_read_failed", error=str(exc) or type(exc).__name__, timeout=timeout)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, *families]


# -- exposition -------------------------------------------------------------------------------


class _Scrape:
    """One scrape's metrics: the processes' instruments, then the gauges just read."""

    def __init__(self, registry: CollectorRegistry, read: list[Metric]) -> None:
        self._registry = registry
        self._read = read

    def collect(self) -> Iterable[Metric]:
        yield from self._registry.collect()
        yield from self._read


def exposition(read: list[Metric], accept: str = "") -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format ACCEPT asks for (Prometheus' text format
    0.0.4 unless it asks for OpenMetrics): every process's instruments when several serve, else
    this one's, then the gauges just READ."""
    path = os.environ.get(MULTIPROC_VAR)
    if path:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry = REGISTRY
    encode, content_type = choose_encoder(accept)
    return encode(_Scrape(registry, read)), content_type  # type: ignore[arg-type]


@documented(summary="The server's Prometheus metrics, in Prometheus' text format (OpenMetrics on request)")
async def metrics(request: web.Request) -> web.Response:
    read = await read_gauges(request.config_dict[keys.STORE])
    body, content_type = exposition(read, request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


routes = [web.get("/metrics", metrics)]


# -- several processes ------------------------------------------------------------------------


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh PROMETHEUS_MULTIPROC_DIR for the server processes started inside, removed after.

    Set in this process's environment so that spawned processes inherit it: prometheus_client
    picks its file-backed values when it is imported, which a spawned process does afresh.
    """
    path = tempfile.mkdtemp(prefix="runlog-metrics-")
    previous = os.environ.get(MULTIPROC_VAR)
    os.environ[MULTIPROC_VAR] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROC_VAR, None)
        else:
            os.environ[MULTIPROC_VAR] = previous
        shutil.rmtree(path, ignore_errors=True)


def process_ended(path: str, pid: int) -> None:
    """Drop an ended process's live gauges (which services it led) from the scrape."""
    multiprocess.mark_process_dead(pid, path)
