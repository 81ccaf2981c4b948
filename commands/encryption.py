"""The key that seals block documents at rest: configured, or generated once per database.

RUNLOG_SERVER_ENCRYPTION_KEY wins when set. Otherwise the key lives in the server_configuration
table (migration 0010), outside the log, so an exported log never carries the key to its own
ciphertext. The first process to need it inserts a fresh key with ON CONFLICT DO NOTHING and
every process then reads the row back: two processes starting at once on one database both end
up with the one key that was inserted first, with no lock held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cryptography.fernet import Fernet

from runlog.eventstore import EventStore

KEY_NAME = "ENCRYPTION_KEY"
SQL_INSERT = "INSERT INTO server_configuration (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
SQL_READ = "SELECT value FROM server_configuration WHERE key = ?"


async def stored_key(store: EventStore) -> str:
    """The database's key, generated and stored by the first caller."""
    return await stored_secret(store, KEY_NAME, lambda: Fernet.generate_key().decode())


async def stored_secret(store: EventStore, name: str, generate: Callable[[], str]) -> str:
    """The server_configuration row NAME: made by GENERATE and stored by the first caller, and
    read back by every caller (so concurrent first callers agree on the one inserted first)."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_READ, name)
        if not rows:
            await tx.execute(SQL_INSERT, name, generate())
            rows = await tx.fetch(SQL_READ, name)
    return str(rows[0][0])


async def read_key(store: EventStore) -> str | None:
    """The database's stored key, or None when none was ever needed (no block document sealed)."""
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_READ, KEY_NAME)
    return str(rows[0][0]) if rows else None


async def restore_key(store: EventStore, key: str) -> str:
    """Store ``key`` as the database's key unless it already has one; the key it then holds.

    For a restore: the log carries block documents sealed with the old database's key, which
    is not in the log, so it is put back before (or after) the events are imported. A database
    that already holds another key keeps it (its own documents are sealed with it); the caller
    compares and says so.
    """
    Fernet(key)  # a malformed key fails here, before anything is written
    return await stored_secret(store, KEY_NAME, lambda: key)


async def load_cipher(store: EventStore, configured: str | None = None) -> Fernet:
    """The cipher for block documents: from ``configured`` (the setting) or the database's key."""
    return Fernet(configured if configured is not None else await stored_key(store))


class Keyring:
    """The process's cipher, loaded on first use (reading or creating the stored key then) and
    kept: callers share one, so the key is read once per process."""

    def __init__(self, configured: str | None = None) -> None:
        self._configured = configured
        self._cipher: Fernet | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return "Keyring(********)"  # never the key, in a log line or a traceback

    async def cipher(self, store: EventStore) -> Fernet:
        if self._cipher is None:
            async with self._lock:
                if self._cipher is None:
                    self._cipher = await load_cipher(store, self._configured)
        return self._cipher


__all__ = ["Keyring", "load_cipher", "read_key", "restore_key", "stored_key", "stored_secret"]
