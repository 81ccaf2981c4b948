"""References a write must find, and the one error a write that breaks them raises.

Prefect's database refuses a flow run of an unknown flow, a subflow run of an unknown parent
task run and a task run of an unknown flow run (foreign keys) and answers 409 "Data integrity
conflict". runlog checks the same references before it appends, with one indexed read that the
create commands also use for their idempotency lookup, and answers 409 naming the reference.
"""

from __future__ import annotations

from uuid import UUID

from runlog.commands.errors import Conflict

PREFECT_CONFLICT = "Data integrity conflict"
"""How Prefect's 409 for a violated constraint starts; our details start the same way."""


class IntegrityConflict(Conflict):
    """A write would store a reference to something that does not exist (HTTP 409)."""


def missing(field: str, kind: str, value: UUID) -> IntegrityConflict:
    """The conflict for ``field`` naming a ``kind`` (flow, flow run, task run) that does not exist."""
    return IntegrityConflict(f"{PREFECT_CONFLICT}: {field} {value} names no {kind} that exists.")
