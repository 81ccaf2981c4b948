"""A bounded cache of committed run views, keyed by run id and checked by stream version.

The hot path (set_state) reads a run's view to decide, and the runs projection reads it again
inside the append's transaction to fold the new event into it. Both reads can be skipped:

* A view is deterministic in its stream version: the view of run R at version v is the same
  in every process. The projection uses a cached view only when its version is exactly the
  new event's version minus one, so a cached view is never wrong for it, however old.
* Deciding against a stale cached view is caught by optimistic concurrency: the append
  expects the cached version, fails with ConcurrencyError, and the command drops the entry
  and decides again against the database.

Only views known to be committed go in (the commands put them after their append returns),
so a transaction that rolls back can never leave its views here. Reads that answer clients
(GET /flow_runs/{id}) always go to the database.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

DEFAULT_SIZE = 10_000


class ViewCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._views: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str) -> Any | None:
        view = self._views.get(key)
        if view is not None:
            self._views.move_to_end(key)
        return view

    def at_version(self, key: str, version: int) -> Any | None:
        """The cached view if it is exactly at ``version``, else None."""
        view = self._views.get(key)
        return view if view is not None and view.version == version else None

    def put(self, key: str, view: Any) -> None:
        """Remember a committed view (None forgets the key)."""
        if view is None:
            self._views.pop(key, None)
            return
        current = self._views.get(key)
        if current is not None and current.version > view.version:
            return  # never go back to an older version
        self._views[key] = view
        self._views.move_to_end(key)
        while len(self._views) > self._size:
            self._views.popitem(last=False)

    def drop(self, key: str) -> None:
        self._views.pop(key, None)

    def clear(self) -> None:
        self._views.clear()

    def __len__(self) -> int:
        return len(self._views)
