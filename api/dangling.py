"""Find dangling references in the read models: runs that point at something that does not exist.

The API refuses to create them (commands/integrity.py) and deletes cascade, but a database
written by an older runlog, or events appended around the API, may hold some. ``runlog
database check`` reports them; reads leave flow runs of unknown flows out of listings.
"""

from __future__ import annotations

from dataclasses import dataclass

from runlog.eventstore import open_store

# Each finds (run id, the id it points at) for one kind of reference; every statement reads
# the tables in one snapshot with the others (see find_dangling).
SQL_FLOW_RUNS_OF_UNKNOWN_FLOWS = (
    "SELECT fr.id, fr.flow_id FROM flow_runs fr "
    "WHERE NOT EXISTS (SELECT 1 FROM flows f WHERE f.id = fr.flow_id) ORDER BY fr.id"
)
SQL_TASK_RUNS_OF_UNKNOWN_FLOW_RUNS = (
    "SELECT tr.id, tr.flow_run_id FROM task_runs tr WHERE tr.flow_run_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM flow_runs fr WHERE fr.id = tr.flow_run_id) ORDER BY tr.id"
)
# A parent task run that was deleted is not counted: Prefect then sets the subflow run's
# parent_task_run_id to null, runlog keeps the id of the deleted task run (its stream exists).
SQL_FLOW_RUNS_OF_UNKNOWN_PARENT_TASK_RUNS = (
    "SELECT fr.id, fr.parent_task_run_id FROM flow_runs fr WHERE fr.parent_task_run_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM task_runs tr WHERE tr.id = fr.parent_task_run_id) "
    "AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = 'task-run-' || fr.parent_task_run_id) "
    "ORDER BY fr.id"
)

CHECKS = (
    ("flow runs of unknown flows", "flow_id", SQL_FLOW_RUNS_OF_UNKNOWN_FLOWS),
    ("task runs of unknown flow runs", "flow_run_id", SQL_TASK_RUNS_OF_UNKNOWN_FLOW_RUNS),
    ("subflow runs of unknown parent task runs", "parent_task_run_id", SQL_FLOW_RUNS_OF_UNKNOWN_PARENT_TASK_RUNS),
)


@dataclass(frozen=True)
class Dangling:
    """One kind of dangling reference and every (run id, missing id) pair of that kind."""

    kind: str
    field: str
    pairs: list[tuple[str, str]]


async def find_dangling(url: str) -> list[Dangling]:
    """Every kind of dangling reference in the database at ``url`` (empty lists when none)."""
    async with open_store(url, migrate=False) as store, store.reading() as tx:
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if tx.dialect == "postgres" else "BEGIN"
        await tx.execute(begin)
        try:
            found = []
            for kind, field, sql in CHECKS:
                rows = await tx.fetch(sql)
                found.append(Dangling(kind, field, [(str(row[0]), str(row[1])) for row in rows]))
        finally:
            await tx.execute("ROLLBACK")
    return found
