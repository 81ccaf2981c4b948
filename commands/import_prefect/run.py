"""One import into runlog's database: the store opened as a server opens it, so that each append
updates the read models (runs, flows, deployments...) in its own transaction.

Appending the events bare and rebuilding the read models once at the end was tried twice: at
5,000 runs it took the same CPU time (3.75 s against 3.87 s), and at 20,000 runs (bench_import,
SQLite) 11.4 s of appends plus 4.8 s of rebuild against 15.5 s with the views folded inline.
The time is in reading and converting the rows and in the appends themselves rather than in
the views, so the simpler way, where the database is consistent after every page, stays.
"""

from __future__ import annotations

from runlog.eventstore import open_store
from runlog.projections.collector import no_collections
from runlog.projections.registry import inline_projections

from .importer import Importer, Progress, Report
from .source import Source


async def import_database(
    source: Source, database_url: str, *, progress: Progress | None = None, encryption_key: str | None = None,
    runlog_encryption_key: str | None = None, page: int | None = None,
) -> Report:
    """Import ``source`` into the runlog database at ``database_url``; the report of what it did."""
    options: dict = {"progress": progress or Progress(), "encryption_key": encryption_key,
                     "runlog_encryption_key": runlog_encryption_key}
    if page is not None:
        options["page"] = page
    async with open_store(database_url, projections=inline_projections(), bulk=True) as store:
        with no_collections():  # a sixth of its CPU was the collector's at the default, 4 % at 1/100th of it
            return await Importer(source, store, **options).run()


__all__ = ["import_database"]
