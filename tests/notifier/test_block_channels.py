"""The channel loader the server's dispatcher sends with (notifier/sending.BlockChannels): a
channel is its block document's type slug and values with secrets opened, the same values the
API's document read gives, nested documents resolved; on both backends."""

from __future__ import annotations

import uuid

from runlog.commands import blocks as commands
from runlog.commands.encryption import Keyring
from runlog.notifier.seams import Channel
from runlog.notifier.sending import BlockChannels
from runlog.projections import blocks


async def _document(store, cipher, type_slug: str, data: dict, name: str) -> uuid.UUID:
    block_type = await commands.create_type(store, name=f"Type {type_slug}", slug=type_slug, details={})
    schema, _new = await commands.create_schema(
        store, fields={"title": type_slug, "secret_fields": ["url"], "properties": {}}, block_type_id=block_type.id,
        capabilities=["notify"],
    )
    return await commands.create_document(
        store, cipher, commands.NewBlockDocument(name=name, data=data, block_schema_id=schema.id,
                                                 block_type_id=block_type.id),
    )


async def test_a_channel_is_its_documents_type_slug_and_opened_values(store) -> None:
    keyring = Keyring()
    cipher = await keyring.cipher(store)
    channel_id = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/secret"}, "ops")
    loaded = await BlockChannels(store, keyring)(channel_id)
    assert loaded == Channel("slack-webhook", {"url": "https://hooks.example/T/B/secret"})
    async with store.reading() as tx:
        document = await blocks.document(tx, channel_id, cipher, include_secrets=True)
    assert document is not None and loaded.data == document.data


async def test_a_channel_with_a_nested_document_has_it_resolved_as_the_api_does(store) -> None:
    keyring = Keyring()
    cipher = await keyring.cipher(store)
    inner = await _document(store, cipher, "secret-holder", {"url": "https://inner.example/x"}, "inner")
    outer = await _document(store, cipher, "custom-webhook",
                            {"name": "hook", "secrets": {"$ref": {"block_document_id": str(inner)}}}, "outer")
    loaded = await BlockChannels(store, keyring)(outer)
    async with store.reading() as tx:
        document = await blocks.document(tx, outer, cipher, include_secrets=True)
    assert loaded is not None and document is not None
    assert loaded.kind == "custom-webhook"
    assert loaded.data == document.data
    assert loaded.data["secrets"] == {"url": "https://inner.example/x"}


async def test_an_unknown_channel_is_none(store) -> None:
    assert await BlockChannels(store, Keyring())(uuid.uuid4()) is None


async def test_an_edited_channel_is_sent_with_its_new_values_and_a_deleted_one_is_none(store) -> None:
    keyring = Keyring()
    cipher = await keyring.cipher(store)
    channel_id = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/old"}, "ops")
    loader = BlockChannels(store, keyring)
    assert (await loader(channel_id)).data == {"url": "https://hooks.example/T/B/old"}
    await commands.update_document(store, cipher, channel_id, data={"url": "https://hooks.example/T/B/new"})
    assert (await loader(channel_id)).data == {"url": "https://hooks.example/T/B/new"}
    await commands.delete_document(store, channel_id)
    assert await loader(channel_id) is None


class CountingReads:
    """The store, counting the read transactions opened through it."""

    def __init__(self, store) -> None:
        self._store = store
        self.reads = 0

    def reading(self):
        self.reads += 1
        return self._store.reading()

    def __getattr__(self, name: str):
        return getattr(self._store, name)


async def test_a_channel_no_block_changed_since_it_was_opened_is_not_read_again(store) -> None:
    keyring = Keyring()
    cipher = await keyring.cipher(store)
    channel_id = await _document(store, cipher, "slack-webhook", {"url": "https://hooks.example/T/B/secret"}, "ops")
    other = await _document(store, cipher, "discord-webhook", {"webhook_url": "https://discord.example/1"}, "chat")
    counting = CountingReads(store)
    loader = BlockChannels(counting, keyring)
    first = await loader(channel_id)
    opened = counting.reads
    # Sent again and again: the document is not read (the version check goes through
    # store.stream_version, not counted here) ...
    assert [await loader(channel_id) for _ in range(3)] == [first] * 3
    assert counting.reads == opened
    # ... until any block changes: then it is read again, once.
    await commands.update_document(store, cipher, other, data={"webhook_url": "https://discord.example/2"})
    assert await loader(channel_id) == first
    assert counting.reads == 2 * opened
