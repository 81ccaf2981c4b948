"""Bodies of /flows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec


class FlowCreate(msgspec.Struct, kw_only=True):
    name: str
    tags: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, Any] | None = None


class FlowUpdate(msgspec.Struct, kw_only=True, omit_defaults=True):
    tags: list[str] | None = None
    labels: dict[str, Any] | None = None


class Flow(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    tags: list[str]
    labels: dict[str, Any]


class AnyOf(msgspec.Struct, kw_only=True):
    any_: list[Any] | None = None


class NameFilter(msgspec.Struct, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class TagsFilter(msgspec.Struct, kw_only=True):
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowFilter(msgspec.Struct, kw_only=True):
    id: AnyOf | None = None
    name: NameFilter | None = None
    tags: TagsFilter | None = None


class FlowFilterRequest(msgspec.Struct, kw_only=True):
    """The Prefect client sends explicit nulls for what it leaves at the default. Bounds and
    sorts are Prefect's: a limit of at most 200 (its default), an offset of at least 0."""

    flows: FlowFilter | None = None
    limit: Annotated[int, msgspec.Meta(ge=0, le=200)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = 0
    sort: Literal["CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC"] | None = "NAME_ASC"


class FlowPaginateRequest(FlowFilterRequest, kw_only=True):
    """POST /flows/paginate (the web UI's flows and dashboard pages): a page number from 1."""

    page: Annotated[int, msgspec.Meta(ge=1, le=(2**63 - 1) // 200)] | None = None  # as PageNumber in filters.py
