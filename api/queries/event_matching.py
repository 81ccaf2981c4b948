"""Prefect's EventFilter applied to one event in memory: what the /events/out websocket streams live.

The same criteria as api/queries/events.py evaluates in SQL, with Prefect's in-memory label
matching (fnmatch patterns, a leading ``!`` negates).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from runlog.projections.prefect_events import PrefectEvent

from ..schemas import event_filters as schema


def _pattern(expected: str, value: str | None) -> bool:
    if value is None:
        return False
    positive = not expected.startswith("!")
    found = fnmatch.fnmatchcase(value, expected.removeprefix("!"))
    return found if positive else not found


def labels_match(labels: schema.Labels, resource: Mapping[str, str]) -> bool:
    for label, wanted in labels.items():
        values = [wanted] if isinstance(wanted, str) else wanted
        if not any(_pattern(v, resource.get(label)) for v in values):
            return False
    return True


def _resource_matches(flt: schema.EventAnyResourceFilter | schema.EventResourceFilter, resource: Mapping[str, str]) -> bool:
    rid = resource.get("prefect.resource.id", "")
    if flt.id and rid not in flt.id:
        return False
    if flt.id_prefix and not any(rid.startswith(p) for p in flt.id_prefix):
        return False
    return not flt.labels or labels_match(flt.labels, resource)


def _related_matches(flt: schema.EventRelatedFilter, resource: Mapping[str, str]) -> bool:
    rid, role = resource.get("prefect.resource.id", ""), resource.get("prefect.resource.role", "")
    if flt.id and rid not in flt.id:
        return False
    if flt.role and role not in flt.role:
        return False
    if flt.resources_in_roles and (rid, role) not in {tuple(pair) for pair in flt.resources_in_roles}:
        return False
    return not flt.labels or labels_match(flt.labels, resource)


def _as_list(value):  # type: ignore[no-untyped-def]
    return [] if value is None else value if isinstance(value, list) else [value]


def includes(flt: schema.EventFilter, event: PrefectEvent) -> bool:
    """Whether ``event`` meets every criterion of ``flt`` (occurred bounds included when set)."""
    occurred = flt.occurred
    if (occurred.since and event.occurred < occurred.since) or (occurred.until and event.occurred > occurred.until):
        return False
    if (name := flt.event) is not None:
        if name.prefix and not any(event.event.startswith(p) for p in name.prefix):
            return False
        if name.exclude_prefix and any(event.event.startswith(p) for p in name.exclude_prefix):
            return False
        if name.name and event.event not in name.name:
            return False
        if name.exclude_name and event.event in name.exclude_name:
            return False
    if flt.resource is not None and not _resource_matches(flt.resource, event.resource):
        return False
    for related in _as_list(flt.related):
        if not (related.id or related.role or related.resources_in_roles or related.labels):
            continue
        if not any(_related_matches(related, r) for r in event.related):
            return False
    for any_resource in _as_list(flt.any_resource):
        if not any(_resource_matches(any_resource, r) for r in [event.resource, *event.related]):
            return False
    return not flt.id.id or event.id in flt.id.id


__all__ = ["includes", "labels_match"]
