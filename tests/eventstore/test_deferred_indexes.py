"""Indexes a bulk writer sets aside (eventstore/deferred_indexes.py): only those that check
nothing, their definitions kept in the database, made again by the writer or, if it died first,
by the next store that opens the database with migrations."""

from __future__ import annotations

from runlog.eventstore import deferred_indexes, migrate, migration_connection, open_store

TABLES = ("flow_runs", "logs")
SQL_NAMES = {
    "sqlite": "SELECT name, sql LIKE 'CREATE UNIQUE%' FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
              " AND tbl_name IN ('flow_runs', 'logs')",
    "postgres": "SELECT indexname, indexdef LIKE 'CREATE UNIQUE%' FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename IN ('flow_runs', 'logs')",
}


async def _indexes(store) -> dict[str, bool]:
    """The tables' indexes (those made by CREATE INDEX on SQLite), and whether each is unique."""
    async with store.reading() as tx:
        return {str(name): bool(unique) for name, unique in await tx.fetch(SQL_NAMES[tx.dialect])}


async def _defer(tx) -> list[str]:
    return await deferred_indexes.defer(tx.fetch, tx.execute, tx.dialect, TABLES)


async def _restore(tx) -> list[str]:
    return await deferred_indexes.restore(tx.fetch, tx.execute, tx.dialect)


async def _saved(store) -> list[list[str]]:
    async with store.reading() as tx:
        return await deferred_indexes.saved(tx.fetch)


async def test_only_indexes_that_check_nothing_are_set_aside_and_made_again(store_url):
    async with open_store(store_url) as store:
        before = await _indexes(store)
        dropped = await store.write_transaction(_defer)
        assert "flow_runs_state" in dropped and "logs_flow_run" in dropped
        assert set(dropped) == {name for name, unique in before.items() if not unique}
        assert await _indexes(store) == {name: True for name, unique in before.items() if unique}
        assert sorted(name for name, _ in await _saved(store)) == sorted(dropped)
        assert sorted(await store.write_transaction(_restore)) == sorted(dropped)
        assert await _indexes(store) == before
        assert await _saved(store) == []


async def test_indexes_left_aside_by_a_writer_that_died_are_made_when_a_store_opens(store_url):
    async with open_store(store_url) as store:
        before = await _indexes(store)
        await store.write_transaction(_defer)  # and the writer dies: nothing makes them again
    async with open_store(store_url, migrate=False) as store:  # a store that may not write its schema leaves them
        assert await _indexes(store) != before
    async with open_store(store_url) as store:
        assert await _indexes(store) == before
        assert await _saved(store) == []


async def test_setting_aside_twice_keeps_both_lists(store_url):
    """A second writer (an import run again before a store reopened) adds to the list."""
    async with open_store(store_url) as store:
        before = await _indexes(store)

        async def first(tx) -> list[str]:
            return await deferred_indexes.defer(tx.fetch, tx.execute, tx.dialect, ("flow_runs",))

        async def second(tx) -> list[str]:
            return await deferred_indexes.defer(tx.fetch, tx.execute, tx.dialect, ("logs",))

        await store.write_transaction(first)
        await store.write_transaction(second)
    async with open_store(store_url) as store:
        assert await _indexes(store) == before


async def test_indexes_set_aside_at_an_older_revision_are_made_before_the_migrations_run(store_url, backend):
    """A migration may drop or rebuild an index a writer had set aside (SQLite's 0035 rebuilds
    flow_run_names and drops its index): the indexes come back first, at the revision they were
    set aside at, and then the migrations run over them."""
    async with open_store(store_url) as store:
        at_head = await _indexes(store)
    rebuilt = next(m.revision for m in migrate.load_migrations(backend) if m.name == "run_search")
    async with migration_connection(store_url) as conn:
        await migrate.downgrade(conn, backend, rebuilt - 1)
        inner = conn._conn  # the driver connection; tests may look inside

        async def fetch(sql: str, *args):
            return list(await (inner.execute_fetchall(sql, args) if backend == "sqlite" else inner.fetch(sql, *args)))

        async def execute(sql: str, *args):
            # deferred_indexes writes the Tx's placeholders (?); asyncpg takes $1.
            await (inner.execute(sql, args) if backend == "sqlite" else inner.execute(sql.replace("?", "$1"), *args))

        dropped = await deferred_indexes.defer(fetch, execute, backend, ("flow_runs", "flow_run_names"))
        if backend == "sqlite":
            await inner.commit()
    assert "flow_run_names_created" in dropped
    async with open_store(store_url) as store:  # migrates from rebuilt - 1 to the head
        assert await _indexes(store) == at_head
        assert await _saved(store) == []
        async with store.reading() as tx:
            names = "SELECT name FROM sqlite_master" if backend == "sqlite" else "SELECT indexname FROM pg_indexes"
            assert [("flow_run_names_created",)] == [
                tuple(row) for row in await tx.fetch(f"{names} WHERE {names.split()[1]} = 'flow_run_names_created'")
            ]
