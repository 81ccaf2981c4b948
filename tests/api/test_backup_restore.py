"""A backup is the log plus the block key; a restore into an empty database answers as before.

The README's backup section in a test: ``runlog events export`` and ``runlog database
encryption-key`` on the source, then ``database encryption-key --set`` and ``events import``
on an empty database of the same backend: runs, log lines and block documents (secrets
included) read back as they were, and ``projections verify`` finds no difference. Without the
key the blocks' secrets cannot be opened, which is why the key is part of the backup.
"""

from __future__ import annotations

from cryptography.fernet import Fernet

from runlog.commands.clock import ManualClock

from .test_blocks import SEEDED, register, save
from .test_cli_events_import import T0, cli, env_for, ok, seed, views
from . import test_cli_events_import as events_import
from ..servers import serve

# The export/import tests' fixtures: the source database and an empty one on the same backend.
source, copy_url = events_import.source, events_import.copy_url


async def blocks(server) -> list[dict]:  # type: ignore[no-untyped-def]
    found = await ok(server, "POST", "/block_documents/filter", {"include_secrets": True})
    return sorted(found, key=lambda d: d["name"])


async def test_export_and_key_restore_every_view_and_block_secret_into_an_empty_database(source, copy_url, tmp_path):
    async with serve(source, clock=ManualClock(T0)) as server:
        await seed(server)
        block_type, schema = await register(server)
        await save(server, block_type, schema, "ops", {"url": f"https://hooks.slack.com/{SEEDED}"})
        original, original_blocks = await views(server), await blocks(server)
    assert original_blocks[0]["data"]["url"].endswith(SEEDED)

    backup = tmp_path / "backup.jsonl"
    assert (await cli(source, "events", "export", str(backup))).exit_code == 0
    shown = await cli(source, "database", "encryption-key")
    assert shown.exit_code == 0, shown.output
    key = shown.output.strip()
    Fernet(key)  # the whole output is the key, usable as it is

    copy = env_for(copy_url, tmp_path / "copy-home")
    restored = await cli(copy, "database", "encryption-key", "--set", key)
    assert restored.exit_code == 0, restored.output
    imported = await cli(copy, "events", "import", str(backup))
    assert imported.exit_code == 0, imported.output

    async with serve(copy, clock=ManualClock(T0)) as server:
        assert await views(server) == original
        assert await blocks(server) == original_blocks
    verified = await cli(copy, "projections", "verify")
    assert verified.exit_code == 0 and "DIFFERS" not in verified.output, verified.output

    # The restored database keeps the key it was given: another one is refused, the same one is fine.
    other = await cli(copy, "database", "encryption-key", "--set", Fernet.generate_key().decode())
    assert other.exit_code == 1 and "already holds another key" in other.output, other.output
    assert (await cli(copy, "database", "encryption-key", "--set", key)).exit_code == 0


async def test_without_the_key_the_restored_blocks_secrets_cannot_be_opened(source, copy_url, tmp_path):
    async with serve(source, clock=ManualClock(T0)) as server:
        block_type, schema = await register(server)
        document = await save(server, block_type, schema, "ops", {"url": f"https://hooks.slack.com/{SEEDED}"})
    backup = tmp_path / "backup.jsonl"
    assert (await cli(source, "events", "export", str(backup))).exit_code == 0
    copy = env_for(copy_url, tmp_path / "copy-home")
    assert (await cli(copy, "events", "import", str(backup))).exit_code == 0
    async with serve(copy, clock=ManualClock(T0)) as server:
        status, answer = await server.request(
            "GET", f"/block_documents/{document['id']}", params={"include_secrets": "true"})
    assert status == 500 and SEEDED not in str(answer), (status, answer)
    assert "runlog database encryption-key --set" in answer["detail"], answer


async def test_a_database_without_blocks_has_no_key_to_show_and_a_bad_key_is_refused(source):
    empty = await cli(source, "database", "encryption-key")
    assert empty.exit_code == 1 and "holds no key yet" in empty.output, empty.output
    bad = await cli(source, "database", "encryption-key", "--set", "not-a-key")
    assert bad.exit_code == 2 and "expected a Fernet key" in bad.output, bad.output
    assert (await cli(source, "database", "encryption-key")).exit_code == 1  # nothing was stored
