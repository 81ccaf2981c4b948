"""SQLite's trigram index of flow run names fills once per write transaction (migration 0036): a
new name is staged by its trigger and indexed in one statement before the COMMIT, so a name
like_ finds every committed name, and FTS5's own check finds the index equal to the names."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from runlog.api.queries import run_filters
from runlog.api.queries.filtering import Dialect
from runlog.api.schemas import filters as f
from runlog.commands import flow_runs, flows
from runlog.commands.flow_runs import NewFlowRun
from runlog.eventstore import open_store
from runlog.projections.cache import ViewCache
from runlog.projections.registry import inline_projections

STAGED = "SELECT count(*) FROM flow_run_names_unindexed"
CHECK = "INSERT INTO flow_run_name_trigrams (flow_run_name_trigrams, rank) VALUES ('integrity-check', 1)"


async def _named(store: Any, like: str) -> set[str]:
    async with store.reading() as tx:
        body = msgspec.convert({"flow_runs": {"name": {"like_": like}}}, f.FlowRunFilterRequest)
        sql, params = run_filters.FLOW_RUN_QUERY.where(Dialect(tx.dialect), body)
        rows = await tx.fetch(f"SELECT fr.name FROM flow_runs fr WHERE {sql}", *params)
    return {row[0] for row in rows}


async def _staged_and_checked(store: Any) -> int:
    async with store.reading() as tx:
        ((staged,),) = await tx.fetch(STAGED)
        await tx.execute(CHECK)  # rank 1: the index against its content (SQLITE_CORRUPT if unequal)
    return staged


async def test_runs_created_together_are_found_by_name_once_their_batch_commits(tmp_path):
    cache = ViewCache()
    async with open_store(f"sqlite:///{tmp_path}/runlog.db", projections=inline_projections(cache)) as store:
        flow_id = (await flows.register(store, "names"))[0].id
        names = [f"batch-run-{i}" for i in range(20)] + ["Grün-Zeit"]
        # Concurrent creations share group commits: several names staged in one transaction.
        await asyncio.gather(*(
            flow_runs.create(store, NewFlowRun(flow_id=flow_id, name=name), cache=cache) for name in names
        ))
        assert await _named(store, "batch-run-1") == {"batch-run-1", *(f"batch-run-1{i}" for i in range(10))}
        assert await _named(store, "GRÜN") == {"Grün-Zeit"}
        assert await _staged_and_checked(store) == 0


async def test_a_name_staged_and_then_renamed_or_deleted_in_its_transaction_is_indexed_as_it_ends(tmp_path):
    """The update and delete triggers never delete a staged name's entries, which are not in the
    index yet (FTS5 would corrupt): a transaction that makes, renames and deletes names, staged
    and indexed ones alike, leaves the index equal to the names."""
    async with open_store(f"sqlite:///{tmp_path}/runlog.db", projections=inline_projections()) as store:
        async def indexed_first(tx: Any) -> None:
            await tx.executemany(
                "INSERT INTO flow_run_names (run_id, name, created) VALUES (?, ?, 0)",
                [("old-kept", "old-kept"), ("old-renamed", "old-renamed"), ("old-deleted", "old-deleted")],
            )

        async def mixed(tx: Any) -> None:
            await tx.executemany(
                "INSERT INTO flow_run_names (run_id, name, created) VALUES (?, ?, 0)",
                [("new-kept", "new-kept"), ("new-renamed", "new-renamed"), ("new-deleted", "new-deleted"),
                 ("new-moved", "new-moved")],
            )
            await tx.execute("UPDATE flow_run_names SET name = 'new-renamed-again' WHERE run_id = 'new-renamed'")
            await tx.execute("DELETE FROM flow_run_names WHERE run_id = 'new-deleted'")
            await tx.execute("UPDATE flow_run_names SET id = id + 1000 WHERE run_id = 'new-moved'")
            await tx.execute("UPDATE flow_run_names SET name = 'old-renamed-again' WHERE run_id = 'old-renamed'")
            await tx.execute("DELETE FROM flow_run_names WHERE run_id = 'old-deleted'")

        await store.write_transaction(indexed_first)
        assert await _staged_and_checked(store) == 0
        await store.write_transaction(mixed)
        assert await _staged_and_checked(store) == 0
        assert await _matching(store, "kept") == {"old-kept", "new-kept"}
        assert await _matching(store, "again") == {"new-renamed", "old-renamed"}
        assert await _matching(store, "deleted") == set()
        assert await _matching(store, "moved") == {"new-moved"}


async def _matching(store: Any, phrase: str) -> set[str]:
    async with store.reading() as tx:
        rows = await tx.fetch(
            "SELECT n.run_id FROM flow_run_name_trigrams t JOIN flow_run_names n ON n.id = t.rowid "
            "WHERE t.flow_run_name_trigrams MATCH ?", f'"{phrase}"'
        )
    return {row[0] for row in rows}
