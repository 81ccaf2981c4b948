"""Filters declared per resource, and the one function that turns a decoded filter into SQL.

A resource is a table of entries, one per field of its Prefect filter: ``Criteria`` (a column
expression and, per criterion such as ``any_`` or ``before_``, the operator that applies it),
``Nested`` (a sub-filter of several fields, like a run's ``state``), ``Related`` (another
resource's filter reached through a fixed EXISTS or join condition) and a few constants.
``where`` walks a filter struct through that table and returns ``(sql, params)``: the SQL is
assembled only from the declarations' own text, and every value the client sent travels as a
``?`` parameter (lists as one parameter, see ``in_list``), for SQLite and PostgreSQL alike.

Criteria left unset are skipped, and a filter that sets none is TRUE, as in Prefect's
``as_sql_filter``; a sub-filter with an ``operator`` field combines its criteria with it.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from runlog.eventstore import EventStore, Tx
from runlog.projections.tables import in_list, list_param, us

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""

Cond = tuple[str, tuple[Any, ...]]
"""A condition: an SQL fragment with ``?`` placeholders and its parameters, in order."""

TRUE: Cond = ("1 = 1", ())
FALSE: Cond = ("1 = 0", ())


class Dialect(NamedTuple):
    """What building SQL needs of a read handle: its dialect (a ``Tx`` serves as well), and how
    a listing's page is best read (see ``Listing.shape``)."""

    dialect: Literal["sqlite", "postgres"]
    probe_tags: bool = False
    """Write a tag table's criteria as a probe of each row's tags (a correlated subquery on the
    table's key) rather than as the set of the tag's rows: the planner then walks the sort's
    index and stops at the page, where the set would make it read every row of the tag and sort
    them. Chosen only when the tags are common enough for the walk to be the shorter read."""
    sorted_read: bool = False
    """Sort the page's matching rows rather than walk the sort's index: the sort's first term is
    written with a unary ``+`` (the same order, which no index gives, on either backend). For a
    range of one time sorted by the other: the planners take the two times for independent and
    walk the sort's index, past every run of the later days, to fill a page of the range's runs
    (4-14 s at a million runs), where reading the range and sorting it reads its runs once."""
    flow_covers_range: bool = False
    """Write a time range's criteria (``Criteria(ranged=True)``) so that SQLite's planner cannot
    read the rows from the time's index (a unary ``+``): a count of a flow's runs in a range then
    reads the flow's index, which holds the time too (flow_runs_flow_scheduled, migration 0038),
    and counts from it alone, where SQLite would read every run of the range from the table
    (``run_counts._flow_in_range``); a page, with ``sorted_read``, reads only the rows in the
    range and sorts them (``run_counts._flow_range_page``)."""
    walk: bool = False
    """Write the run's own indexed conditions (flow, state, deployment, queue) so that SQLite's
    planner cannot read the rows from their indexes (a unary ``+`` on the column, SQLite's way
    of saying so): it then walks the sort's index and stops at the page, where the index of a
    condition would make it read every matching row and sort them. Chosen, with ``probe_tags``,
    when the exact counts say the matching runs are common enough for the walk to be shorter."""


Sql = Dialect | Tx


def combine(conds: Sequence[Cond], operator: str = "and_") -> Cond:
    """Prefect's as_sql_filter: no criteria is TRUE, else the AND (or OR) of them."""
    if not conds:
        return TRUE
    if len(conds) == 1:
        return conds[0]
    joiner = " AND " if operator == "and_" else " OR "
    return "(" + joiner.join(sql for sql, _ in conds) + ")", tuple(p for _, params in conds for p in params)


def negate(cond: Cond) -> Cond:
    return f"NOT ({cond[0]})", cond[1]


def _text(value: Any) -> str:
    return value.value if isinstance(value, enum.Enum) else str(value)


# -- operators: how one criterion applies to an expression ----------------------------------------
#
# An operator takes the dialect, the entry's expression (our own SQL text) and the criterion's
# value, and returns a condition, or None when the value means "no criterion" (Prefect skips
# an empty not_any_ or like_, but an empty any_ matches nothing).

Op = Callable[[Sql, str, Any], Cond | None]


def any_in(d: Sql, expr: str, values: Sequence[Any] | None) -> Cond | None:
    if values is None:
        return None
    return in_list(d, expr), (list_param(d, [_text(v) for v in values]),)  # type: ignore[arg-type]


def not_any_in(d: Sql, expr: str, values: Sequence[Any] | None) -> Cond | None:
    return negate(any_in(d, expr, values)) if values else None  # type: ignore[arg-type]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(d: Sql, expr: str, value: str | None) -> Cond | None:
    """like_ as a case-insensitive literal substring match (runs' and flows' names)."""
    if not value:
        return None
    return f"lower({expr}) LIKE lower(CAST(? AS TEXT)) ESCAPE '\\'", ("%" + _escape_like(value) + "%",)


def like(d: Sql, expr: str, value: str | None) -> Cond | None:
    """like_ as Prefect documents it for variable names and artifact keys: ILIKE '%value%',
    where the value's own ``%`` and ``_`` are wildcards."""
    if not value:
        return None
    return f"lower({expr}) LIKE lower(CAST(? AS TEXT))", ("%" + value + "%",)


def at_or_before(d: Sql, expr: str, value: Any) -> Cond | None:
    return None if value is None else (f"{expr} <= ?", (us(value),))


def at_or_after(d: Sql, expr: str, value: Any) -> Cond | None:
    return None if value is None else (f"{expr} >= ?", (us(value),))


def at_least(d: Sql, expr: str, value: Any) -> Cond | None:
    return None if value is None else (f"{expr} >= ?", (value,))


def at_most(d: Sql, expr: str, value: Any) -> Cond | None:
    return None if value is None else (f"{expr} <= ?", (value,))


def null(d: Sql, expr: str, value: bool | None) -> Cond | None:
    if value is None:
        return None
    return (f"{expr} IS NULL" if value else f"{expr} IS NOT NULL"), ()


def exists(d: Sql, expr: str, value: bool | None) -> Cond | None:
    return None if value is None else null(d, expr, not value)


def never(d: Sql, expr: str, value: Any) -> Cond | None:
    """A criterion on something runlog does not keep: whatever it asks for, nothing has it."""
    return None if value is None else FALSE


def always_null(d: Sql, expr: str, value: bool | None) -> Cond | None:
    """is_null_ on something runlog does not keep: it is null everywhere."""
    return None if value is None else (TRUE if value else FALSE)


def on(other: str, op: Op) -> Op:
    """``op`` applied to ``other`` instead of the entry's expression."""
    return lambda d, _expr, value: op(d, other, value)


def where_exists(template: str, op: Op) -> Op:
    """``op`` applied inside a fixed subquery: ``template`` holds ``{expr}`` (the entry's
    expression) and ``{cond}`` (the operator's condition), both our own SQL."""

    def apply(d: Sql, expr: str, value: Any) -> Cond | None:
        cond = op(d, "", value)
        return None if cond is None else (template.format(expr=expr, cond=cond[0]), cond[1])

    return apply


# -- tags: a set of strings per row, kept in a tag table or in the row's JSON view --------------


class TagSource:
    """Where a row's tags are: ``rows(d, expr)`` is a FROM clause (ending in a WHERE) listing
    the tags of the row whose key or view is ``expr``; ``column(d)`` names each tag in it.

    A tag table also gives ``keys(cond)``: the keys of its rows meeting ``cond`` (over ``t.tag``),
    so that a tag criterion is ``key IN (those keys)``, which the planner may read from the
    table's (tag, key) index once, or probe per row, whichever is cheaper, rather than a
    subquery run once per row (see ``tags_all``)."""

    def __init__(
        self, rows: Callable[[Sql, str], str], column: Callable[[Sql], str],
        keys: Callable[[str], str] | None = None,
    ) -> None:
        self.rows = rows
        self.column = column
        self.keys = keys


def tag_table(table: str, key: str) -> TagSource:
    """Tags in ``table``, one row per (key, tag), unique (its primary key), indexed by (tag, key)."""
    return TagSource(
        lambda _d, expr: f"{table} t WHERE t.{key} = {expr}", lambda _d: "t.tag",
        lambda cond: f"SELECT t.{key} FROM {table} t WHERE {cond}",
    )


def json_tags(path: str) -> TagSource:
    """Tags in the JSON list ``path`` of a JSON document (the entry's expression, a view column)."""

    def rows(d: Sql, expr: str) -> str:
        if d.dialect == "postgres":
            return f"jsonb_array_elements_text(convert_from({expr}, 'UTF8')::jsonb -> '{path}') AS t(tag) WHERE 1 = 1"
        return f"json_each(CAST({expr} AS TEXT), '$.{path}') t WHERE 1 = 1"

    return TagSource(rows, lambda d: "t.tag" if d.dialect == "postgres" else "t.value")


def _walking(d: Sql) -> bool:
    """Whether a page walks its sort's index (``Dialect.walk``)."""
    return isinstance(d, Dialect) and d.walk


def _covering(d: Sql) -> bool:
    """Whether a time range is to be read from the flow's index (``Dialect.flow_covers_range``)."""
    return isinstance(d, Dialect) and d.flow_covers_range and d.dialect == "sqlite"


def _probing(d: Sql) -> bool:
    """Whether tag criteria are to be written as per-row probes (``Dialect.probe_tags``); the
    per-row forms below serve a tag table as well as a JSON list."""
    return isinstance(d, Dialect) and d.probe_tags


def tags_all(source: TagSource) -> Op:
    """Every tag given is among the row's (an empty list is no criterion)."""

    def apply(d: Sql, expr: str, values: Sequence[str] | None) -> Cond | None:
        if not values:
            return None
        wanted = sorted(set(values))
        if source.keys is not None:
            # One IN per tag: each is an index range of the tag table (its rows are unique per
            # key and tag), and the planner starts from the rarest. Probed, one lookup of the
            # row's key and tag per tag, the first missing one ending them.
            each = f"EXISTS (SELECT 1 FROM {source.rows(d, expr)} AND t.tag = ?)" if _probing(d) else (
                f"{expr} IN ({source.keys('t.tag = ?')})"
            )
            return "(" + " AND ".join(each for _ in wanted) + ")", tuple(wanted)
        # Counting the distinct tags that match checks that all are there (a flow's view may
        # list a tag twice).
        tag = source.column(d)
        tag_in = in_list(d, tag)  # type: ignore[arg-type]
        sql = f"(SELECT COUNT(DISTINCT {tag}) FROM {source.rows(d, expr)} AND {tag_in}) = ?"
        return sql, (list_param(d, wanted), len(wanted))  # type: ignore[arg-type]

    return apply


def tags_any(source: TagSource, *, empty_matches_none: bool = True) -> Op:
    """One of the tags given is among the row's."""

    def apply(d: Sql, expr: str, values: Sequence[str] | None) -> Cond | None:
        if values is None or (not values and not empty_matches_none):
            return None
        tag_in = in_list(d, source.column(d))  # type: ignore[arg-type]
        if source.keys is not None and not _probing(d):
            return f"{expr} IN ({source.keys(tag_in)})", (list_param(d, list(values)),)  # type: ignore[arg-type]
        sql = f"EXISTS (SELECT 1 FROM {source.rows(d, expr)} AND {tag_in})"
        return sql, (list_param(d, list(values)),)  # type: ignore[arg-type]

    return apply


def tags_null(source: TagSource) -> Op:
    """is_null_: the row has no tags (True) or some (False)."""

    def apply(d: Sql, expr: str, value: bool | None) -> Cond | None:
        if value is None:
            return None
        sql = f"EXISTS (SELECT 1 FROM {source.rows(d, expr)})"
        return (f"NOT {sql}" if value else sql), ()

    return apply


# -- entries: what one field of a filter is ---------------------------------------------------


class Entry:
    """One field of a filter: ``conds`` turns the field's (non-null) value into conditions."""

    def criteria(self) -> Mapping[str, Any] | None:
        """The criteria (or fields) this entry declares, for checking declarations."""
        return None

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        raise NotImplementedError


def _combined_by(value: Any) -> str:
    return getattr(value, "operator", "and_")


class Criteria(Entry):
    """A sub-filter whose fields are criteria on one expression, each applied by its operator.

    ``single`` keeps Prefect's quirk for a flow run's state type and name: the sub-filter is
    kept only when it makes exactly one comparison (setting both any_ and not_any_ drops it).
    """

    def __init__(
        self, expr: str, ops: Mapping[str, Op], *, single: bool = False, indexed: bool = False, ranged: bool = False,
    ) -> None:
        self.expr = expr
        self.ops = dict(ops)
        self.single = single
        self.indexed = indexed
        """An index may read the rows by ``expr``: not on a page that walks the sort's (``Dialect.walk``)."""
        self.ranged = ranged
        """A range of ``expr`` may be read from its index: not when the flow's covers it (``Dialect.flow_covers_range``)."""

    def criteria(self) -> Mapping[str, Any]:
        return self.ops

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        parts = []
        # (PostgreSQL's own statistics on these columns choose well: only SQLite is told.)
        unindexed = (self.indexed and _walking(d) and d.dialect == "sqlite") or (self.ranged and _covering(d))
        expr = f"+{self.expr}" if unindexed else self.expr
        for name in value.__struct_fields__:
            if name == "operator":
                continue
            criterion = getattr(value, name)
            if criterion is None:
                continue
            cond = self.ops[name](d, expr, criterion)
            if cond is not None:
                parts.append(cond)
        if self.single and len(parts) != 1:
            parts = []
        return [combine(parts, _combined_by(value))]


class Custom(Entry):
    """A field whose criteria depend on one another: ``build(d, value)`` gives its conditions."""

    def __init__(self, build: Callable[[Sql, Any], list[Cond]], criteria: Sequence[str]) -> None:
        self.build = build
        self.names = tuple(criteria)

    def criteria(self) -> Mapping[str, Any]:
        return dict.fromkeys(self.names)

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        return self.build(d, value)


class Constant(Entry):
    """A field runlog keeps nothing for: any value of it is ``cond`` (FALSE: matches nothing)."""

    def __init__(self, cond: Cond) -> None:
        self.cond = cond

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        return [self.cond]


class Unknown(Entry):
    """A sub-filter on what runlog does not keep: setting any criterion matches nothing (as on a
    Prefect server without such a thing); setting none is TRUE, as in Prefect."""

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        named = any(getattr(value, n) is not None for n in value.__struct_fields__ if n != "operator")
        return [FALSE if named else TRUE]


class Ignored(Entry):
    """A field Prefect accepts and ignores (a deprecated one)."""

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        return []


class Resource(Entry):
    """A filter: its fields' entries, keyed by field name. A key may also be a tuple of field
    names: that entry gets the whole struct when any of them is set (several fields evaluated
    in one subquery). ``always`` holds conditions every row must meet, whatever the filter."""

    def __init__(self, entries: Mapping[str | tuple[str, ...], Entry], *, always: Sequence[Cond] = ()) -> None:
        self.entries = dict(entries)
        self.always = tuple(always)

    def criteria(self) -> Mapping[str, Any]:
        names: dict[str, Entry] = {}
        for key, entry in self.entries.items():
            for name in (key,) if isinstance(key, str) else key:
                names[name] = entry
        return names

    def where(self, d: Sql, value: Any) -> Cond:
        """The filter ``value`` (a msgspec struct, or None for no filter) as one condition."""
        conds = list(self.always)
        if value is not None:
            inner: list[Cond] = []
            for key, entry in self.entries.items():
                if isinstance(key, str):
                    field = getattr(value, key, None)  # a filter may have fewer fields than declared
                    if field is not None:
                        inner += entry.conds(d, field)
                elif any(getattr(value, name, None) is not None for name in key):
                    inner += entry.conds(d, value)
            conds.append(combine(inner, _combined_by(value)))
        return combine(conds)

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        return [self.where(d, value)]


class Related(Entry):
    """Another resource's filter over a row reached by ``template``, our own SQL holding
    ``{where}``: e.g. ``EXISTS (SELECT 1 FROM task_runs tr WHERE tr.id = a.task_run_id AND {where})``,
    or a mapping from dialect to such a template ('sqlite_walk' and 'postgres_walk', when given,
    are the dialect's on a page that walks the sort's index: ``Dialect.walk``)."""

    def __init__(self, template: str | Mapping[str, str], resource: Resource) -> None:
        self.template = template
        self.resource = resource

    def criteria(self) -> Mapping[str, Any]:
        return self.resource.criteria()

    def conds(self, d: Sql, value: Any) -> list[Cond]:
        sql, params = self.resource.where(d, value)
        if isinstance(self.template, str):
            template = self.template
        elif _walking(d) and f"{d.dialect}_walk" in self.template:
            template = self.template[f"{d.dialect}_walk"]
        else:
            template = self.template[d.dialect]
        return [(template.format(where=sql), params)]


def where(d: Sql, resource: Resource, value: Any) -> Cond:
    """The WHERE condition for ``value`` (a decoded filter body) over ``resource``."""
    return resource.where(d, value)


# -- reading a page, a count, or both from one snapshot ---------------------------------------


async def fetch_page(
    tx: Tx, source: str, columns: str, cond: Cond, order: str, limit: int | None, offset: int
) -> list[Sequence[Any]]:
    """``columns`` of the rows of ``source`` meeting ``cond``, in ``order``; all three are our
    own SQL text, and a limit of None means every row."""
    sql, params = cond
    if limit is not None:
        page, bounds = " LIMIT ? OFFSET ?", (limit, offset)
    else:  # SQLite takes an OFFSET only after a LIMIT; -1 is none
        page, bounds = (" LIMIT -1 OFFSET ?" if tx.dialect == "sqlite" else " OFFSET ?"), (offset,)
    return await tx.fetch(f"SELECT {columns} FROM {source} WHERE {sql} ORDER BY {order}{page}", *params, *bounds)


async def fetch_count(tx: Tx, source: str, cond: Cond) -> int:
    sql, params = cond
    return int((await tx.fetch(f"SELECT COUNT(*) FROM {source} WHERE {sql}", *params))[0][0])


async def fetch_page_and_count(
    tx: Tx, table: str, alias: str, column: str, cond: Cond, order: str, limit: int, offset: int,
    page_cond: Cond | None = None,
) -> tuple[list[Any], int]:
    """A page of ``alias.column`` and the count of every matching row, read in ONE statement,
    so that both come from one snapshot on either backend and always agree.

    One statement is one read transaction on both backends (PostgreSQL takes a statement's
    snapshot once, even under READ COMMITTED; SQLite in autocommit mode reads a statement in
    one implicit transaction). An explicit BEGIN is not an option on SQLite: its reader
    connection is shared by every concurrent request (and is the writer's own connection for
    an in-memory database), so a transaction held open across awaits would pin the other
    requests' reads to this snapshot, or collide with the writer's BEGIN.

    The page is a subquery under the table's own alias, so ``order`` sorts the outer rows again
    (at most ``limit`` of them); the LEFT JOIN keeps the count when the page is empty.
    ``page_cond``, when given, is the same condition written for reading the page (see
    ``Listing.shape``); the count reads ``cond``.
    """
    sql, params = cond
    page_sql, page_params = page_cond or cond
    statement = (
        f"SELECT {alias}.{column}, c.n FROM (SELECT COUNT(*) AS n FROM {table} {alias} WHERE {sql}) c "
        f"LEFT JOIN (SELECT {alias}.* FROM {table} {alias} WHERE {page_sql} ORDER BY {order} LIMIT ? OFFSET ?) {alias} "
        f"ON 1 = 1 ORDER BY {order}"
    )
    rows = await tx.fetch(statement, *params, *page_params, limit, offset)
    count = int(rows[0][1])
    return [row[0] for row in rows if row[0] is not None], count


T = TypeVar("T")

Order = str | Mapping[str, str]
"""A sort's ORDER BY text, or one text per dialect (SQLite's and PostgreSQL's)."""


def view_time(alias: str, field: str, then: str) -> Order:
    """An ORDER BY on a time kept only in the row's encoded view (``alias.view``), compared as a
    time (its text form need not sort chronologically), followed by ``then``. SQLite's julianday
    double is precise to tens of microseconds; ``then`` breaks the ties that leaves."""
    return {
        "sqlite": f"julianday(json_extract(CAST({alias}.view AS TEXT), '$.{field}')) {then}",
        "postgres": f"(convert_from({alias}.view, 'UTF8')::jsonb ->> '{field}')::timestamptz {then}",
    }


def views_of(decode: Callable[[bytes], T]) -> Callable[[Sequence[Any]], T]:
    """The row loader of a listing whose one column is the encoded view."""
    return lambda row: decode(bytes(row[0]))


@dataclass(frozen=True)
class Listing(Generic[T]):
    """A resource's list and count queries, declared: the rows of ``source`` (our SQL text, with
    its alias) that ``query`` admits for a request body, in the named sort of ``orders``, read as
    ``columns`` and made into what the route shows by ``load``. Every filter/count/paginate route
    of a resource is one of these three reads."""

    source: str
    columns: str
    query: Resource
    orders: Mapping[str, Order]
    load: Callable[[Sequence[Any]], T]
    counter: Callable[[Sql, Any], Cond | None] | None = None
    """When given: for a body it can answer, a whole statement that reads the count faster
    than COUNT(*) over ``source`` (flow runs' pre-aggregated counts); None to count the rows."""
    shape: Callable[[Tx, Any, str, int | None, int], Awaitable[Sql]] | None = None
    """When given: for a body, sort, limit and offset, the ``Sql`` a page's conditions are
    written for, read in the page's own transaction (flow runs probe common tags per row,
    see ``Dialect.probe_tags``); None to write them for the read handle as they are."""

    def _order(self, d: Sql, sort: str) -> str:
        order = self.orders[sort]
        order = order if isinstance(order, str) else order[d.dialect]
        return f"+{order}" if isinstance(d, Dialect) and d.sorted_read else order

    async def page(self, store: EventStore, body: Any, *, sort: str, limit: int | None, offset: int) -> list[T]:
        async with store.reading() as tx:
            d = await self.shape(tx, body, sort, limit, offset) if self.shape is not None else tx
            rows = await fetch_page(
                tx, self.source, self.columns, self.query.where(d, body), self._order(d, sort), limit, offset
            )
        return [self.load(row) for row in rows]

    async def count(self, store: EventStore, body: Any) -> int:
        async with store.reading() as tx:
            counted = self.counter(tx, body) if self.counter is not None else None
            if counted is not None:
                return int((await tx.fetch(counted[0], *counted[1]))[0][0])
            return await fetch_count(tx, self.source, self.query.where(tx, body))

    async def page_and_count(
        self, store: EventStore, body: Any, *, sort: str, limit: int, offset: int
    ) -> tuple[list[T], int]:
        """A page and the count of all that match, from one snapshot (a one-table, one-column listing)."""
        table, alias = self.source.split()
        async with store.reading() as tx:
            d = await self.shape(tx, body, sort, limit, offset) if self.shape is not None else tx
            values, count = await fetch_page_and_count(
                tx, table, alias, self.columns.removeprefix(f"{alias}."), self.query.where(tx, body),
                self._order(d, sort), limit, offset, self.query.where(d, body) if d is not tx else None,
            )
        return [self.load((value,)) for value in values], count
