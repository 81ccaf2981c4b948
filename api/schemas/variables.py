"""Bodies of /variables, with Prefect 3.8's names, limits and defaults.

As in Prefect, create and update bodies forbid unknown fields. An update tells a field sent as
``null`` from one not sent (msgspec's UNSET): ``{"value": null}`` sets the value to null.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from runlog.commands.variables import MAX_VARIABLE_NAME_LENGTH

from .filters import NonNegative, Operator

VARIABLE_NAME_PATTERN = "^[a-z0-9-_]*$"
"""Prefect's: lowercase letters, numbers, dashes and underscores (and, as there, possibly empty)."""

VariableName = Annotated[str, msgspec.Meta(pattern=VARIABLE_NAME_PATTERN, max_length=MAX_VARIABLE_NAME_LENGTH)]

VariableSort = Literal["CREATED_DESC", "UPDATED_DESC", "NAME_DESC", "NAME_ASC"]


class VariableCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: VariableName
    value: Any
    tags: list[str] = msgspec.field(default_factory=list)


class VariableUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: VariableName | None | msgspec.UnsetType = msgspec.UNSET
    value: Any | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | None | msgspec.UnsetType = msgspec.UNSET


class Variable(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    value: Any
    tags: list[str]


class _Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class VariableFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class VariableFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None
    like_: str | None = None


class VariableFilterTags(_Filter, kw_only=True):
    operator: Operator = "and_"
    all_: list[str] | None = None
    is_null_: bool | None = None


class VariableFilter(_Filter, kw_only=True):
    operator: Operator = "and_"
    id: VariableFilterId | None = None
    name: VariableFilterName | None = None
    tags: VariableFilterTags | None = None


class VariableCountRequest(msgspec.Struct, kw_only=True):
    """A top-level ``null`` means the default, as FastAPI treats it."""

    variables: VariableFilter | None = None


class VariableFilterRequest(VariableCountRequest, kw_only=True):
    limit: int | None = None
    offset: NonNegative | None = None
    sort: VariableSort | None = None
