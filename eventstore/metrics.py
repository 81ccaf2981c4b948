"""The log's Prometheus instruments: appends committed and the size of each group-commit batch.

They are counted by the writer task (writer.py) after each commit: a few in-memory additions
per batch, not per query, so the hot path pays next to nothing. With several server processes
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `runlog server start
--workers N`) keeps them in files a scrape sums; the exposition is the api's (api/metrics.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

APPENDS = Counter(
    "runlog_eventstore_appends", "Append requests the log has answered, by outcome", ("outcome",),
)
APPENDED = APPENDS.labels("committed")
REJECTED = APPENDS.labels("rejected")  # a version conflict or a rejected write: the caller hears it
FAILED = APPENDS.labels("failed")  # the database was unavailable or misconfigured
EVENTS = Counter("runlog_eventstore_events_appended", "Events committed to the log")
BATCH_APPENDS = Histogram(
    "runlog_eventstore_batch_appends", "Append requests committed together in one group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
BATCH_EVENTS = Histogram(
    "runlog_eventstore_batch_events", "Events committed together in one group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)

BATCH_PATHS = Counter(
    "runlog_eventstore_batch_paths",
    "PostgreSQL's committed batches by how they were written: in one statement on the writer's "
    "guesses (one_statement), or in a transaction holding the append lock (locked)",
    ("path",),
)
ONE_STATEMENT = BATCH_PATHS.labels("one_statement")
LOCKED = BATCH_PATHS.labels("locked")
RETRIED = BATCH_PATHS.labels("one_statement_retried")
"""In one statement at the second try: the first found that another process had appended."""


def batch_committed(appends: int, events: int, rejected: int) -> None:
    """Count one committed batch: APPENDS requests of which REJECTED failed, EVENTS new events."""
    BATCH_APPENDS.observe(appends)
    BATCH_EVENTS.observe(events)
    if events:
        EVENTS.inc(events)
    if appends - rejected:
        APPENDED.inc(appends - rejected)
    if rejected:
        REJECTED.inc(rejected)


SQLITE_CHECKPOINTS = Histogram(
    "runlog_eventstore_sqlite_checkpoint_seconds",
    "SQLite: the store's WAL checkpoints, made on a connection of their own every half second",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
