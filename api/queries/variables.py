"""Reading variables from the variables projection; filters are evaluated in SQL."""

from __future__ import annotations

from uuid import UUID

from runlog.schema import streams
from runlog.eventstore import EventStore, Tx
from runlog.projections.tables import in_list, list_param
from runlog.projections.variables import VariableView, decode_variable

from ..schemas.variables import VariableFilter
from .conditions import Cond, combine, is_in, like

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""

SQL_BY_ID = "SELECT view FROM variables WHERE id = ?"
# Names are unique (see projections/variables.py); should a pushed log hold two, the oldest answers.
SQL_BY_NAME = "SELECT view FROM variables WHERE name = ? ORDER BY created, id LIMIT 1"
SQL_STREAM_VERSION = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?"

# Ties fall back to the id, so that pages never overlap.
ORDER = {
    "CREATED_DESC": "v.created DESC, v.id DESC",
    "UPDATED_DESC": "v.updated DESC, v.id DESC",
    "NAME_DESC": "v.name DESC, v.id DESC",
    "NAME_ASC": "v.name ASC, v.id DESC",
}


async def stream_version(tx: Tx) -> int:
    """The version of the variables stream: what the next variable command must expect."""
    return int((await tx.fetch(SQL_STREAM_VERSION, streams.VARIABLES))[0][0])


async def by_id(tx: Tx, variable_id: UUID) -> VariableView | None:
    rows = await tx.fetch(SQL_BY_ID, str(variable_id))
    return decode_variable(bytes(rows[0][0])) if rows else None


async def by_name(tx: Tx, name: str) -> VariableView | None:
    rows = await tx.fetch(SQL_BY_NAME, name)
    return decode_variable(bytes(rows[0][0])) if rows else None


async def get(store: EventStore, variable_id: UUID) -> VariableView | None:
    async with store.reading() as tx:
        return await by_id(tx, variable_id)


async def get_by_name(store: EventStore, name: str) -> VariableView | None:
    async with store.reading() as tx:
        return await by_name(tx, name)


def _where(tx: Tx, flt: VariableFilter | None) -> Cond:
    """Prefect's VariableFilter over the variables row aliased ``v``."""
    if flt is None:
        return combine([])
    conds: list[Cond] = []
    if flt.id is not None:
        conds.append(combine([] if flt.id.any_ is None else [is_in(tx, "v.id", flt.id.any_)]))
    if flt.name is not None:
        part = []
        if flt.name.any_ is not None:
            part.append(is_in(tx, "v.name", flt.name.any_))
        if flt.name.like_:
            part.append(like("v.name", flt.name.like_))
        conds.append(combine(part))
    if flt.tags is not None:
        part = []
        if flt.tags.all_:
            # A variable's tags are stored once each, so counting the matches checks all_.
            wanted = sorted(set(flt.tags.all_))
            sql = (
                "(SELECT COUNT(DISTINCT t.tag) FROM variable_tags t "
                f"WHERE t.variable_id = v.id AND {in_list(tx, 't.tag')}) = ?"
            )
            part.append((sql, (list_param(tx, wanted), len(wanted))))
        if flt.tags.is_null_ is not None:
            exists = "EXISTS (SELECT 1 FROM variable_tags t WHERE t.variable_id = v.id)"
            part.append((f"NOT {exists}" if flt.tags.is_null_ else exists, ()))
        conds.append(combine(part, flt.tags.operator))
    return combine(conds, flt.operator)


async def filter(  # noqa: A001 - Prefect's verb
    store: EventStore, flt: VariableFilter | None, *, sort: str, limit: int, offset: int
) -> list[VariableView]:
    async with store.reading() as tx:
        sql, params = _where(tx, flt)
        # ORDER is this module's constant, chosen by a validated sort name; the rest are placeholders.
        rows = await tx.fetch(
            f"SELECT v.view FROM variables v WHERE {sql} ORDER BY {ORDER[sort]} LIMIT ? OFFSET ?",  # noqa: S608
            *params, limit, offset,
        )
    return [decode_variable(bytes(row[0])) for row in rows]


async def count(store: EventStore, flt: VariableFilter | None) -> int:
    async with store.reading() as tx:
        sql, params = _where(tx, flt)
        rows = await tx.fetch(f"SELECT COUNT(*) FROM variables v WHERE {sql}", *params)  # noqa: S608
    return int(rows[0][0])
