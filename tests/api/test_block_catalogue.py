"""Prefect's built-in block types and schemas, registered when the server starts
(commands/block_catalogue.py), on both backends: the catalogue answered is the shipped one, a
restart or several processes registering at once add nothing, a client registering a built-in
meets the ids registered here, protected types stay protected. (tests/compat/test_block_catalogue.py
compares the answers with Prefect's own server.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from runlog.commands.block_catalogue import register_builtin_blocks
from runlog.commands.clock import ManualClock
from runlog.eventstore import open_store
from runlog.projections.registry import inline_projections
from runlog.schema import streams
from runlog.schema.prefect_blocks import builtin_blocks

from ..servers import serve

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ON = {"RUNLOG_SERVER_BLOCKS_REGISTER_ON_START": "true"}
VOLATILE = {"id", "created", "updated", "block_type_id", "block_type"}


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url, **ON}


async def ok(server, method: str, path: str, expected: int = 200, **kwargs):
    status, answer = await server.request(method, path, **kwargs)
    assert status == expected, (status, answer)
    return answer


async def blocks_version(store_url: str) -> int:
    async with open_store(store_url, migrate=False) as store:
        return await store.stream_version(streams.BLOCKS)


def _shipped_schemas() -> list[dict]:
    """The shipped schemas newest first, as /block_schemas/filter lists them."""
    return [
        {"checksum": s.checksum, "fields": s.fields, "capabilities": s.capabilities, "version": s.version,
         "slug": s.block_type_slug}
        for s in reversed(builtin_blocks().schemas)
    ]


async def test_a_new_server_answers_prefects_built_in_catalogue(env) -> None:
    builtins = builtin_blocks()
    assert len(builtins.types) == 54 and len(builtins.schemas) == 64  # Prefect 3.8.8's fresh server
    async with serve(env, clock=ManualClock(START)) as server:
        types = await ok(server, "POST", "/block_types/filter", json={})
        schemas = await ok(server, "POST", "/block_schemas/filter", json={})
        capabilities = await ok(server, "GET", "/block_capabilities/")
    assert [{k: v for k, v in t.items() if k not in VOLATILE} for t in types] == [
        {"name": t.name, "slug": t.slug, "logo_url": t.logo_url, "documentation_url": t.documentation_url,
         "description": t.description, "code_example": t.code_example, "is_protected": t.is_protected}
        for t in builtins.types
    ]
    slugs = {t["id"]: t["slug"] for t in types}
    assert [
        {**{k: v for k, v in s.items() if k not in VOLATILE}, "slug": slugs[s["block_type_id"]]} for s in schemas
    ] == _shipped_schemas()
    assert all(s["block_type"]["id"] == s["block_type_id"] for s in schemas)
    assert {t["slug"] for t in types if t["is_protected"]} == {"secret", "webhook", "local-file-system"}
    assert capabilities == sorted({c for s in builtins.schemas for c in s.capabilities})


async def test_a_restart_adds_nothing(env, store_url) -> None:
    async with serve(env, clock=ManualClock(START)) as server:
        first = await ok(server, "POST", "/block_types/filter", json={})
    registered = await blocks_version(store_url)
    assert registered == 54 + 64  # one event per type and per schema
    async with serve(env, clock=ManualClock(START)) as server:
        again = await ok(server, "POST", "/block_types/filter", json={})
    assert again == first and await blocks_version(store_url) == registered


async def test_the_setting_off_leaves_the_catalogue_empty(tmp_path, store_url) -> None:
    env = {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url, "RUNLOG_SERVER_BLOCKS_REGISTER_ON_START": "false"}
    async with serve(env) as server:
        assert await ok(server, "POST", "/block_types/filter", json={}) == []
    assert await blocks_version(store_url) == 0


async def test_several_processes_registering_at_once_register_once(store_url) -> None:
    async with open_store(store_url, projections=inline_projections()) as first, \
            open_store(store_url, projections=inline_projections()) as second:
        outcomes = await asyncio.gather(*(
            register_builtin_blocks(store, clock=ManualClock(START)) for store in (first, second, first, second)
        ))
    assert sorted(o.types_created for o in outcomes) == [0, 0, 0, 54]
    assert sorted(o.schemas_created for o in outcomes) == [0, 0, 0, 64]
    assert await blocks_version(store_url) == 54 + 64


async def test_a_client_registering_a_built_in_meets_the_registered_ids(env, store_url) -> None:
    secret = next(s for s in builtin_blocks().schemas if s.block_type_slug == "secret")
    async with serve(env, clock=ManualClock(START)) as server:
        block_type = await ok(server, "GET", "/block_types/slug/secret")
        # What the stock client does when it saves a Secret: look its schema up by checksum, and
        # post it (the existing one is answered with 200).
        found = await ok(server, "GET", f"/block_schemas/checksum/{secret.checksum}?version={secret.version}")
        posted = await ok(server, "POST", "/block_schemas/", 200, json={
            "fields": secret.fields, "block_type_id": block_type["id"], "capabilities": secret.capabilities,
            "version": secret.version,
        })
        assert posted["id"] == found["id"] and posted["checksum"] == secret.checksum
        await ok(server, "POST", "/block_types/", 409, json={"name": "Secret", "slug": "secret"})
        document = await ok(server, "POST", "/block_documents/", 201, json={
            "name": "api-key", "data": {"value": "s3cr3t"}, "block_schema_id": found["id"],
            "block_type_id": block_type["id"],
        })
        assert document["data"] == {"value": "********"}
        await ok(server, "DELETE", f"/block_types/{block_type['id']}", 403)
        await ok(server, "DELETE", f"/block_schemas/{found['id']}", 403)
    version = await blocks_version(store_url)
    async with serve(env, clock=ManualClock(START)):
        pass
    assert await blocks_version(store_url) == version


async def test_a_type_registered_before_keeps_its_id_and_gets_the_built_in_details(env, store_url) -> None:
    off = {**env, "RUNLOG_SERVER_BLOCKS_REGISTER_ON_START": "false"}
    async with serve(off, clock=ManualClock(START)) as server:
        old = await ok(server, "POST", "/block_types/", 201, json={
            "name": "Slack Webhook", "slug": "slack-webhook", "description": "an older description",
        })
        await ok(server, "POST", "/block_types/", 201, json={"name": "AWS Secret", "slug": "not-aws-secret"})
    async with serve(env, clock=ManualClock(START)) as server:
        slack = await ok(server, "GET", "/block_types/slug/slack-webhook")
        missing = await server.request("GET", "/block_types/slug/aws-secret")
        types = await ok(server, "POST", "/block_types/filter", json={})
    builtin = next(t for t in builtin_blocks().types if t.slug == "slack-webhook")
    assert slack["id"] == old["id"] and slack["description"] == builtin.description
    assert slack["logo_url"] == builtin.logo_url
    assert missing[0] == 404  # its name was another slug's: left out, not a second "AWS Secret"
    assert len(types) == 54 + 1 - 1
