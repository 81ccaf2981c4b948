"""/block_types, /block_schemas, /block_documents over a real server on both backends: Prefect's
routes, status codes and details; secrets sealed at rest and masked on read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet

from runlog.api import keys
from runlog.commands.clock import ManualClock
from runlog.commands.encryption import stored_key
from runlog.eventstore import open_store
from runlog.schema import events as catalogue
from runlog.schema.notification_blocks import channel_kind

from ..servers import serve

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SEEDED = "xoxb-SEEDED-SECRET-4711"


@pytest.fixture
def env(tmp_path, store_url: str) -> dict[str, str]:
    return {"RUNLOG_HOME": str(tmp_path), "RUNLOG_DATABASE_URL": store_url}


@pytest.fixture
async def server(env):
    async with serve(env, clock=ManualClock(START)) as running:
        yield running


async def ok(server, method: str, path: str, expected: int = 200, **kwargs):
    status, answer = await server.request(method, path, **kwargs)
    assert status == expected, (status, answer)
    return answer


async def register(server, kind: str = "slack") -> tuple[dict, dict]:
    """The block type and schema of a notification kind, as the Prefect client registers them."""
    spec = channel_kind(kind)
    block_type = await ok(server, "POST", "/block_types/", 201, json=spec.block_type)
    schema = await ok(server, "POST", "/block_schemas/", 201, json={
        "fields": spec.fields, "block_type_id": block_type["id"], "capabilities": spec.capabilities,
        "version": spec.version,
    })
    return block_type, schema


async def save(server, block_type: dict, schema: dict, name: str, data: dict, expected: int = 201) -> dict:
    return await ok(server, "POST", "/block_documents/", expected, json={
        "name": name, "data": data, "block_schema_id": schema["id"], "block_type_id": block_type["id"],
    })


async def test_block_types_are_created_read_filtered_updated_and_deleted(server) -> None:
    block_type, schema = await register(server)
    assert block_type["slug"] == "slack-webhook" and block_type["is_protected"] is False
    assert block_type["created"] == "2026-03-01T12:00:00Z"
    assert await ok(server, "GET", f"/block_types/{block_type['id']}") == block_type
    assert await ok(server, "GET", "/block_types/slug/slack-webhook") == block_type
    assert (await server.request("GET", "/block_types/slug/nope")) == (404, {"detail": "Block type not found"})

    status, answer = await server.request("POST", "/block_types/", json={"name": "Slack Webhook", "slug": "other"})
    assert (status, answer) == (409, {"detail": 'Block type with name "Slack Webhook" already exists'})
    status, answer = await server.request("POST", "/block_types/", json={"name": "Prefect Thing", "slug": "p"})
    assert (status, answer) == (403, {"detail": "Block type names beginning with 'Prefect' are reserved."})
    status, _ = await server.request("POST", "/block_types/", json={"name": "x", "slug": "Not A Slug"})
    assert status == 422

    await register(server, "discord")
    listed = await ok(server, "POST", "/block_types/filter", json={"block_types": {"slug": {"any_": ["discord-webhook"]}}})
    assert [t["slug"] for t in listed] == ["discord-webhook"]
    by_name = await ok(server, "POST", "/block_types/filter", json={"block_types": {"name": {"like_": "slack"}}})
    assert [t["slug"] for t in by_name] == ["slack-webhook"]
    with_schema = await ok(server, "POST", "/block_types/filter", json={
        "block_schemas": {"block_capabilities": {"all_": ["notify"]}}
    })
    assert [t["name"] for t in with_schema] == ["Discord Webhook", "Slack Webhook"]  # by name
    assert await ok(server, "POST", "/block_types/filter", json={
        "block_schemas": {"block_capabilities": {"all_": ["write-path"]}}
    }) == []

    await ok(server, "PATCH", f"/block_types/{block_type['id']}", 204, json={"description": "changed"})
    assert (await ok(server, "GET", f"/block_types/{block_type['id']}"))["description"] == "changed"
    events_before = await block_events(server)
    await ok(server, "PATCH", f"/block_types/{block_type['id']}", 204, json={"description": "changed"})
    assert await block_events(server) == events_before  # nothing meaningful changed: nothing written

    document = await save(server, block_type, schema, "ops", {"url": "https://hooks.slack.com/x"})
    await ok(server, "DELETE", f"/block_types/{block_type['id']}", 204)
    # The type's schemas and documents went with it, as Prefect's foreign keys cascade.
    assert (await server.request("GET", f"/block_schemas/{schema['id']}"))[0] == 404
    assert (await server.request("GET", f"/block_documents/{document['id']}"))[0] == 404
    assert (await server.request("DELETE", f"/block_types/{block_type['id']}")) == (404, {"detail": "Block type not found"})


async def block_events(server) -> list[str]:
    return [r.type async for r in server.app[keys.STORE].read_all() if r.type.startswith("block")]


async def test_a_schema_is_registered_once_and_found_by_checksum_and_version(server) -> None:
    block_type, schema = await register(server)
    spec = channel_kind("slack")
    assert schema["checksum"] == spec.checksum and schema["block_type"]["slug"] == "slack-webhook"
    assert schema["capabilities"] == ["notify"] and schema["version"] == spec.version
    again = await ok(server, "POST", "/block_schemas/", 200, json={
        "fields": spec.fields, "block_type_id": block_type["id"], "capabilities": ["notify"], "version": spec.version,
    })
    assert again["id"] == schema["id"]
    path = f"/block_schemas/checksum/{spec.checksum}"
    assert (await ok(server, "GET", path, params={"version": spec.version}))["id"] == schema["id"]
    assert (await ok(server, "GET", path))["id"] == schema["id"]  # no version: the newest
    assert await server.request("GET", path, params={"version": "0.1"}) == (404, {"detail": "Block schema not found"})
    assert (await ok(server, "GET", f"/block_schemas/{schema['id']}"))["fields"] == spec.fields

    missing = "00000000-0000-0000-0000-000000000001"
    status, answer = await server.request("POST", "/block_schemas/", json={"fields": {}, "block_type_id": missing})
    assert (status, answer) == (404, {"detail": f"Block type {missing} not found."})
    listed = await ok(server, "POST", "/block_schemas/filter", json={
        "block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}
    })
    assert [s["id"] for s in listed] == [schema["id"]]
    assert await ok(server, "GET", "/block_capabilities/") == ["notify"]


async def test_secrets_are_masked_unless_asked_for_and_kept_when_sent_back_masked(server) -> None:
    block_type, schema = await register(server)
    url = f"https://hooks.slack.com/services/{SEEDED}"
    created = await save(server, block_type, schema, "ops", {"url": url, "notify_type": "info"})
    assert created["data"] == {"url": "********", "notify_type": "info"}
    assert created["block_type_name"] == "Slack Webhook" and created["block_schema"]["block_type"]["slug"] == "slack-webhook"
    path = f"/block_documents/{created['id']}"
    assert (await ok(server, "GET", path))["data"]["url"] == "********"
    assert (await ok(server, "GET", path, params={"include_secrets": "true"}))["data"]["url"] == url
    by_name = "/block_types/slug/slack-webhook/block_documents/name/ops"
    assert (await ok(server, "GET", by_name, params={"include_secrets": "true"}))["data"]["url"] == url
    assert (await ok(server, "GET", by_name))["data"]["url"] == "********"
    assert await server.request("GET", "/block_types/slug/slack-webhook/block_documents/name/nope") == (
        404, {"detail": "Block document not found"},
    )

    # A form posting the masked document back keeps the secret; a new value replaces it.
    await ok(server, "PATCH", path, 204, json={"data": {"url": "********", "notify_type": "failure"}})
    read = await ok(server, "GET", path, params={"include_secrets": "1"})
    assert read["data"] == {"url": url, "notify_type": "failure"}
    await ok(server, "PATCH", path, 204, json={"data": {"url": "https://hooks.slack.com/new"}})
    assert (await ok(server, "GET", path, params={"include_secrets": "yes"}))["data"]["url"] == "https://hooks.slack.com/new"
    # merge_existing_data=false replaces the values as a whole
    await ok(server, "PATCH", path, 204, json={"data": {"url": "https://hooks.slack.com/only"}, "merge_existing_data": False})
    assert (await ok(server, "GET", path, params={"include_secrets": "true"}))["data"] == {"url": "https://hooks.slack.com/only"}

    # The log and the read model hold ciphertext only.
    store = server.app[keys.STORE]
    async for record in store.read_all():
        if record.type.startswith("block_document"):
            event = catalogue.decode(record.data)
            assert SEEDED.encode() not in record.data and "hooks.slack.com" not in event.data


async def test_custom_webhook_secrets_wildcard_masks_each_key_and_an_empty_dict(server) -> None:
    block_type, schema = await register(server, "webhook")
    data = {"name": "hook", "url": "http://127.0.0.1:1/x", "secrets": {"token": SEEDED, "other": "o"}}
    created = await save(server, block_type, schema, "hook", data)
    assert created["data"]["secrets"] == {"token": "********", "other": "********"}
    assert created["data"]["url"] == "http://127.0.0.1:1/x"
    empty = await save(server, block_type, schema, "empty", {"name": "e", "url": "http://x", "secrets": {}})
    assert empty["data"]["secrets"] == "********"


async def test_documents_are_unique_per_type_filtered_counted_and_deleted(server) -> None:
    block_type, schema = await register(server)
    other_type, other_schema = await register(server, "discord")
    await save(server, block_type, schema, "b-ops", {"url": "https://a"})
    await save(server, block_type, schema, "a-ops", {"url": "https://b"})
    await save(server, other_type, other_schema, "a-ops", {"webhook_id": "1", "webhook_token": "t"})  # another type
    status, answer = await server.request("POST", "/block_documents/", json={
        "name": "a-ops", "data": {}, "block_schema_id": schema["id"], "block_type_id": block_type["id"],
    })
    assert (status, answer) == (409, {"detail": "Block already exists"})
    status, _ = await server.request("POST", "/block_documents/", json={
        "data": {}, "block_schema_id": schema["id"], "block_type_id": block_type["id"],
    })
    assert status == 422  # a name is needed unless anonymous
    anonymous = await ok(server, "POST", "/block_documents/", 201, json={
        "data": {"url": "https://c"}, "block_schema_id": schema["id"], "block_type_id": block_type["id"],
        "is_anonymous": True,
    })
    assert anonymous["name"].startswith("anonymous-") and anonymous["is_anonymous"] is True

    listed = await ok(server, "POST", "/block_documents/filter", json={"block_types": {"slug": {"any_": ["slack-webhook"]}}})
    assert [d["name"] for d in listed] == ["a-ops", "b-ops"]  # anonymous ones left out by default
    everything = await ok(server, "POST", "/block_documents/filter", json={
        "block_documents": {"is_anonymous": None}, "sort": "NAME_DESC",
    })
    assert len(everything) == 4 and everything[-1]["name"] == "a-ops"
    assert await ok(server, "POST", "/block_documents/count") == 3
    assert await ok(server, "POST", "/block_documents/count", json={"block_documents": {"name": {"any_": ["a-ops"]}}}) == 2
    of_type = await ok(server, "GET", "/block_types/slug/discord-webhook/block_documents")
    assert [d["name"] for d in of_type] == ["a-ops"] and of_type[0]["data"]["webhook_token"] == "********"
    assert (await server.request("GET", "/block_types/slug/nope/block_documents"))[0] == 404

    await ok(server, "DELETE", f"/block_documents/{listed[0]['id']}", 204)
    assert await server.request("DELETE", f"/block_documents/{listed[0]['id']}") == (
        404, {"detail": "Block document not found"},
    )
    assert await ok(server, "POST", "/block_documents/count") == 2


async def test_nested_documents_are_saved_by_reference_and_read_in_place(server) -> None:
    spec = channel_kind("slack")
    inner_type = await ok(server, "POST", "/block_types/", 201, json={"name": "Creds", "slug": "creds"})
    inner_fields = {"title": "Creds", "type": "object", "properties": {"password": {"type": "string"}},
                    "secret_fields": ["password"], "block_type_slug": "creds"}
    inner_schema = await ok(server, "POST", "/block_schemas/", 201, json={
        "fields": inner_fields, "block_type_id": inner_type["id"],
    })
    outer_type = await ok(server, "POST", "/block_types/", 201, json={"name": "Holder", "slug": "holder"})
    outer_schema = await ok(server, "POST", "/block_schemas/", 201, json={
        "fields": {"title": "Holder", "properties": {}, "secret_fields": ["creds.password"]},
        "block_type_id": outer_type["id"],
    })
    inner = await save(server, inner_type, inner_schema, "inner", {"password": SEEDED})
    outer = await save(server, outer_type, outer_schema, "outer", {
        "label": "x", "creds": {"$ref": {"block_document_id": inner["id"]}},
    })
    assert outer["data"] == {"label": "x", "creds": {"password": "********"}}
    reference = outer["block_document_references"]["creds"]["block_document"]
    assert reference["id"] == inner["id"] and reference["name"] == "inner" and reference["block_type"]["slug"] == "creds"
    full = await ok(server, "GET", f"/block_documents/{outer['id']}", params={"include_secrets": "true"})
    assert full["data"]["creds"] == {"password": SEEDED}

    status, answer = await server.request("POST", "/block_documents/", json={
        "name": "bad", "data": {"creds": {"$ref": {}}}, "block_schema_id": outer_schema["id"],
        "block_type_id": outer_type["id"],
    })
    assert (status, answer) == (400, {"detail": "Received block reference without a block_document_id in key creds"})
    missing = "00000000-0000-0000-0000-000000000002"
    status, answer = await server.request("POST", "/block_documents/", json={
        "name": "dangling", "data": {"creds": {"$ref": {"block_document_id": missing}}},
        "block_schema_id": outer_schema["id"], "block_type_id": outer_type["id"],
    })
    assert status == 409 and missing in answer["detail"]  # Prefect's foreign key: an integrity conflict
    status, _ = await server.request("POST", "/block_documents/", json={
        "name": "wrong-schema", "data": {}, "block_schema_id": inner_schema["id"], "block_type_id": outer_type["id"],
    })
    assert status == 409
    # A document cannot nest itself, directly or through another.
    status, _ = await server.request("PATCH", f"/block_documents/{inner['id']}", json={
        "data": {"loop": {"$ref": {"block_document_id": outer["id"]}}}
    })
    assert status == 400
    # A schema of another type is refused.
    status, answer = await server.request("PATCH", f"/block_documents/{outer['id']}", json={
        "block_schema_id": inner_schema["id"], "data": {},
    })
    assert (status, answer) == (400, {"detail": "Must migrate block document to a block schema of the same block type."})
    assert spec is not None


async def test_the_generated_key_is_kept_in_the_database_and_a_configured_key_wins(env, store_url) -> None:
    async with serve(env) as first:
        block_type, schema = await register(first)
        document = await save(first, block_type, schema, "ops", {"url": f"https://hooks.slack.com/{SEEDED}"})
    async with serve(env) as second:  # a restart reads the stored key back
        read = await ok(second, "GET", f"/block_documents/{document['id']}", params={"include_secrets": "true"})
        assert read["data"]["url"].endswith(SEEDED)
        store = second.app[keys.STORE]
        stored = await stored_key(store)

    configured = Fernet.generate_key().decode()
    async with serve({**env, "RUNLOG_SERVER_ENCRYPTION_KEY": configured}) as third:
        cipher = await third.app[keys.KEYRING].cipher(third.app[keys.STORE])
        # The key in use is the configured one: what it seals, only that key opens.
        assert Fernet(configured).decrypt(cipher.encrypt(b"probe")) == b"probe"
        # Data sealed with the database's key cannot be opened with another: an error that
        # names the setting, and neither the secret nor the token.
        status, answer = await third.request("GET", f"/block_documents/{document['id']}", params={"include_secrets": "true"})
        assert status == 500, answer
        assert "RUNLOG_SERVER_ENCRYPTION_KEY" in answer["detail"] and SEEDED not in str(answer)
    assert stored != configured


async def test_two_processes_starting_at_once_share_one_generated_key(store_url) -> None:
    stores = [open_store(store_url, migrate=True) for _ in range(2)]
    await stores[0].open()
    await stores[1].open()
    try:
        keys_seen = await asyncio.gather(*(stored_key(s) for s in stores for _ in range(3)))
    finally:
        for s in stores:
            await s.aclose()
    assert len(set(keys_seen)) == 1
    Fernet(keys_seen[0])  # a usable key
