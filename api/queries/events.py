"""Reading the event feed (projections/event_feed.py): Prefect's EventFilter in SQL, pages, counts.

Every criterion of Prefect 3.8's EventFilter becomes a condition on the ``event_feed`` row
``e``; the related and any_resource criteria become EXISTS over its related resources' rows in
``event_feed_resources``, as Prefect's own queries go through its event_resources table (the
primary resource is the event's own row's, any_resource's ORed with it). Labels other than a
resource's id and role are read from the event's JSON.
Label patterns are Prefect's: ``*`` and ``?`` wildcards, a leading ``!`` negates.
Every value the client sent travels as a bound parameter.
"""

from __future__ import annotations

import base64
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from runlog.eventstore import EventStore, Tx
from runlog.projections.event_feed import decode_event
from runlog.projections.prefect_events import PrefectEvent
from runlog.projections.tables import from_us, us

from ..schemas import event_filters as schema
from .filtering import FALSE, Cond, any_in, combine, negate

LOOKBACK = timedelta(days=180)
"""Prefect's default ``occurred.since``: the start of the day this long ago."""
PIVOT = datetime(2024, 4, 1, tzinfo=UTC)
"""Prefect's origin of time buckets for count-by (the Monday before its first events)."""
MAX_BUCKETS = 1000

_LIKE = str.maketrans({"*": "%", "?": "_", "\\": "\\\\", "%": "\\%", "_": "\\_"})


class InvalidToken(ValueError):
    """A next-page token that is not one this server made (Prefect answers 403)."""


class InvalidCount(ValueError):
    """count-by parameters Prefect refuses (422), with its message."""


def in_utc(flt: schema.EventFilter) -> schema.EventFilter:
    """The filter with its occurred bounds aware (a bound sent without an offset is UTC)."""
    since, until = flt.occurred.since, flt.occurred.until
    occurred = schema.EventOccurredFilter(
        since=since if since is None or since.tzinfo else since.replace(tzinfo=UTC),
        until=until if until is None or until.tzinfo else until.replace(tzinfo=UTC),
    )
    return msgspec.structs.replace(flt, occurred=occurred)


def with_defaults(flt: schema.EventFilter | None, now: datetime) -> schema.EventFilter:
    """The filter with Prefect's occurred defaults filled in from ``now``."""
    flt = in_utc(flt or schema.EventFilter())
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    occurred = schema.EventOccurredFilter(since=flt.occurred.since or day - LOOKBACK, until=flt.occurred.until or now)
    return msgspec.structs.replace(flt, occurred=occurred)


# -- conditions --------------------------------------------------------------------------------


def _like(expr: str, pattern: str) -> Cond:
    cond = (f"{expr} LIKE ? ESCAPE '\\'", (pattern.removeprefix("!").translate(_LIKE),))
    return negate(cond) if pattern.startswith("!") else cond


def _literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefixes(expr: str, prefixes: Sequence[str]) -> Cond:
    """``expr`` starts with one of the prefixes, taken literally."""
    return combine([(f"{expr} LIKE ? ESCAPE '\\'", (_literal(p) + "%",)) for p in prefixes], "or_")


@dataclass(frozen=True)
class _Resource:
    """Where a condition reads one resource of an event: the primary (columns of its
    ``event_feed`` row) or a related one (a row ``r`` of ``event_feed_resources``). Its labels
    other than id and role are read from the JSON (``body``) of the event's row named ``event``
    (projections/event_feed.py)."""

    id: str
    role: str
    """Its role as the filters see it: the primary's is ''."""
    related: bool
    event: str = "e"

    def label(self, tx: Tx, label: str) -> Cond:
        body = f"{self.event}.body"
        if tx.dialect == "postgres":
            at = "-> 'related' -> CAST(r.ordinal - 1 AS integer)" if self.related else "-> 'resource'"
            return f"({body}::json {at} ->> CAST(? AS TEXT))", (label,)
        key = '."' + label.replace('"', '') + '"'
        if self.related:
            return f"json_extract({body}, '$.related[' || (r.ordinal - 1) || ']' || ?)", (key,)
        return f"json_extract({body}, ?)", ("$.resource" + key,)


PRIMARY = _Resource("e.resource_id", "''", related=False)
RELATED = _Resource("r.resource_id", "r.role", related=True, event="x")


def _labels(tx: Tx, labels: schema.Labels, at: _Resource, *, roles: bool) -> list[Cond]:
    """The conditions of a labels filter on one resource. With ``roles``, the role label is the
    resource's role as the filters see it (the primary's is ''), else the label as sent."""
    conds: list[Cond] = []
    for label, wanted in labels.items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        if not values:
            conds.append(FALSE)  # an empty list of values matches nothing, as in Prefect
        elif label == "prefect.resource.id":
            conds.append(combine([_like(at.id, v) for v in values], "or_"))
        elif label == "prefect.resource.role" and roles:
            conds.append(any_in(tx, at.role, values))  # type: ignore[arg-type]
        else:
            expr, params = at.label(tx, label)
            options = [_like(expr, v) for v in values]
            conds.append(combine([(sql, params + p) for sql, p in options], "or_"))
    return conds


_NOT_VERSION_1_PRIMARY = "r.ordinal > 0"
"""A row of ordinal 0 is the primary resource's row the feed's version 1 wrote (its rebuild
deletes them): the primary is matched on the event's own row."""


def _related_ids(conds: list[Cond], occurred: tuple[int, int], *, labels: bool) -> Cond:
    """The ids of the events some related resource of which meets every condition (on ``r``,
    and with ``labels`` on its event's row ``x``, whose JSON holds its labels)."""
    events = " JOIN event_feed x ON x.id = r.event_id" if labels else ""
    where = combine([(f"r.occurred >= ? AND r.occurred <= ? AND {_NOT_VERSION_1_PRIMARY}", occurred), *conds])
    return f"SELECT r.event_id FROM event_feed_resources r{events} WHERE {where[0]}", where[1]


def _related(conds: list[Cond], occurred: tuple[int, int], *, labels: bool) -> Cond:
    """Some related resource of the event ``e`` meets every condition.

    Written as ``e.id IN`` a set found through the resources' index, not as an EXISTS
    correlated with ``e``: a label is read from the JSON of the resource's event, and a
    condition naming ``e`` there would make it a join filter PostgreSQL may test for every
    pair of rows (minutes at 60,000 events, where the set takes a second)."""
    sql, params = _related_ids(conds, occurred, labels=labels)
    return f"e.id IN ({sql})", params


def _any_resource(tx: Tx, flt: schema.EventAnyResourceFilter, occurred: tuple[int, int]) -> Cond | None:
    """The primary resource or some related one meets every condition of ``flt``.

    Written as ``e.id IN`` the ids of both sets, each found through its own index (a related
    resource's by ``event_feed_resources_resource``, a primary one's by ``event_feed_resource``):
    an OR of a condition on ``e`` and an EXISTS would have the planner read every event of the
    time range and test each."""
    def conds(at: _Resource) -> list[Cond]:
        inner: list[Cond] = []
        if flt.id:
            inner.append(any_in(tx, at.id, flt.id))  # type: ignore[arg-type]
        if flt.id_prefix:
            inner.append(_prefixes(at.id, flt.id_prefix))
        if flt.labels:
            inner.extend(_labels(tx, flt.labels, at, roles=True))
        return inner

    primary = conds(_Resource("p.resource_id", "''", related=False, event="p"))
    if not primary:
        return None
    related = _related_ids(conds(RELATED), occurred, labels=bool(flt.labels))
    in_primary = combine([("p.occurred >= ? AND p.occurred <= ?", occurred), *primary])
    return (
        f"e.id IN ({related[0]} UNION ALL SELECT p.id FROM event_feed p WHERE {in_primary[0]})",
        related[1] + in_primary[1],
    )


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def where(tx: Tx, flt: schema.EventFilter) -> Cond:
    """The condition on ``event_feed e`` for a filter whose occurred bounds are set."""
    occurred = (us(flt.occurred.since), us(flt.occurred.until))
    conds: list[Cond] = [("e.occurred >= ? AND e.occurred <= ?", occurred)]
    if (name := flt.event) is not None:
        if name.prefix:
            conds.append(_prefixes("e.event", name.prefix))
        conds.extend(negate(_prefixes("e.event", [p])) for p in name.exclude_prefix or ())
        if name.name:
            conds.append(any_in(tx, "e.event", name.name))  # type: ignore[arg-type]
        if name.exclude_name:
            conds.append(negate(any_in(tx, "e.event", name.exclude_name)))  # type: ignore[arg-type]
    if (resource := flt.resource) is not None:
        if resource.id:
            conds.append(any_in(tx, "e.resource_id", resource.id))  # type: ignore[arg-type]
        if resource.id_prefix:
            conds.append(_prefixes("e.resource_id", resource.id_prefix))
        if resource.labels:
            conds.extend(_labels(tx, resource.labels, PRIMARY, roles=False))
    for related in _as_list(flt.related):
        inner: list[Cond] = []
        if related.id:
            inner.append(any_in(tx, "r.resource_id", related.id))  # type: ignore[arg-type]
        if related.role:
            inner.append(any_in(tx, "r.role", related.role))  # type: ignore[arg-type]
        if related.resources_in_roles:
            inner.append(combine([("(r.resource_id = ? AND r.role = ?)", (rid, role))
                                  for rid, role in related.resources_in_roles], "or_"))
        if related.labels:
            inner.extend(_labels(tx, related.labels, RELATED, roles=True))
        if inner:
            if not related.role:
                inner.append(("r.role <> ''", ()))  # as Prefect's: a related resource without a role is none
            conds.append(_related(inner, occurred, labels=bool(related.labels)))
    for any_resource in _as_list(flt.any_resource):
        if (cond := _any_resource(tx, any_resource, occurred)) is not None:
            conds.append(cond)
    if flt.id.id:
        conds.append(any_in(tx, "e.id", [str(i) for i in flt.id.id]))  # type: ignore[arg-type]
    if flt.text is not None:
        conds.extend(_text(flt.text.query))
    return combine(conds)


def _text(query: str) -> list[Cond]:
    """Prefect's text search: any plain term, no ``-term``, every ``+term`` (case-insensitive)."""
    try:
        terms = shlex.split(query)
    except ValueError:
        terms = query.split()
    def has(term: str) -> Cond:
        return "lower(e.body) LIKE ? ESCAPE '\\'", ("%" + _literal(term.lower()) + "%",)

    include = [t for t in terms if not t.startswith(("-", "+")) and t]
    conds = [combine([has(t) for t in include], "or_")] if include else []
    conds += [negate(has(t[1:])) for t in terms if t.startswith("-") and len(t) > 1]
    conds += [has(t[1:]) for t in terms if t.startswith("+") and len(t) > 1]
    return conds


# -- reads -------------------------------------------------------------------------------------


def _source(tx: Tx, flt: schema.EventFilter) -> Cond:
    """The rows the filter selects: every match, or the first of each resource when distinct."""
    sql, params = where(tx, flt)
    if flt.resource is None or not flt.resource.distinct:
        return f"event_feed e WHERE {sql}", params
    order = "DESC" if flt.order == "DESC" else "ASC"
    return (
        "(SELECT e.*, row_number() OVER (PARTITION BY e.resource_id ORDER BY e.occurred "
        f"{order}, e.position {order}) AS n FROM event_feed e WHERE {sql}) e WHERE e.n = 1", params,
    )


async def read_page(tx: Tx, flt: schema.EventFilter, *, limit: int, offset: int) -> tuple[list[PrefectEvent], int]:
    """A page of matching events in the filter's order, and how many match in all."""
    source, params = _source(tx, flt)
    order = "DESC" if flt.order == "DESC" else "ASC"
    (total,) = (await tx.fetch(f"SELECT count(*) FROM {source}", *params))[0]
    rows = await tx.fetch(
        f"SELECT e.body FROM {source} ORDER BY e.occurred {order}, e.position {order}, e.id {order} LIMIT ? OFFSET ?",
        *params, limit, offset,
    )
    return [decode_event(row[0]) for row in rows], int(total)


@dataclass(frozen=True)
class Page:
    events: list[PrefectEvent]
    total: int
    token: str | None


def page_token(flt: schema.EventFilter, total: int, size: int, offset: int) -> str | None:
    """Prefect's next-page token (base64 JSON of the filter, count, page size and next offset)."""
    if offset + size >= total:
        return None
    body = {"filter": msgspec.to_builtins(flt), "count": total, "page_size": size, "offset": offset + size}
    return base64.b64encode(msgspec.json.encode(body)).decode()


def from_token(token: str) -> tuple[schema.EventFilter, int, int]:
    try:
        body = msgspec.json.decode(base64.b64decode(token, validate=True))
        flt = msgspec.convert(body["filter"], schema.EventFilter, strict=False)
        size, offset = int(body["page_size"]), int(body["offset"])
    except (ValueError, TypeError, KeyError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidToken("Unable to parse page token") from None
    if not 0 <= size <= schema.MAX_PAGE or offset < 0:
        raise InvalidToken("Unable to parse page token")
    return flt, size, offset


async def query(store: EventStore, flt: schema.EventFilter, *, size: int, offset: int = 0) -> Page:
    async with store.reading() as tx:
        events, total = await read_page(tx, flt, limit=size, offset=offset)
    return Page(events, total, page_token(flt, total, size, offset))


# -- count-by ----------------------------------------------------------------------------------


_UNITS = {"week": timedelta(days=7), "day": timedelta(days=1), "hour": timedelta(hours=1),
          "minute": timedelta(minutes=1), "second": timedelta(seconds=1)}


def _spans(since: datetime, until: datetime, delta: timedelta, now: datetime) -> tuple[int, list[tuple[datetime, datetime]]]:
    """Prefect's time buckets: the index of the first (counted from PIVOT) and each (start, end)."""
    buckets = math.ceil((until - since) / delta)
    if buckets > MAX_BUCKETS:
        raise InvalidCount(
            f"The given interval would create {buckets} buckets, which is too many. Please increase the "
            f"interval or reduce the time range to produce {MAX_BUCKETS} buckets or fewer."
        )
    end = until
    if end > now:  # Prefect ends at the end of the current period of the unit
        end = now
    first = math.floor((since - PIVOT) / delta)
    spans = []
    start = PIVOT + delta * first
    while start < end:
        spans.append((start, start + delta - timedelta(microseconds=1)))
        start += delta
    return first, spans


def _resource_label(event: PrefectEvent) -> str:
    resource = event.resource
    return resource.get("prefect.resource.name") or resource.get("prefect.name") or resource.get("prefect.resource.id", "")


async def count_by(
    store: EventStore, flt: schema.EventFilter, countable: str, *, time_unit: str, interval: float, now: datetime,
) -> list[schema.EventCount]:
    """Prefect's /events/count-by: counts by time bucket (zeros filled in), event name or resource."""
    since, until = flt.occurred.since, flt.occurred.until
    assert since is not None and until is not None
    if countable == "day":
        time_unit, interval = "day", 1.0
    delta = _UNITS[time_unit] * interval
    if countable in ("day", "time"):
        first, spans = _spans(since, until, delta, now)
    async with store.reading() as tx:
        source, params = _source(tx, flt)
        rows = await tx.fetch(f"SELECT e.occurred, e.body FROM {source}", *params)
    if countable in ("day", "time"):
        counts = [0] * len(spans)
        for occurred, _body in rows:
            index = math.floor((from_us(occurred) - PIVOT) / delta) - first  # type: ignore[operator]
            if 0 <= index < len(counts):
                counts[index] += 1
        return [
            schema.EventCount(value=str(first + i), label=start.isoformat(), count=counts[i], start_time=start, end_time=end)
            for i, (start, end) in enumerate(spans)
        ]
    groups: dict[str, list[Any]] = {}  # value -> [label, latest, count, oldest, newest]
    for occurred, body in rows:
        event = decode_event(body)
        value = event.event if countable == "event" else event.resource.get("prefect.resource.id", "")
        label = event.event if countable == "event" else _resource_label(event)
        at = from_us(occurred)
        group = groups.setdefault(value, [label, at, 0, at, at])
        if at >= group[1]:  # the label of the latest event of the value, as Prefect's
            group[0], group[1] = label, at
        group[2] += 1
        group[3], group[4] = min(group[3], at), max(group[4], at)
    counted = [
        schema.EventCount(value=value, label=label, count=count, start_time=oldest, end_time=newest)
        for value, (label, _latest, count, oldest, newest) in groups.items()
    ]
    counted.sort(key=lambda c: (-c.count, c.label))
    return counted


__all__ = [
    "InvalidCount", "InvalidToken", "Page", "count_by", "from_token", "in_utc", "page_token", "query", "where",
    "with_defaults",
]
