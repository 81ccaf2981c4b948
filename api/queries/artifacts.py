"""Reading artifacts and the latest artifact of each key; filters are evaluated in SQL.

The latest-per-key rows (``artifact_collections``, aliased ``c``) hold only their own id and
creation time; everything else is their latest artifact's (``artifacts``, aliased ``a``), so a
collection's type, runs and update time are filtered and sorted on the joined artifact row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from runlog.eventstore import EventStore
from runlog.projections.artifacts import ArtifactView, decode_artifact, get
from runlog.projections.tables import from_us

from . import run_filters
from .filtering import Criteria, Listing, Related, Resource, any_in, exists, like, not_any_in, views_of


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


async def latest(store: EventStore, key: str) -> Collection | None:
    async with store.reading() as tx:
        rows = await tx.fetch(SQL_LATEST, key)
    return _collection(rows[0]) if rows else None


# -- filters, declared (see filtering.py) ----------------------------------------------------------

IDS = {"any_": any_in}
TYPES = {"any_": any_in, "not_any_": not_any_in}


def _keys(column: str) -> Criteria:
    return Criteria(column, {"any_": any_in, "like_": like, "exists_": exists})


# Prefect's ArtifactFilter over ``a``, and its ArtifactCollectionFilter over ``c`` joined to ``a``.
ARTIFACT = Resource({
    "id": Criteria("a.id", IDS),
    "key": _keys("a.key"),
    "flow_run_id": Criteria("a.flow_run_id", IDS),
    "task_run_id": Criteria("a.task_run_id", IDS),
    "type": Criteria("a.type", TYPES),
})
COLLECTION = Resource({
    "latest_id": Criteria("c.latest_id", IDS),
    "key": _keys("c.key"),
    "flow_run_id": Criteria("a.flow_run_id", IDS),
    "task_run_id": Criteria("a.task_run_id", IDS),
    "type": Criteria("a.type", TYPES),
})

# Prefect's _apply_artifact_filters: the artifact filter, then EXISTS on the artifact's runs.
_RUNS = {
    ("flow_runs", "flows", "deployments"): Related(
        "EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = a.flow_run_id AND {where})", run_filters.FLOW_RUN_SIDE,
    ),
    "task_runs": Related(
        "EXISTS (SELECT 1 FROM task_runs tr WHERE tr.id = a.task_run_id AND {where})", run_filters.TASK_RUN,
    ),
}
ARTIFACT_QUERY = Resource({"artifacts": ARTIFACT, **_RUNS})
COLLECTION_QUERY = Resource({"artifacts": COLLECTION, **_RUNS})


ARTIFACTS = Listing("artifacts a", "a.view", ARTIFACT_QUERY, ARTIFACT_ORDER, views_of(decode_artifact))
COLLECTIONS = Listing(_COLLECTION_FROM, _COLLECTION_COLUMNS, COLLECTION_QUERY, COLLECTION_ORDER, _collection)


__all__ = ["ARTIFACTS", "COLLECTIONS", "Collection", "get", "latest"]
