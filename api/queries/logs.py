"""Reading run logs (POST /logs/filter) from the ``logs`` table with Prefect's LogFilter.

The filter is declared (``LOG``, see filtering.py); every value a client sends travels as a
``?`` parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.tables import from_us

from ..schemas.logs import MAX_LIMIT, ExportedLog, Log, LogFilter, LogFilterTextSearch, LogSort
from .filtering import (
    Cond, Criteria, Custom, Resource, Sql, any_in, at_least, at_most, at_or_after, at_or_before, combine, null,
)

SQL_SELECT = "SELECT id, flow_run_id, task_run_id, name, level, message, timestamp, created FROM logs"
SQL_ORDER = {
    # id breaks ties: log ids sort in the order their batch listed them (commands/run_logs.py).
    LogSort.TIMESTAMP_ASC: " ORDER BY timestamp ASC, id ASC",
    LogSort.TIMESTAMP_DESC: " ORDER BY timestamp DESC, id DESC",
}
SQL_PAGE = " LIMIT ? OFFSET ?"
SQL_COUNT = "SELECT count(*) FROM logs"
# Keyset pages in id order (the primary key's index) for export: no OFFSET to rescan, and
# lines stored meanwhile are picked up rather than shifting the pages.
SQL_EXPORT_PAGE = SQL_SELECT + " WHERE id > ? ORDER BY id LIMIT ?"
EXPORT_PAGE = 1000
# Case-insensitive substring match over "message name", as Prefect's text search does.
TEXT_MATCHES = "lower(message || ' ' || name) LIKE ? ESCAPE '!'"
TEXT_MISSES = "lower(message || ' ' || name) NOT LIKE ? ESCAPE '!'"


def _text_search(d: Sql, flt: LogFilterTextSearch) -> list[Cond]:
    """Prefect's text search: any include term, no exclude term, every required term; each
    group is one condition of the log filter, combined with the others by its operator."""
    include, exclude, required = parse_text_query(flt.query)
    conds = []
    if include:
        conds.append(combine([(TEXT_MATCHES, (_like(t),)) for t in include], "or_"))
    if exclude:
        conds.append(combine([(TEXT_MISSES, (_like(t),)) for t in exclude]))
    if required:
        conds.append(combine([(TEXT_MATCHES, (_like(t),)) for t in required]))
    return conds


# Prefect's LogFilter over the logs table (see filtering.py).
LOG = Resource({
    "level": Criteria("level", {"ge_": at_least, "le_": at_most}),
    "timestamp": Criteria("timestamp", {"before_": at_or_before, "after_": at_or_after}),
    "flow_run_id": Criteria("flow_run_id", {"any_": any_in}),
    "task_run_id": Criteria("task_run_id", {"any_": any_in, "is_null_": null}),
    "text": Custom(_text_search, ("query",)),
})


def _like(term: str) -> str:
    escaped = term.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def parse_text_query(query: str) -> tuple[list[str], list[str], list[str]]:
    """Prefect's text search syntax: terms (any may match), ``-term``/``!term`` (none may),
    ``+term`` (all must), and ``"quoted phrases"`` with ``\\"`` inside them."""
    include: list[str] = []
    exclude: list[str] = []
    required: list[str] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        prefix = None
        if query[i] in "-!+":
            if i + 1 < n and not query[i + 1].isspace():
                prefix = query[i]
            i += 1
            if prefix is None:
                continue
        if i < n and query[i] == '"':
            i += 1
            chars = []
            while i < n and query[i] != '"':
                if query[i] == "\\" and i + 1 < n and query[i + 1] in '"\\':
                    i += 1
                chars.append(query[i])
                i += 1
            i += 1  # the closing quote, if any
            term = "".join(chars)
            if not term.strip():
                continue
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] != '"':
                i += 1
            term = query[start:i]
            if not term:
                continue
        {"-": exclude, "!": exclude, "+": required}.get(prefix or "", include).append(term)
    return include, exclude, required


def _log(row: Sequence[Any]) -> Log:
    created = from_us(row[7])
    return Log(
        id=UUID(row[0]), created=created, updated=created, name=row[3], level=row[4], message=row[5],
        timestamp=from_us(row[6]),
        flow_run_id=None if row[1] is None else UUID(row[1]),
        task_run_id=None if row[2] is None else UUID(row[2]),
    )


async def read_logs(
    store: EventStore, flt: LogFilter | None, *, limit: int | None, offset: int, sort: LogSort
) -> list[Log]:
    async with store.reading() as tx:
        sql, params = LOG.where(tx, flt)
        rows = await tx.fetch(
            f"{SQL_SELECT} WHERE {sql}{SQL_ORDER[sort]}{SQL_PAGE}",
            *params, MAX_LIMIT if limit is None else limit, offset,
        )
    return [_log(row) for row in rows]


async def count_logs(store: EventStore) -> int:
    async with store.reading() as tx:
        return (await tx.fetch(SQL_COUNT))[0][0]


async def export_logs(store: EventStore, *, page: int | None = None) -> AsyncIterator[list[ExportedLog]]:
    """Every stored log line, a page at a time, with its id and ``created`` (runlog events export)."""
    page = EXPORT_PAGE if page is None else page
    after = ""
    while True:
        async with store.reading() as tx:
            rows = await tx.fetch(SQL_EXPORT_PAGE, after, page)
        if not rows:
            return
        yield [
            ExportedLog(
                id=UUID(row[0]), name=row[3], level=row[4], message=row[5], timestamp=from_us(row[6]),
                flow_run_id=None if row[1] is None else UUID(row[1]),
                task_run_id=None if row[2] is None else UUID(row[2]), created=from_us(row[7]),
            )
            for row in rows
        ]
        after = rows[-1][0]
