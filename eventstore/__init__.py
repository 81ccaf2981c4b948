"""runlog's event log: an append-only store on SQLite or PostgreSQL behind one protocol.

    async with open_store("sqlite:///runlog.db") as store:
        await store.append("flow-run-<uuid>", [NewEvent(type=..., data=..., id=uuid4())])
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from . import migrate
from .base import NO_STREAM, EventStore, InlineProjection, Leadership, NewEvent, RecordedEvent, StreamAppend, Tx
from .errors import (
    ConcurrencyError,
    EventStoreError,
    InvalidDatabaseURL,
    InvalidEvent,
    SchemaBehind,
    SchemaError,
    SchemaTooNew,
    StorageMisconfigured,
    StorageUnavailable,
    StoreClosed,
    StreamNotFound,
    WriteRejected,
)
from .tables import RowChanges, Table
from .urls import DatabaseURL, mask_url, parse_database_url

if TYPE_CHECKING:
    from .writer import BatchingStore


def __getattr__(name: str) -> object:
    # The writer (structlog, the metrics) loads on first use, not with the errors and URLs: the
    # CLI's `runlog run` parses its settings and starts the child before any store is needed.
    if name == "BatchingStore":
        from .writer import BatchingStore

        return BatchingStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "NO_STREAM",
    "ConcurrencyError",
    "DatabaseURL",
    "EventStore",
    "EventStoreError",
    "InlineProjection",
    "Leadership",
    "InvalidDatabaseURL",
    "InvalidEvent",
    "NewEvent",
    "RecordedEvent",
    "RowChanges",
    "SchemaBehind",
    "SchemaError",
    "SchemaTooNew",
    "StorageMisconfigured",
    "StorageUnavailable",
    "StoreClosed",
    "StreamAppend",
    "StreamNotFound",
    "Table",
    "Tx",
    "WriteRejected",
    "mask_url",
    "migration_connection",
    "open_store",
    "parse_database_url",
]


def open_store(
    url: str | DatabaseURL, *, migrate: bool = True, projections: Sequence[InlineProjection] = (), bulk: bool = False
) -> BatchingStore:
    """The store for a database URL; open it with ``async with`` (or ``await``).

    With ``migrate`` (the default) pending schema migrations are applied on open; without it a
    database whose schema is behind is refused. A schema newer than this code is always refused.
    ``bulk``: for a process that writes many events at once (an import); on SQLite its
    connections keep a larger page cache (sqlite.py, BULK_PRAGMAS).
    """
    db = url if isinstance(url, DatabaseURL) else parse_database_url(url)
    if db.backend == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(db, migrate=migrate, projections=projections, bulk=bulk)
    from .postgres import PostgresStore

    return PostgresStore(db, migrate=migrate, projections=projections)


@contextlib.asynccontextmanager
async def migration_connection(url: str | DatabaseURL) -> AsyncIterator[migrate.MigrationConnection]:
    """A connection for running migrations on the database at url (locked against other runners)."""
    db = url if isinstance(url, DatabaseURL) else parse_database_url(url)
    if db.backend == "sqlite":
        from .sqlite import migration_connection as connect
    else:
        from .postgres import migration_connection as connect
    async with connect(db) as conn:
        yield conn
