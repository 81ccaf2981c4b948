"""Declared tables: SQL generated from the declaration, row changes coalesced per row, and a
declaration that disagrees with the database refused when the store opens (both backends)."""

from __future__ import annotations

import pytest

from runlog.eventstore import RowChanges, SchemaError, Table, open_store

ITEMS = Table("items", ("id", "name", "size"), key=("id",))
PAIRS = Table("pairs", ("a", "b"), key=("a", "b"))


def test_statements_are_generated_from_the_declaration() -> None:
    assert ITEMS.upsert_sql == (
        "INSERT INTO items (id, name, size) VALUES (?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, size = excluded.size"
    )
    assert ITEMS.delete_sql == "DELETE FROM items WHERE id = ?"
    assert PAIRS.upsert_sql == "INSERT INTO pairs (a, b) VALUES (?, ?) ON CONFLICT (a, b) DO NOTHING"
    assert PAIRS.delete_sql == "DELETE FROM pairs WHERE a = ? AND b = ?"
    assert PAIRS.key_row(("x", "y")) == ("x", "y") and ITEMS.key_row("k") == ("k", None, None)


@pytest.mark.parametrize("bad", [
    dict(name="items; drop", columns=("id",), key=("id",)),
    dict(name="items", columns=("id", "id"), key=("id",)),
    dict(name="items", columns=("id",), key=("name",)),
    dict(name="items", columns=("id",), key=()),
])
def test_a_declaration_that_is_not_plain_sql_names_is_refused(bad) -> None:
    with pytest.raises(ValueError):
        Table(bad["name"], bad["columns"], key=bad["key"])


def test_the_last_change_to_a_row_wins_and_each_row_is_touched_once() -> None:
    changes = RowChanges()
    changes.upsert(ITEMS, ("1", "first", 1))
    changes.upsert(ITEMS, ("2", "two", 2))
    changes.upsert(ITEMS, ("1", "again", 3))
    changes.delete(ITEMS, "2")
    changes.delete(PAIRS, ("x", "y"))
    changes.upsert(PAIRS, ("x", "y"))
    later = RowChanges()
    later.delete(ITEMS, "1")
    changes.update(later)
    assert list(changes.tables()) == [(ITEMS, [], ["1", "2"]), (PAIRS, [("x", "y")], [])]
    assert not RowChanges()


class Items:
    name = "items"
    tables = (ITEMS,)

    async def changes(self, tx, events) -> RowChanges:
        return RowChanges()


async def test_a_declaration_that_disagrees_with_the_table_is_refused_on_open(store_url) -> None:
    async with open_store(store_url) as setup, setup.reading() as tx:
        await tx.execute("CREATE TABLE items (id TEXT PRIMARY KEY, size INTEGER, name TEXT)")
    with pytest.raises(SchemaError, match="declares table items with columns id, name, size, but the database has id, size, name"):
        async with open_store(store_url, projections=[Items()]):
            pass


async def test_a_declared_table_that_does_not_exist_is_refused_on_open(store_url) -> None:
    with pytest.raises(SchemaError, match="declares table items .* but the database has no such table"):
        async with open_store(store_url, projections=[Items()]):
            pass


COUNTS = Table("flow_run_counts", ("dim", "key", "flow_id", "state_type", "state_name", "n"),
               key=("dim", "key", "flow_id", "state_type", "state_name"), adds="n")


def test_amounts_added_to_a_count_are_summed_and_those_that_cancel_are_dropped() -> None:
    changes = RowChanges()
    assert not changes
    changes.add(COUNTS, ("run", "", "f", "RUNNING", "Running"), 1)
    changes.add(COUNTS, ("run", "", "f", "PENDING", "Pending"), -1)
    changes.add(COUNTS, ("run", "", "f", "RUNNING", "Running"), -1)  # in and out in one batch
    other = RowChanges()
    other.add(COUNTS, ("run", "", "f", "PENDING", "Pending"), -2)
    changes.update(other)
    assert list(changes.additions()) == [(COUNTS, [("run", "", "f", "PENDING", "Pending", -3)])]
    assert list(changes.tables()) == []
    assert COUNTS.add_sql.endswith("ON CONFLICT (dim, key, flow_id, state_type, state_name) DO UPDATE SET n = t.n + excluded.n")
    cancelled = RowChanges()
    cancelled.add(COUNTS, ("tag", "a", "f", "", ""), 1)
    cancelled.add(COUNTS, ("tag", "a", "f", "", ""), -1)
    assert not cancelled and list(cancelled.additions()) == []
    with pytest.raises(ValueError):
        Table("counts", ("k", "n", "m"), key=("k",), adds="n")  # a count table has one column besides its key


async def test_amounts_are_added_to_the_stored_counts(store_url) -> None:
    async with open_store(store_url) as store:
        for amounts in ((2, 1), (3, -1)):
            changes = RowChanges()
            changes.add(COUNTS, ("run", "", "f", "RUNNING", "Running"), amounts[0])
            changes.add(COUNTS, ("tag", "x", "f", "RUNNING", "Running"), amounts[1])
            await store.write_tables(changes)
        async with store.reading() as tx:
            rows = sorted(tuple(r) for r in await tx.fetch("SELECT dim, key, n FROM flow_run_counts"))
    assert rows == [("run", "", 5), ("tag", "x", 0)]


def test_a_row_whose_changed_columns_are_known_is_written_setting_only_those() -> None:
    changes = RowChanges()
    changes.upsert(ITEMS, ("1", "one", 1), changed=frozenset({"size"}))
    changes.upsert(ITEMS, ("2", "two", 2), changed=frozenset({"size"}))
    changes.upsert(ITEMS, ("3", "three", 3))  # not known: written whole
    changes.upsert(ITEMS, ("4", "four", 4), changed=frozenset({"id"}))  # only its key: nothing to set
    groups = dict(changes.upsert_groups(ITEMS, next(rows for table, rows, _ in changes.tables() if table is ITEMS)))
    assert groups == {
        "INSERT INTO items (id, name, size) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET size = excluded.size":
            [("1", "one", 1), ("2", "two", 2)],
        ITEMS.upsert_sql: [("3", "three", 3)],
        "INSERT INTO items (id, name, size) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING": [("4", "four", 4)],
    }


def test_a_row_changed_twice_in_a_batch_sets_the_columns_of_both_changes_or_all() -> None:
    changes = RowChanges()
    changes.upsert(ITEMS, ("1", "one", 1), changed=frozenset({"size"}))
    changes.upsert(ITEMS, ("1", "uno", 1), changed=frozenset({"name"}))
    changes.upsert(ITEMS, ("2", "two", 2))
    changes.upsert(ITEMS, ("2", "two", 3), changed=frozenset({"size"}))  # whole before: whole still
    changes.delete(ITEMS, "3")
    later = RowChanges()
    later.upsert(ITEMS, ("3", "three", 3), changed=frozenset({"size"}))  # deleted before: whole
    changes.update(later)
    [(_, upserts, _)] = list(changes.tables())
    groups = changes.upsert_groups(ITEMS, upserts)
    assert groups == [(ITEMS.upsert_only_sql(frozenset({"name", "size"})), [("1", "uno", 1)]),
                      (ITEMS.upsert_sql, [("2", "two", 3), ("3", "three", 3)])]


async def test_a_write_sets_the_changed_columns_and_inserts_a_missing_row(store_url, backend) -> None:
    """SQLite sets only a row's changed columns (its indexes on the others are left alone);
    PostgreSQL upserts the set whole in one statement (PostgresTx.upsert_set), which a
    projection's promise that the other columns hold the stored values makes the same."""
    async with open_store(store_url) as store:
        async with store.reading() as tx:
            await tx.execute("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT, size INTEGER)")
        first = RowChanges()
        first.upsert(ITEMS, ("1", "one", 1))
        await store.write_tables(first)
        second = RowChanges()
        # The name given is not written for row 1 (not among its changed columns); row 2 has no
        # stored row, so all of it is inserted.
        second.upsert(ITEMS, ("1", "ignored", 10), changed=frozenset({"size"}))
        second.upsert(ITEMS, ("2", "two", 2), changed=frozenset({"size"}))
        await store.write_tables(second)
        async with store.reading() as tx:
            rows = sorted(tuple(r) for r in await tx.fetch("SELECT id, name, size FROM items"))
    assert rows == [("1", "one" if backend == "sqlite" else "ignored", 10), ("2", "two", 2)]
