"""The store's errors, translated from driver errors in one place per backend.

    EventStoreError
    ├── ConcurrencyError      expected_version did not match the stream's last version
    ├── StreamNotFound        a read asked for a stream that has no events
    ├── InvalidEvent          the caller passed something the log cannot store (also a ValueError)
    ├── WriteRejected         the database refused this write for its data (a constraint); this
    │                         request fails alone, and retrying it unchanged fails again
    ├── InvalidDatabaseURL    the URL names no backend we know (also a ValueError)
    ├── StoreClosed           the store was used after aclose()
    ├── StorageUnavailable    the database cannot be reached or is busy; retrying later may work
    ├── StorageMisconfigured  the database refused who we are or does not exist; retrying won't help
    └── SchemaError           the database schema is not the one this code needs
        ├── SchemaTooNew      the database was migrated by a newer runlog
        └── SchemaBehind      migrations are pending and the store was opened without applying them

Backends raise these with ``raise ... from exc`` so the driver's error stays in the chain;
no package but eventstore imports a database driver. They classify by the driver's error code
(SQLSTATE on PostgreSQL, the extended result code on SQLite), never by message text. A driver
error that fits no class (a bug in our SQL, say) is a plain EventStoreError: it fails the
request that caused it, and is never reported as "unavailable", which clients retry forever.
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event store raises."""


class ConcurrencyError(EventStoreError):
    """An append's expected_version did not match the stream."""

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected version {expected}"
        )


class StreamNotFound(EventStoreError):
    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"stream {stream_id!r} has no events")


class InvalidEvent(EventStoreError, ValueError):
    """An append carried a value the log cannot store (empty stream id, NUL in text, ...)."""


class WriteRejected(EventStoreError):
    """The database refused a write for what it holds (a unique, check or foreign-key rule).

    Raised for the one append whose events or projection writes broke the rule; the other
    requests of its batch are committed without it.
    """


class InvalidDatabaseURL(EventStoreError, ValueError):
    pass


class StoreClosed(EventStoreError):
    def __init__(self) -> None:
        super().__init__("the event store is closed")


class StorageUnavailable(EventStoreError):
    """The database is unreachable, went away mid-operation, or stayed locked too long."""


class StorageMisconfigured(EventStoreError):
    """The database refused our credentials, or the database named in the URL does not exist."""


class SchemaError(EventStoreError):
    pass


class SchemaTooNew(SchemaError):
    def __init__(self, database_revision: int, code_revision: int) -> None:
        self.database_revision = database_revision
        self.code_revision = code_revision
        super().__init__(
            f"the database schema is at revision {database_revision}, newer than this runlog "
            f"knows (revision {code_revision}); upgrade runlog, or downgrade the database with "
            f"the newer runlog's 'runlog database downgrade'"
        )


class SchemaBehind(SchemaError):
    """The database lacks migrations this code needs, and the store was opened with migrate=False.

    The store does not know why its caller chose not to migrate; the caller does, and says so
    with ``because`` (a read-only command, a setting turned off), so the person reading the
    message is not told to turn on something that is already on.
    """

    def __init__(self, where: str, database_revision: int, code_revision: int, reason: str | None = None) -> None:
        self.where = where
        self.database_revision = database_revision
        self.code_revision = code_revision
        self.reason = reason
        pending = code_revision - database_revision
        them = "it" if pending == 1 else "them"
        what = "1 pending migration was" if pending == 1 else f"{pending} pending migrations were"
        why = f"; {what} not applied because {reason}" if reason else ""
        super().__init__(
            f"the database at {where} is at schema revision {database_revision} and this runlog needs "
            f"{code_revision}{why}. Run 'runlog database upgrade' to apply {them}."
        )

    def because(self, reason: str) -> SchemaBehind:
        """The same error, saying why the migrations were not applied."""
        return SchemaBehind(self.where, self.database_revision, self.code_revision, reason)
