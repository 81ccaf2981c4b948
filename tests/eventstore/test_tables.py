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
