"""Creating, updating and deleting variables: decided on the one "variables" stream.

A variable's name must be unique. Every variable event goes to the stream "variables", and a
command reads that stream's version *before* the variables it decides on, then appends with
that version expected: if any variable was written in between, the append fails with a
ConcurrencyError and the command decides again against the newer state. So two concurrent
creations of one name can never both succeed, with no lock held. Variables are configuration,
written rarely, so one stream for all of them costs nothing worth measuring.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, Tx
from runlog.projections import variables as reads
from runlog.projections.variables import VariableView, evolve_variable
from runlog.schema import events as catalogue
from runlog.schema import streams

from .clock import Clock, system_clock
from .errors import Conflict, Unprocessable
from .executor import Decided, decide_on_stream

MAX_VARIABLE_NAME_LENGTH = 255
MAX_VARIABLE_VALUE_LENGTH = 5000
"""Prefect's limits: a name of at most 255 characters, a value of at most 5,000 as JSON."""


class NameTaken(Conflict):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"A variable with the name {name!r} already exists.")


class InvalidVariable(Unprocessable):
    """A value or tag Prefect (or the database) cannot hold: answered with 422."""


def check_value(value: Any) -> None:
    """Prefect's limit: the value as compact JSON is at most 5,000 bytes of UTF-8 (Prefect
    measures orjson's output, which is bytes); null is always accepted."""
    if value is not None and len(msgspec.json.encode(value)) > MAX_VARIABLE_VALUE_LENGTH:
        raise InvalidVariable(f"Variable value must be less than {MAX_VARIABLE_VALUE_LENGTH} characters")


def check_tags(tags: list[str]) -> None:
    # Tags are copied into a text column for filtering, and PostgreSQL text cannot hold NUL.
    if any("\x00" in tag for tag in tags):
        raise InvalidVariable("Variable tags must not contain the NUL character")


Lookup = Callable[[Tx], Awaitable[VariableView | None]]


async def create(
    store: EventStore, name: str, value: Any, tags: list[str] | None = None, *, clock: Clock = system_clock
) -> VariableView:
    """Raises NameTaken when a variable has the name, InvalidVariable for a value too large."""
    tags = tags or []
    check_value(value)
    check_tags(tags)

    async def decide(tx: Tx, now: datetime) -> Decided[catalogue.VariableCreated]:
        if await reads.by_name(tx, name) is not None:
            raise NameTaken(name)
        event = catalogue.VariableCreated(variable_id=uuid.uuid4(), name=name, value=value, tags=tags, created=now)
        return Decided([event], event)

    event = await decide_on_stream(store, streams.VARIABLES, decide, clock=clock)
    view = evolve_variable(None, event)
    assert view is not None
    return view


def check_changes(changes: dict[str, Any]) -> None:
    """Raises InvalidVariable for a null name or tags, which a variable cannot have (Prefect's
    database refuses them too), or a bad value or tags."""
    for field in ("name", "tags"):
        if field in changes and changes[field] is None:
            raise InvalidVariable(f"Variable {field} must not be null")
    if "value" in changes:
        check_value(changes["value"])
    if "tags" in changes:
        check_tags(changes["tags"])


async def update(
    store: EventStore, lookup: Lookup, changes: dict[str, Any], *, clock: Clock = system_clock
) -> VariableView | None:
    """Set the fields in ``changes`` (name, value, tags); the variable after the update, None when
    ``lookup`` finds none. Raises NameTaken when renamed to another variable's name,
    InvalidVariable for a bad value or tags."""
    check_changes(changes)

    async def decide(tx: Tx, now: datetime) -> Decided[VariableView | None]:
        view = await lookup(tx)
        if view is None:
            return Decided((), None)
        name = changes.get("name")
        if name is not None and name != view.name and await reads.by_name(tx, name) is not None:
            raise NameTaken(name)
        event = catalogue.VariableUpdated(variable_id=view.id, changes=changes, updated=now)
        return Decided([event], evolve_variable(view, event))

    return await decide_on_stream(store, streams.VARIABLES, decide, clock=clock)


async def delete(store: EventStore, lookup: Lookup, *, clock: Clock = system_clock) -> bool:
    """Whether there was a variable to delete."""

    async def decide(tx: Tx, _now: datetime) -> Decided[bool]:
        view = await lookup(tx)
        if view is None:
            return Decided((), False)
        return Decided([catalogue.VariableDeleted(variable_id=view.id)], True)

    return await decide_on_stream(store, streams.VARIABLES, decide, clock=clock)


def by_id(variable_id: UUID) -> Lookup:
    return lambda tx: reads.by_id(tx, variable_id)


def by_name(name: str) -> Lookup:
    return lambda tx: reads.by_name(tx, name)
