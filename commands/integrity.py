"""References a write must find, and the one error a write that breaks them raises.

Prefect's database refuses a flow run of an unknown flow, a subflow run of an unknown parent
task run and a task run of an unknown flow run (foreign keys) and answers 409 "Data integrity
conflict". runlog checks the same references before it appends, with one indexed read that the
create commands also use for their idempotency lookup, and answers 409 naming the reference.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from .errors import Conflict

PREFECT_CONFLICT = "Data integrity conflict"
"""How Prefect's 409 for a violated constraint starts; our details start the same way."""


class IntegrityConflict(Conflict):
    """A write would store a reference to something that does not exist (HTTP 409)."""


def missing(field: str, kind: str, value: UUID) -> IntegrityConflict:
    """The conflict for ``field`` naming a ``kind`` (flow, flow run, task run) that does not exist."""
    return IntegrityConflict(f"{PREFECT_CONFLICT}: {field} {value} names no {kind} that exists.")


def require(found: bool, field: str, kind: str, value: UUID | None) -> None:
    """Raise the conflict for ``field`` unless the ``kind`` it names was ``found``."""
    if not found:
        assert value is not None  # a reference that is not set is never missing
        raise missing(field, kind, value)


KNOWN_FLOW_TTL_SECONDS = 30.0
"""How long this process trusts that a flow it saw still exists, without reading it again."""


class KnownIds:
    """Ids this process saw exist within the last ``ttl`` seconds, at most ``size`` of them.

    Checking that a new run's flow exists cost a quarter of the server's throughput on
    PostgreSQL (one more read per run created). Clients create many runs of few flows, so the
    check reads a flow once per ``ttl``. A flow deleted by this process is forgotten at once;
    one deleted by another server process may still be trusted here for up to ``ttl`` seconds,
    the same kind of window the read-then-append check always had, only longer: a run created
    in it is kept out of listings and reported by ``runlog database check``.
    """

    def __init__(
        self, ttl: float = KNOWN_FLOW_TTL_SECONDS, size: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._monotonic = monotonic
        self._seen: OrderedDict[UUID, float] = OrderedDict()

    def __contains__(self, item: UUID) -> bool:
        seen = self._seen.get(item)
        if seen is None:
            return False
        if self._monotonic() - seen > self._ttl:
            del self._seen[item]
            return False
        return True

    def add(self, item: UUID) -> None:
        self._seen.pop(item, None)
        self._seen[item] = self._monotonic()
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    def discard(self, item: UUID) -> None:
        self._seen.pop(item, None)
