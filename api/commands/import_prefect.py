"""``runlog import prefect DATABASE_URL``: a Prefect server's database appended to runlog's log.

The importer (commands/import_prefect/) reads the source read-only; this module opens runlog's
database as ``runlog events import`` does (the read models updated in each append's
transaction), draws a progress bar per table and prints what was imported and what was not.
"""

from __future__ import annotations

import asyncio

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bars
from rich.table import Table

from runlog.commands.import_prefect import Progress, Report, SourceError, import_database, open_source
from runlog.eventstore import EventStore, RowChanges, open_store
from runlog.notifier import matcher
from runlog.projections.checkpoints import CHECKPOINTS, checkpoint

from ..errors import RunlogError
from .common import get_settings


@click.group(name="import")
def group() -> None:
    """Import another server's records into the local database."""


class _Bars(Progress):
    def __init__(self, bars: Bars | None) -> None:
        self.bars, self.tasks = bars, {}

    def start(self, table: str, total: int) -> None:
        if self.bars is not None:
            self.tasks[table] = self.bars.add_task(table, total=total)

    def advance(self, table: str, rows: int) -> None:
        if self.bars is not None and table in self.tasks:
            self.bars.advance(self.tasks[table], rows)


@group.command(name="prefect")
@click.argument("database_url")
@click.option("--prefect-encryption-key", envvar="PREFECT_SERVER_ENCRYPTION_KEY", default=None,
              help="The Fernet key of the source's block documents, when its server ran with "
                   "PREFECT_SERVER_ENCRYPTION_KEY (otherwise it is read from the source's configuration table).")
@click.pass_context
def prefect(ctx: click.Context, database_url: str, prefect_encryption_key: str | None) -> None:
    """Append a Prefect 3 server's database (DATABASE_URL: sqlite+aiosqlite:///path/prefect.db or
    postgresql+asyncpg://user@host/db) to runlog's log: flows, runs with their state histories,
    task runs, logs, deployments and schedules, work pools and queues, blocks (secrets sealed
    with runlog's key), variables, artifacts, concurrency limits, automations. The source is
    only read. Records already imported are skipped, so an
    interrupted import can be run again, and a later one adds only what is new."""
    settings = get_settings(ctx)
    url = settings.database_url
    console = Console(stderr=True)

    async def run() -> Report:
        try:
            source = await open_source(database_url)
        except SourceError as exc:
            raise RunlogError(str(exc)) from None
        async with source:
            async with open_store(url) as store:
                head, matched = await store.head(), await checkpoint(store, matcher.NAME)
            bars = None
            if console.is_terminal:
                bars = Bars(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=console)
            options = {"progress": _Bars(bars), "encryption_key": prefect_encryption_key,
                       "runlog_encryption_key": settings.server_encryption_key}
            try:
                if bars is None:
                    report = await import_database(source, url, **options)
                else:
                    with bars:
                        report = await import_database(source, url, **options)
            except SourceError as exc:
                raise RunlogError(str(exc)) from None
        if matched >= head:
            async with open_store(url) as store:
                await _history_is_not_news(store)
        return report

    report = asyncio.run(run())
    _print(report)


async def _history_is_not_news(store: EventStore) -> None:
    """The imported states are history: an automation (imported, or a notification rule) must not
    act on a run that failed last month as if it had just failed. The notifier's matcher, caught
    up before the import, is moved past it; a matcher that was behind is left to catch up on
    what it had not seen, and so sees the import too."""
    changes = RowChanges()
    changes.upsert(CHECKPOINTS, (matcher.NAME, await store.head()))
    await store.write_tables(changes)


def _print(report: Report) -> None:
    table = Table(title=f"Imported from {report.prefect_version} (schema {report.revision})")
    for column in ("table", "read", "imported", "already imported", "skipped"):
        table.add_column(column, justify="left" if column in ("table", "skipped") else "right")
    for name, counts in report.tables.items():
        skipped = "; ".join(f"{count} {reason}" for reason, count in counts.skipped.items()) or "0"
        table.add_row(name, str(counts.read), str(counts.imported), str(counts.already), skipped)
    Console().print(table)
