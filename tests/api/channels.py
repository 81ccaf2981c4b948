"""A notification channel (a notification block document) for tests of rules.

Through the blocks API when the server has it (blocks are built on another branch of issue
10); until then, the few rows of the block tables that the channel lookup reads are written
straight into the database, in tables made for the purpose.
"""

from __future__ import annotations

import sqlite3
import uuid

import asyncpg

_TABLES = (
    "CREATE TABLE IF NOT EXISTS block_types (id TEXT PRIMARY KEY, slug TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS block_documents (id TEXT PRIMARY KEY, name TEXT NOT NULL, block_type_id TEXT NOT NULL,"
    " block_schema_id TEXT NOT NULL, created BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS block_schema_capabilities (block_schema_id TEXT NOT NULL, capability TEXT NOT NULL)",
)


async def _through_api(server, name: str, url: str) -> str | None:
    status, block_type = await server.request("POST", "/block_types/", json={"name": "Slack Webhook",
                                                                            "slug": "slack-webhook"})
    if status in (404, 405):
        return None
    if status == 409:
        _, block_type = await server.request("GET", "/block_types/slug/slack-webhook")
    status, schema = await server.request("POST", "/block_schemas/", json={
        "block_type_id": block_type["id"], "capabilities": ["notify"], "version": "3.8.8",
        "fields": {"title": "SlackWebhook", "type": "object", "properties": {"url": {"type": "string"}},
                   "secret_fields": ["url"], "block_schema_references": {}},
    })
    assert status in (200, 201), schema
    status, document = await server.request("POST", "/block_documents/", json={
        "name": name, "block_type_id": block_type["id"], "block_schema_id": schema["id"], "data": {"url": url},
    })
    assert status == 201, document
    return document["id"]


def _rows(name: str) -> list[tuple[str, tuple]]:
    type_id, schema_id, document_id = (str(uuid.uuid4()) for _ in range(3))
    return [
        ("INSERT INTO block_types (id, slug) VALUES ({0}, {1})", (type_id, f"slack-webhook-{type_id[:8]}")),
        ("INSERT INTO block_schema_capabilities (block_schema_id, capability) VALUES ({0}, {1})", (schema_id, "notify")),
        ("INSERT INTO block_documents (id, name, block_type_id, block_schema_id, created) VALUES ({0}, {1}, {2}, {3}, 0)",
         (document_id, name, type_id, schema_id)),
    ]


async def make_channel(server, store_url: str, name: str, url: str = "http://127.0.0.1:9/hook") -> str:
    """The id of a new notification block document named ``name``."""
    found = await _through_api(server, name, url)
    if found is not None:
        return found
    rows = _rows(name)
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.split(":///", 1)[1]) as db:
            for sql in _TABLES:
                db.execute(sql)
            for sql, args in rows:
                db.execute(sql.format(*["?"] * len(args)), args)
        db.close()
    else:
        conn = await asyncpg.connect(store_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            for sql in _TABLES:
                await conn.execute(sql)
            for sql, args in rows:
                await conn.execute(sql.format(*[f"${i + 1}" for i in range(len(args))]), *args)
        finally:
            await conn.close()
    return rows[2][1][0]
