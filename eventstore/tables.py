"""Declared tables and row changes: what an inline projection writes, declared once.

A projection declares each table it owns (its columns, in the table's column order, and its
key) and, for a batch of events, returns the rows that change: an upsert with the whole row, or
a delete by key; or, for a table of counts (declared with ``adds``, its one column besides the
key), an amount to add to a row's count. It writes no SQL. Each backend persists changes generically from the
declaration: SQLite and PostgreSQL's transaction path with one delete statement per table and
one upsert per set of columns written (generated here; a row whose changed columns the
projection knows sets only those), PostgreSQL's one-statement path with data-modifying CTEs riding in
the append's own statement (eventstore/postgres.py). A backend checks on open that every
declared table has exactly the declared columns in that order, so a declaration cannot drift
from the migrations that create the table; a table may declare ``own`` columns a backend keeps
after those (SQLite's key of an FTS5 index), which the projection never writes nor compares.

Within a batch a later change to a row replaces an earlier one, and amounts added to one count
are summed (those that cancel out are dropped), so each row is touched once: PostgreSQL cannot
modify one row twice in one statement, and it saves work anyway.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import cached_property
from typing import Any

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")

Key = Any
"""A row's key: the value itself for a one-column key, else a tuple in key order."""


class Table:
    """A projection table: name, columns in table order, and the columns of its primary key."""

    def __init__(
        self, name: str, columns: Sequence[str], key: Sequence[str], *, adds: str | None = None,
        own: Sequence[str] = (), deltas: str | None = None,
    ) -> None:
        for identifier in (name, *columns, *own, *((deltas,) if deltas else ())):
            if not _IDENTIFIER.match(identifier):
                raise ValueError(f"not a plain SQL identifier: {identifier!r}")
        if len(set(columns)) != len(columns):
            raise ValueError(f"table {name}: a column is declared twice")
        if not key or any(column not in columns for column in key):
            raise ValueError(f"table {name}: the key {tuple(key)} must be some of its columns")
        if adds is not None and tuple(c for c in columns if c not in key) != (adds,):
            raise ValueError(f"table {name}: a table of counts has one column besides its key, {adds!r}")
        self.name = name
        self.columns = tuple(columns)
        self.key = tuple(key)
        if deltas is not None and adds is None:
            raise ValueError(f"table {name}: only a table of counts has a table of deltas")
        self.adds = adds
        """The count column, for a table whose changes are amounts added to it (else None)."""
        self.own = tuple(own)
        """Columns a backend may keep after the declared ones, filled by the database (an
        INTEGER PRIMARY KEY, a default): never written by the projection, never compared."""
        self.deltas = deltas
        """For a table of counts on PostgreSQL: the table of the same columns, without a key, that
        live writes append amounts to (``delta_sql``) instead of adding them to this table's rows,
        which every batch would otherwise update; a count is then its row's plus its deltas'
        (the view ``totals``), and ``compact_sql`` folds the deltas into the rows. None: amounts
        are added to the rows (SQLite always: one writer, no dead row versions to walk)."""
        self.key_of: Callable[[Sequence[Any]], Key] = operator.itemgetter(*self.key_positions)
        self._upsert_only: dict[frozenset[str], str] = {}

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    @cached_property
    def key_positions(self) -> tuple[int, ...]:
        return tuple(self.columns.index(column) for column in self.key)

    @cached_property
    def upsert_sql(self) -> str:
        """Insert a row, or replace every non-key column of the row with its key."""
        return self.upsert_only_sql(frozenset(self.columns))

    @cached_property
    def on_conflict(self) -> str:
        return self._on_conflict(frozenset(self.columns))

    def _on_conflict(self, changed: frozenset[str]) -> str:
        updated = [column for column in self.columns if column in changed and column not in self.key]
        if not updated:
            return f"ON CONFLICT ({', '.join(self.key)}) DO NOTHING"
        assignments = ", ".join(f"{column} = excluded.{column}" for column in updated)
        return f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {assignments}"

    def upsert_only_sql(self, changed: frozenset[str]) -> str:
        """Insert a row, or replace only the ``changed`` columns of the row with its key: the
        others are known to hold the row's values already. SQLite then leaves alone every index
        on none of those columns, which the full upsert deletes and inserts again."""
        found = self._upsert_only.get(changed)
        if found is None:
            marks = ", ".join("?" * len(self.columns))
            found = self._upsert_only[changed] = (
                f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks}) {self._on_conflict(changed)}"
            )
        return found

    def upsert_set_sql(self, into: str | None = None) -> str:
        """PostgreSQL: upsert a set of whole rows given as one array of the row type of INTO
        (this table, or a rebuild's shadow of it: ``$1::into[]``), in one statement."""
        into = into or self.name
        return f"INSERT INTO {into} SELECT * FROM unnest($1::{into}[]) {self.on_conflict}"

    @cached_property
    def add_conflict(self) -> str:
        """For a table of counts: a row's amount added to the stored count. The alias ``t``,
        not the table's name, names the stored row: a rebuild renames the table after INTO only."""
        return f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {self.adds} = t.{self.adds} + excluded.{self.adds}"

    @cached_property
    def add_sql(self) -> str:
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {self.name} AS t ({', '.join(self.columns)}) VALUES ({marks}) {self.add_conflict}"

    @cached_property
    def delta_sql(self) -> str:
        """For a table with ``deltas``: amounts appended as rows of the deltas table."""
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {self.deltas} ({', '.join(self.columns)}) VALUES ({marks})"

    @cached_property
    def totals(self) -> str:
        """For a table with ``deltas``: the view of both tables' rows (migration 0034), whose
        sums by key are the counts; else the table itself."""
        return f"{self.name}_totals" if self.deltas else self.name

    @cached_property
    def compact_sql(self) -> str:
        """For a table with ``deltas`` (PostgreSQL): move every delta its snapshot sees into the
        rows, in one statement, so every snapshot sees each amount once, in one table or the
        other. A delta appended meanwhile is not in its snapshot and stays; one that a concurrent
        statement moved first is not deleted (nor added) here. Rows are added to in key order."""
        key = ", ".join(self.key)
        return (
            f"WITH moved AS (DELETE FROM {self.deltas} RETURNING {', '.join(self.columns)}) "
            f"INSERT INTO {self.name} AS t ({', '.join(self.columns)}) "
            f"SELECT {key}, sum({self.adds}) FROM moved GROUP BY {key} HAVING sum({self.adds}) <> 0 ORDER BY {key} "
            f"{self.add_conflict}"
        )

    @cached_property
    def delete_sql(self) -> str:
        return f"DELETE FROM {self.name} WHERE " + " AND ".join(f"{column} = ?" for column in self.key)

    def key_params(self, key: Key) -> tuple[Any, ...]:
        return key if len(self.key) > 1 else (key,)

    def key_row(self, key: Key) -> tuple[Any, ...]:
        """A row holding only ``key`` (None elsewhere): how deletes travel as composite values."""
        row: list[Any] = [None] * len(self.columns)
        for position, value in zip(self.key_positions, self.key_params(key), strict=True):
            row[position] = value
        return tuple(row)


class RowChanges:
    """The rows a batch changes, per table; the last change to a row wins, and amounts added to a
    count are summed."""

    __slots__ = ("_rows", "_adds", "_changed")

    def __init__(self) -> None:
        self._rows: dict[Table, dict[Key, tuple[Any, ...] | None]] = {}
        self._adds: dict[Table, dict[tuple[Any, ...], int]] = {}
        self._changed: dict[Table, dict[Key, frozenset[str]]] = {}

    def upsert(self, table: Table, row: tuple[Any, ...], *, changed: frozenset[str] | None = None) -> None:
        """Insert or replace ``row``. ``changed``: the only columns in which ``row`` may differ
        from the stored row with its key, if there is one (a projection that folded the
        stored row's own view knows it); a writer may then set only those. None: any of them."""
        rows = self._rows.setdefault(table, {})
        key = table.key_of(row)
        if changed is not None:
            known = self._changed.setdefault(table, {})
            if key not in rows:
                known[key] = changed
            elif key in known:
                known[key] = known[key] | changed  # this batch's earlier change of it, and this one
            # else: an earlier change of this batch left it to be written whole
        elif known_here := self._changed.get(table):
            known_here.pop(key, None)
        rows[key] = row

    def delete(self, table: Table, key: Key) -> None:
        self._rows.setdefault(table, {})[key] = None
        if known := self._changed.get(table):
            known.pop(key, None)

    def add(self, table: Table, key: tuple[Any, ...], amount: int) -> None:
        """Add ``amount`` to the count of the row with ``key`` (all its key columns, in table
        order) in a table declared with ``adds``; a row not there yet starts from 0."""
        counts = self._adds.setdefault(table, {})
        counts[key] = counts.get(key, 0) + amount

    def update(self, other: RowChanges) -> None:
        for table, rows in other._rows.items():
            theirs = other._changed.get(table, {})
            if not theirs and not self._changed.get(table):
                self._rows.setdefault(table, {}).update(rows)  # whole rows on both sides: the last wins
                continue
            for key, row in rows.items():
                if row is None:
                    self.delete(table, key)
                else:
                    self.upsert(table, row, changed=theirs.get(key))
        for table, counts in other._adds.items():
            for key, amount in counts.items():
                self.add(table, key, amount)

    def __bool__(self) -> bool:
        return any(self._rows.values()) or any(any(counts.values()) for counts in self._adds.values())

    def tables(self) -> Iterator[tuple[Table, list[tuple[Any, ...]], list[Key]]]:
        """(table, rows to upsert, keys to delete) for every table with a change."""
        for table, rows in self._rows.items():
            upserts = [row for row in rows.values() if row is not None]
            deletes = [key for key, row in rows.items() if row is None]
            if upserts or deletes:
                yield table, upserts, deletes

    def upsert_groups(self, table: Table, upserts: list[tuple[Any, ...]]) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """``upserts`` (of ``tables()``) as (statement, rows): those that may set only some
        columns (see ``upsert``) grouped by the columns they set, the others by the full upsert."""
        known = self._changed.get(table)
        if not known:
            return [(table.upsert_sql, upserts)]
        groups: dict[frozenset[str] | None, list[tuple[Any, ...]]] = {}
        for row in upserts:
            groups.setdefault(known.get(table.key_of(row)), []).append(row)
        return [
            (table.upsert_sql if changed is None else table.upsert_only_sql(changed), rows)
            for changed, rows in groups.items()
        ]

    def additions(self) -> Iterator[tuple[Table, list[tuple[Any, ...]]]]:
        """(table of counts, rows of key and amount) for every such table with an amount that is
        not 0, rows sorted by key (one order for every writer)."""
        for table, counts in self._adds.items():
            rows = sorted((*key, amount) for key, amount in counts.items() if amount)
            if rows:
                yield table, rows


async def persist(
    tx: Any, changes: RowChanges,
    upsert: Callable[[Table, list[tuple[Any, ...]]], Awaitable[None]] | None = None,
) -> None:
    """Write ``changes`` in ``tx`` (a Tx): per table, its deletes, then its upserts; then the
    amounts added to counts (appended to a table's ``deltas`` when the Tx says
    ``adds_as_deltas``: PostgreSQL's live writes, not a rebuild's shadows). ``upsert`` writes a
    table's upserts another way (a rebuild's one-statement set on PostgreSQL); by default a
    statement per row, setting only the columns a row may have changed where that is known
    (``RowChanges.upsert``), unless ``tx`` has an ``upsert_set`` of its own (PostgreSQL's)."""
    if upsert is None:
        upsert = getattr(tx, "upsert_set", None)
    for table, upserts, deletes in changes.tables():
        if deletes:
            await tx.executemany(table.delete_sql, [table.key_params(key) for key in deletes])
        if upserts:
            if upsert is not None:
                await upsert(table, upserts)
            else:
                for sql, rows in changes.upsert_groups(table, upserts):
                    await tx.executemany(sql, rows)
    as_deltas = getattr(tx, "adds_as_deltas", False)
    for table, rows in changes.additions():
        await tx.executemany(table.delta_sql if as_deltas and table.deltas else table.add_sql, rows)


def grouped_columns(rows: Sequence[Sequence[Any]]) -> dict[str, tuple[str, ...]]:
    """(table, column) rows in table and column order, as each table's columns."""
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return {table: tuple(names) for table, names in columns.items()}


__all__ = ["Key", "RowChanges", "Table", "grouped_columns", "persist"]
