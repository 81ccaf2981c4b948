"""Bodies of /events/filter and /events/count-by/{countable}: Prefect 3.8's EventFilter.

Field names, defaults and nesting are prefect/server/events/filters.py's; every filter object
forbids unknown fields, as Prefect's (``extra="forbid"``) do. ``occurred`` defaults are filled
in by the query from the server's clock (since: the start of the day 180 days ago, until: now).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec


MAX_PAGE = 50
"""Prefect's INTERACTIVE_PAGE_SIZE: the default and the largest ``limit`` of /events/filter."""

Labels = dict[str, str | list[str]]
"""Prefect's ResourceSpecification: label -> a pattern or a list of patterns (``*``, ``!``)."""


Pair = Annotated[list[str], msgspec.Meta(min_length=2, max_length=2)]
"""A (resource id, role) pair, as Prefect's two-item tuples arrive in JSON."""


class _Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    pass


class EventOccurredFilter(_Filter, kw_only=True):
    since: datetime | None = None
    until: datetime | None = None


class EventNameFilter(_Filter, kw_only=True):
    prefix: list[str] | None = None
    exclude_prefix: list[str] | None = None
    name: list[str] | None = None
    exclude_name: list[str] | None = None


class EventResourceFilter(_Filter, kw_only=True):
    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: Labels | None = None
    distinct: bool = False


class EventRelatedFilter(_Filter, kw_only=True):
    id: list[str] | None = None
    role: list[str] | None = None
    resources_in_roles: list[Pair] | None = None
    labels: Labels | None = None


class EventAnyResourceFilter(_Filter, kw_only=True):
    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: Labels | None = None


class EventIDFilter(_Filter, kw_only=True):
    id: list[UUID] | None = None


class EventTextFilter(_Filter, kw_only=True):
    query: Annotated[str, msgspec.Meta(max_length=200)]


class EventFilter(_Filter, kw_only=True):
    occurred: EventOccurredFilter = msgspec.field(default_factory=EventOccurredFilter)
    event: EventNameFilter | None = None
    resource: EventResourceFilter | None = None
    related: EventRelatedFilter | list[EventRelatedFilter] | None = None
    any_resource: EventAnyResourceFilter | list[EventAnyResourceFilter] | None = None
    id: EventIDFilter = msgspec.field(default_factory=EventIDFilter)
    text: EventTextFilter | None = None
    order: Literal["ASC", "DESC"] = "DESC"


class EventFilterRequest(msgspec.Struct, kw_only=True):
    filter: EventFilter | None = None
    limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_PAGE)] = MAX_PAGE


Countable = Literal["day", "time", "event", "resource"]
TimeUnit = Literal["week", "day", "hour", "minute", "second"]


class EventCountRequest(msgspec.Struct, kw_only=True):
    filter: EventFilter
    time_unit: TimeUnit = "day"
    time_interval: Annotated[float, msgspec.Meta(ge=0.01)] = 1.0


class EventCount(msgspec.Struct, kw_only=True):
    value: str
    label: str
    count: int
    start_time: datetime
    end_time: datetime


class FeedEvent(msgspec.Struct, kw_only=True):
    """An event of the feed, as /events/filter returns it (Prefect's ReceivedEvent)."""

    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, object]
    id: UUID
    follows: UUID | None
    received: datetime


class EventPage(msgspec.Struct, kw_only=True):
    events: list[FeedEvent]
    total: int
    next_page: str | None
