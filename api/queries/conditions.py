"""SQL conditions for the variable and artifact filters: fixed fragments over our own columns,
with every value the client sent travelling as a bound parameter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runlog.eventstore import Tx
from runlog.projections.tables import in_list, list_param

from .run_filters import FALSE, TRUE, Cond

__all__ = ["FALSE", "TRUE", "Cond", "combine", "is_in", "is_null", "like", "negate"]


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


def is_in(tx: Tx, column: str, values: Sequence[Any]) -> Cond:
    """``column`` (one of our own column names) is one of ``values``."""
    return in_list(tx, column), (list_param(tx, [str(v) for v in values]),)


def is_null(column: str, null: bool) -> Cond:
    return (f"{column} IS NULL" if null else f"{column} IS NOT NULL"), ()


def like(column: str, pattern: str) -> Cond:
    """Prefect's ``like_`` for variable names and artifact keys: ILIKE '%pattern%', where the
    pattern's own ``%`` and ``_`` are wildcards, as Prefect documents for these filters."""
    return f"lower({column}) LIKE lower(CAST(? AS TEXT))", ("%" + pattern + "%",)
