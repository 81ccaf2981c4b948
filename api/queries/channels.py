"""Finding a notification channel by name: a block document whose schema can ``notify``.

Channels are Prefect's notification blocks. Blocks are built on another branch of issue 10;
until they are merged the block tables do not exist, so the lookup first asks whether they do
and, when not, finds no channel (the CLI then says the channel is unknown). This one function
is all that reads blocks on this branch.
"""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from runlog.eventstore import EventStore, Tx

SQL_TABLE_SQLITE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'block_documents'"
SQL_TABLE_POSTGRES = "SELECT 1 WHERE to_regclass('block_documents') IS NOT NULL"
# The oldest document of that name among the notification block types (capability "notify").
SQL_CHANNEL = (
    "SELECT d.id, t.slug FROM block_documents d "
    "JOIN block_types t ON t.id = d.block_type_id "
    "JOIN block_schema_capabilities c ON c.block_schema_id = d.block_schema_id AND c.capability = 'notify' "
    "WHERE d.name = ? ORDER BY d.created, d.id LIMIT 1"
)
SQL_CHANNEL_BY_ID = (
    "SELECT d.name, t.slug FROM block_documents d JOIN block_types t ON t.id = d.block_type_id WHERE d.id = ?"
)


class Channel(NamedTuple):
    id: UUID
    name: str
    block_type_slug: str


async def _blocks_exist(tx: Tx) -> bool:
    return bool(await tx.fetch(SQL_TABLE_POSTGRES if tx.dialect == "postgres" else SQL_TABLE_SQLITE))


async def by_name(store: EventStore, name: str) -> Channel | None:
    async with store.reading() as tx:
        if not await _blocks_exist(tx):
            return None
        rows = await tx.fetch(SQL_CHANNEL, name)
    return Channel(UUID(str(rows[0][0])), name, str(rows[0][1])) if rows else None


async def by_id(store: EventStore, block_document_id: UUID) -> Channel | None:
    async with store.reading() as tx:
        if not await _blocks_exist(tx):
            return None
        rows = await tx.fetch(SQL_CHANNEL_BY_ID, str(block_document_id))
    return Channel(block_document_id, str(rows[0][0]), str(rows[0][1])) if rows else None
