"""Reading artifacts and the latest artifact of each key; filters are evaluated in SQL.

The latest-per-key rows (``artifact_collections``, aliased ``c``) hold only their own id and
creation time; everything else is their latest artifact's (``artifacts``, aliased ``a``), so a
collection's type, runs and update time are filtered and sorted on the joined artifact row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore, Tx
from runlog.projections.artifacts import ArtifactView, decode_artifact
from runlog.projections.tables import from_us

from ..schemas import artifacts as s
from . import run_filters
from .conditions import Cond, combine, is_in, is_null, like, negate

DEFAULT_LIMIT = 200
"""Prefect's server.api.default_limit: the default and the largest accepted page size."""

SQL_GET = "SELECT view FROM artifacts WHERE id = ?"
_COLLECTION_COLUMNS = "c.id, c.created, a.view"
_COLLECTION_FROM = "artifact_collections c JOIN artifacts a ON a.id = c.latest_id"
SQL_LATEST = f"SELECT {_COLLECTION_COLUMNS} FROM {_COLLECTION_FROM} WHERE c.key = ?"  # noqa: S608 - constants

# Ties fall back to the log position (newest first) or the id, so pages never overlap and the
# artifact the Prefect client takes as "the latest" (UPDATED_DESC, limit 1) is the newest one.
# NULL keys sort as PostgreSQL sorts them by default, spelled out so that SQLite agrees.
ARTIFACT_ORDER = {
    "CREATED_DESC": "a.created DESC, a.position DESC",
    "UPDATED_DESC": "a.updated DESC, a.position DESC",
    "ID_DESC": "a.id DESC",
    "KEY_DESC": "a.key DESC NULLS FIRST, a.position DESC",
    "KEY_ASC": "a.key ASC NULLS LAST, a.position DESC",
}
COLLECTION_ORDER = {
    "CREATED_DESC": "c.created DESC, c.id DESC",
    "UPDATED_DESC": "a.updated DESC, c.id DESC",
    "ID_DESC": "c.id DESC",
    "KEY_DESC": "c.key DESC",
    "KEY_ASC": "c.key ASC",
}


class Collection:
    """The latest artifact of a key, with the collection's own id and creation time."""

    __slots__ = ("created", "id", "latest")

    def __init__(self, collection_id: UUID, created: Any, latest: ArtifactView) -> None:
        self.id = collection_id
        self.created = created
        self.latest = latest


def _collection(row: Sequence[Any]) -> Collection:
    return Collection(UUID(row[0]), from_us(row[1]), decode_artifact(bytes(row[2])))


async def get(store: EventStore, artifact_id: UUID) -> ArtifactView | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_GET, str(artifact_id))
    return decode_artifact(bytes(rows[0][0])) if rows else None


async def latest(store: EventStore, key: str) -> Collection | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_LATEST, key)
    return _collection(rows[0]) if rows else None


def _key(tx: Tx, column: str, flt: s.ArtifactFilterKey) -> Cond:
    part = []
    if flt.any_ is not None:
        part.append(is_in(tx, column, flt.any_))
    if flt.like_:
        part.append(like(column, flt.like_))
    if flt.exists_ is not None:
        part.append(is_null(column, not flt.exists_))
    return combine(part)


def _type(tx: Tx, column: str, flt: s.ArtifactFilterType) -> Cond:
    part = []
    if flt.any_ is not None:
        part.append(is_in(tx, column, flt.any_))
    if flt.not_any_:
        part.append(negate(is_in(tx, column, flt.not_any_)))
    return combine(part)


def _ids(tx: Tx, column: str, flt: s.AnyIds) -> Cond:
    return combine([] if flt.any_ is None else [is_in(tx, column, flt.any_)])


def _artifact_conditions(tx: Tx, flt: s.ArtifactFilter | s.ArtifactCollectionFilter, *, collection: bool) -> Cond:
    """Prefect's ArtifactFilter over ``a``, or its ArtifactCollectionFilter over ``c`` joined to ``a``."""
    conds: list[Cond] = []
    if isinstance(flt, s.ArtifactFilter) and flt.id is not None:
        conds.append(_ids(tx, "a.id", flt.id))
    if isinstance(flt, s.ArtifactCollectionFilter) and flt.latest_id is not None:
        conds.append(_ids(tx, "c.latest_id", flt.latest_id))
    if flt.key is not None:
        conds.append(_key(tx, "c.key" if collection else "a.key", flt.key))
    if flt.flow_run_id is not None:
        conds.append(_ids(tx, "a.flow_run_id", flt.flow_run_id))
    if flt.task_run_id is not None:
        conds.append(_ids(tx, "a.task_run_id", flt.task_run_id))
    if flt.type is not None:
        conds.append(_type(tx, "a.type", flt.type))
    return combine(conds, flt.operator)


async def _where(tx: Tx, body: s.ArtifactCountRequest | s.ArtifactCollectionCountRequest) -> Cond:
    """Prefect's _apply_artifact_filters: the artifact filter, then EXISTS on the runs."""
    conds: list[Cond] = []
    if body.artifacts is not None:
        conds.append(_artifact_conditions(tx, body.artifacts, collection=isinstance(body, s.ArtifactCollectionCountRequest)))
    if body.flow_runs is not None or body.flows is not None or body.deployments is not None:
        conds.append(await run_filters.flow_run_exists(
            tx, "a.flow_run_id", flow_runs=body.flow_runs, flows=body.flows, deployments=body.deployments,
        ))
    if body.task_runs is not None:
        conds.append(run_filters.task_run_exists(tx, "a.task_run_id", body.task_runs))
    return combine(conds)


async def filter_artifacts(
    store: EventStore, body: s.ArtifactCountRequest, *, sort: str, limit: int, offset: int
) -> list[ArtifactView]:
    async with store.reading() as tx:
        sql, params = await _where(tx, body)
        # ARTIFACT_ORDER is this module's constant chosen by a validated sort; the rest are placeholders.
        rows = await tx.fetch(
            f"SELECT a.view FROM artifacts a WHERE {sql} ORDER BY {ARTIFACT_ORDER[sort]} LIMIT ? OFFSET ?",  # noqa: S608
            *params, limit, offset,
        )
    return [decode_artifact(bytes(row[0])) for row in rows]


async def count_artifacts(store: EventStore, body: s.ArtifactCountRequest) -> int:
    async with store.reading() as tx:
        sql, params = await _where(tx, body)
        rows = await tx.fetch(f"SELECT COUNT(*) FROM artifacts a WHERE {sql}", *params)  # noqa: S608
    return int(rows[0][0])


async def filter_latest(
    store: EventStore, body: s.ArtifactCollectionCountRequest, *, sort: str, limit: int, offset: int
) -> list[Collection]:
    async with store.reading() as tx:
        sql, params = await _where(tx, body)
        rows = await tx.fetch(
            f"SELECT {_COLLECTION_COLUMNS} FROM {_COLLECTION_FROM} WHERE {sql} "  # noqa: S608
            f"ORDER BY {COLLECTION_ORDER[sort]} LIMIT ? OFFSET ?",
            *params, limit, offset,
        )
    return [_collection(row) for row in rows]


async def count_latest(store: EventStore, body: s.ArtifactCollectionCountRequest) -> int:
    async with store.reading() as tx:
        sql, params = await _where(tx, body)
        rows = await tx.fetch(f"SELECT COUNT(*) FROM {_COLLECTION_FROM} WHERE {sql}", *params)  # noqa: S608
    return int(rows[0][0])
