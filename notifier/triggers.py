"""Evaluating Prefect's event triggers, purely: does an event concern a trigger (``matches``),
and when does a trigger fire (``observe`` for each event, ``tick`` as time passes).

Matching follows Prefect's: event names and label values are glob patterns (``*`` anywhere,
so ``prefect.flow-run.*`` is a trailing wildcard); a pattern starting with ``!`` matches what
it would not; every label of a resource specification must match (a list of patterns is OR);
an empty specification matches every resource; ``match_related`` (a specification or a list of
them, all of which must hold) matches when some related resource satisfies it.

Firing follows Prefect's buckets, one per ``for_each`` key (the values of those labels on the
event): a bucket counts matching events over ``within`` seconds. A reactive trigger fires as
soon as ``threshold`` events are counted, then ignores the rest of its window; a proactive one
fires when its window ends with fewer than ``threshold`` events. With ``after``, a bucket opens
only when an ``after`` event arrives (and an event both ``after`` and ``expect`` does not count
towards the window it opens). State is plain data (``Buckets``) and "now" is an argument, so
the notifier keeps the state where it likes and tests need no clock.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from runlog.schema.automations import EventTrigger, ReceivedEvent, ResourceSpec

BucketKey = tuple[str, ...]


def label_matches(pattern: str, value: str | None) -> bool:
    """Prefect's ``matches``: a glob, negated by a leading ``!``; a missing label matches nothing."""
    if value is None:
        return False
    if pattern.startswith("!"):
        return not fnmatch.fnmatchcase(value, pattern[1:])
    return fnmatch.fnmatchcase(value, pattern)


def _patterns(expected: str | list[str]) -> list[str]:
    return [expected] if isinstance(expected, str) else list(expected)


def resource_matches(spec: ResourceSpec, resource: Mapping[str, str]) -> bool:
    return all(
        any(label_matches(p, resource.get(label)) for p in _patterns(expected)) for label, expected in spec.items()
    )


def includes(spec: ResourceSpec, candidates: Iterable[Mapping[str, str]]) -> bool:
    """Some candidate matches ``spec``; an empty spec matches even when there are none."""
    return not spec or any(resource_matches(spec, c) for c in candidates)


def _any_name(patterns: Sequence[str], name: str) -> bool:
    return any(label_matches(p, name) for p in patterns)


def expects(trigger: EventTrigger, name: str) -> bool:
    """The event counts towards the trigger (an empty ``expect`` counts every event)."""
    return not trigger.expect or _any_name(trigger.expect, name)


def starts_after(trigger: EventTrigger, name: str) -> bool:
    return bool(trigger.after) and _any_name(trigger.after, name)


def matches(trigger: EventTrigger, event: ReceivedEvent) -> bool:
    """The event concerns the trigger: its name is expected or an ``after`` event, its resource
    matches ``match`` and its related resources every ``match_related``."""
    if not (expects(trigger, event.event) or starts_after(trigger, event.event)):
        return False
    if not includes(trigger.match, [event.resource]):
        return False
    related = trigger.match_related if isinstance(trigger.match_related, list) else [trigger.match_related]
    return all(includes(spec, event.related) for spec in related)


def find_label(event: ReceivedEvent, label: str) -> str | None:
    """Prefect's find_resource_label: ``related:<role>:<label>`` reads the first related
    resource in that role; any other label reads the event's resource."""
    directive, _, related_label = label.rpartition(":")
    kind, _, role = directive.partition(":")
    if kind == "related":
        for related in event.related:
            if related.get("prefect.resource.role") == role:
                return related.get(related_label)
    return event.resource.get(label)


def bucket_key(trigger: EventTrigger, event: ReceivedEvent) -> BucketKey:
    return tuple(find_label(event, label) or "" for label in sorted(trigger.for_each))


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """One window of a trigger for one for_each key."""

    start: datetime
    end: datetime
    count: int = 0
    last_event: ReceivedEvent | None = None


class Firing(msgspec.Struct, frozen=True, kw_only=True):
    """The trigger fired: for these for_each labels, with this event (for a proactive trigger,
    the last event of the window, possibly None), having counted ``count`` events."""

    labels: dict[str, str]
    event: ReceivedEvent | None
    count: int
    at: datetime
    window_end: datetime | None = None
    """The end of the window that fired: with ``labels``, what names a firing that has no event
    (``at`` is when a round happened to notice, which a restarted matcher would not repeat)."""


Buckets = Mapping[BucketKey, Bucket]


def _within(trigger: EventTrigger) -> timedelta:
    return timedelta(seconds=trigger.within)


def _meets_threshold(trigger: EventTrigger, count: int) -> bool:
    if trigger.posture == "Reactive":
        return count >= trigger.threshold
    return count < trigger.threshold


def _immediate(trigger: EventTrigger) -> bool:
    return trigger.posture == "Reactive" and trigger.within == 0


def _evaluate(
    trigger: EventTrigger, key: BucketKey, bucket: Bucket, now: datetime, event: ReceivedEvent | None,
) -> tuple[Bucket | None, list[Firing]]:
    """Prefect's ``evaluate``: spend the event in the bucket, fire when due, open the next window."""
    pending = 1 if event is not None else 0
    if now < bucket.start:
        return bucket, []  # late, or the rest of a window a reactive trigger already fired in
    if pending and (_immediate(trigger) or bucket.start <= now < bucket.end):
        bucket = msgspec.structs.replace(bucket, count=bucket.count + 1, last_event=event)
        pending = 0
    ready = trigger.posture == "Reactive" or bucket.end <= now
    meets = _meets_threshold(trigger, bucket.count)
    firings: list[Firing] = []
    if ready and meets:
        labels = dict(zip(sorted(trigger.for_each), key))
        firings.append(Firing(labels=labels, event=event or bucket.last_event, count=bucket.count, at=now,
                              window_end=bucket.end))
    elif now < bucket.end:
        if (event is not None and trigger.posture == "Proactive" and starts_after(trigger, event.event)
                and expects(trigger, event.event)):
            # One event both ends the wait and starts the next (heartbeats): a new window.
            return Bucket(start=event.occurred, end=event.occurred + _within(trigger), last_event=event), []
        return bucket, []
    if trigger.after:
        return None, firings  # the next window opens with the next ``after`` event
    if trigger.within == 0:
        return None, firings
    start = max(bucket.end, now)
    following = Bucket(start=start, end=start + _within(trigger))
    if trigger.posture == "Reactive" and pending:
        # The event came after the window it was meant for: it may fill the next one.
        following, more = _evaluate(trigger, key, following, now, event)
        return following, firings + more
    return msgspec.structs.replace(following, count=pending), firings


def observe(
    trigger: EventTrigger, buckets: Buckets, event: ReceivedEvent, now: datetime | None = None,
) -> tuple[dict[BucketKey, Bucket], list[Firing]]:
    """The buckets after ``event``, and the firings it caused. ``now`` defaults to the event's
    ``occurred`` (Prefect evaluates at the event's time)."""
    state = dict(buckets)
    if not matches(trigger, event):
        return state, []
    now = event.occurred if now is None else now
    key = bucket_key(trigger, event)
    bucket = state.get(key)
    if starts_after(trigger, event.event) and bucket is None:
        # An event both ``after`` and ``expect`` opens the window without counting in it.
        initial = -1 if expects(trigger, event.event) else 0
        bucket = Bucket(start=event.occurred, end=event.occurred + _within(trigger), count=initial, last_event=event)
    if bucket is None and not trigger.after and expects(trigger, event.event):
        bucket = Bucket(start=event.occurred, end=event.occurred + _within(trigger), last_event=event)
    if bucket is None or not expects(trigger, event.event):
        if bucket is not None:
            state[key] = bucket
        return state, []
    updated, firings = _evaluate(trigger, key, bucket, now, event)
    if updated is None:
        state.pop(key, None)
    else:
        state[key] = updated
    return state, firings


def tick(trigger: EventTrigger, buckets: Buckets, now: datetime) -> tuple[dict[BucketKey, Bucket], list[Firing]]:
    """The buckets once time reaches ``now`` with no event: proactive windows that ended short
    of their threshold fire and open the next; expired reactive windows are dropped (only an
    event can fire them, and the next one opens a window of its own), so buckets do not pile up."""
    state: dict[BucketKey, Bucket] = {}
    firings: list[Firing] = []
    for key, bucket in buckets.items():
        if now < bucket.end:
            state[key] = bucket
            continue
        if trigger.posture == "Reactive":
            continue  # fires only on events; the next event opens a fresh window
        updated, fired = _evaluate(trigger, key, bucket, now, None)
        firings += fired
        if updated is not None:
            state[key] = updated
    return state, firings


__all__ = [
    "Bucket", "BucketKey", "Buckets", "Firing", "bucket_key", "expects", "find_label", "includes", "label_matches",
    "matches", "observe", "resource_matches", "starts_after", "tick",
]
