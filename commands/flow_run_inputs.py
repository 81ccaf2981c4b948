"""Flow run inputs (Prefect's /flow_runs/{id}/input) and resuming a paused run with input.

A flow that calls ``pause_flow_run(wait_for_input=...)`` stores the JSON schema of the input it
waits for under one key, and ``resume_flow_run(run_input=...)`` sends a value that the server
checks against that schema and stores under another key before the run goes on; the paused flow
then reads it. Every input of a run is decided on the run's one input stream (run-input-<id>),
so a key is taken at most once per run without a lock.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from runlog.eventstore import EventStore, Tx
from runlog.projections import flow_run_inputs as reads
from runlog.projections import runs_writer
from runlog.projections.cache import ViewCache
from runlog.projections.flow_run_inputs import FlowRunInputView
from runlog.projections.runs import FlowRunView
from runlog.schema import events as catalogue
from runlog.schema import streams
from runlog.schema.events import StateDetails, StateType

from . import flow_runs
from .clock import Clock, system_clock
from .errors import Conflict, NotFound, Unprocessable
from .executor import Decided, decide_on_stream
from .orchestration import Decision, ProposedState, Status

KEY_PATTERN = re.compile(r"^[a-z0-9-]*$")
"""Prefect's: lowercase letters, numbers and dashes only."""

RUN_NOT_FOUND = "Flow run not found"
INPUT_NOT_FOUND = "Flow run input not found"


class KeyTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("A flow run input with this key already exists.")


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise Unprocessable("key must only contain lowercase letters, numbers, and dashes.")
    return key


async def create(
    store: EventStore, flow_run_id: UUID, key: str, value: str, sender: str | None = None, *,
    clock: Clock = system_clock,
) -> FlowRunInputView:
    """Raises NotFound when the run does not exist, KeyTaken when the run has the key already."""
    check_key(key)

    async def decide(tx: Tx, now: datetime) -> Decided[FlowRunInputView]:
        if not await runs_writer.flow_run_exists(store, flow_run_id):
            raise NotFound(RUN_NOT_FOUND)
        if await reads.by_key(tx, flow_run_id, key) is not None:
            raise KeyTaken()
        event = catalogue.FlowRunInputCreated(
            input_id=uuid.uuid4(), flow_run_id=flow_run_id, key=key, value=value, sender=sender, created=now,
        )
        view = FlowRunInputView(
            id=event.input_id, flow_run_id=flow_run_id, key=key, value=value, sender=sender, created=now,
        )
        return Decided([event], view)

    return await decide_on_stream(store, streams.run_input(flow_run_id), decide, clock=clock)


async def delete(store: EventStore, flow_run_id: UUID, key: str, *, clock: Clock = system_clock) -> bool:
    """Whether the run had an input with the key to delete."""

    async def decide(tx: Tx, _now: datetime) -> Decided[bool]:
        found = await reads.by_key(tx, flow_run_id, key)
        if found is None:
            return Decided((), False)
        return Decided([catalogue.FlowRunInputDeleted(input_id=found.id, flow_run_id=flow_run_id, key=key)], True)

    return await decide_on_stream(store, streams.run_input(flow_run_id), decide, clock=clock)


# -- resuming ----------------------------------------------------------------------------------


class Resumed(msgspec.Struct, kw_only=True):
    """What POST /flow_runs/{id}/resume answers: a decision, and the state to show with it."""

    decision: Decision
    state: catalogue.State | None
    refused: bool = False
    """Refused before any transition was proposed (not paused, or the input refused)."""


def _refused(run: FlowRunView, reason: str) -> Resumed:
    # Prefect answers REJECT with the run's current state and *abort* details here.
    return Resumed(decision=Decision(status=Status.REJECT, reason=reason), state=run.state, refused=True)


def validate_input(run_input: dict[str, Any], schema: Any) -> str | None:
    """Why ``run_input`` does not satisfy the JSON schema, in Prefect's words; None when it does.

    No remote reference is ever fetched (an empty registry), as in Prefect.
    """
    # Imported when an input is checked: jsonschema is a tenth of the app's import time, which
    # every `runlog run` pays before its command's first request.
    import jsonschema
    import referencing
    import referencing.exceptions

    try:
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator_class(schema, registry=referencing.Registry()).validate(run_input)
    except RecursionError:
        return "Invalid schema: Unable to validate schema with circular references."
    except referencing.exceptions.Unresolvable as exc:
        return f"Reason: Validation failed. Failure reason: {exc}"
    except jsonschema.ValidationError as exc:
        where = "Validation failed." if exc.json_path == "$" else \
            f"Validation failed for field {exc.json_path.replace('$.', '')!r}."
        return f"Reason: {where} Failure reason: {exc.message}"
    except jsonschema.SchemaError as exc:
        return f"Reason: Validation failed. Failure reason: {exc.message}"
    return None


async def resume(
    store: EventStore, flow_run_id: UUID, run_input: dict[str, Any] | None, *,
    cache: ViewCache | None = None, clock: Clock = system_clock,
) -> Resumed:
    """Resume a Paused run (Running again, or Scheduled "Resuming" after a suspension), first
    checking ``run_input`` against the schema the paused flow stored and storing it where the
    flow will read it. Raises NotFound for an unknown run."""
    run = await runs_writer.get_flow_run(store, flow_run_id)
    if run is None:
        raise NotFound(RUN_NOT_FOUND)
    state = run.state
    if state is None or state.type is not StateType.PAUSED:
        return Resumed(decision=Decision(status=Status.ABORT, reason="Cannot resume a flow run that is not paused."),
                       state=None, refused=True)
    keyset = state.state_details.run_input_keyset or None
    stored: FlowRunInputView | None = None
    if keyset:
        run_input = run_input or {}
        schema_input = await reads.get_by_key(store, flow_run_id, keyset.get("schema", ""))
        if schema_input is None:
            return _refused(run, "Run input schema not found.")
        try:
            schema = json.loads(schema_input.value)
        except ValueError:
            return _refused(run, "Run input schema is not valid JSON.")
        problem = validate_input(run_input, schema)
        if problem is not None:
            return _refused(run, problem)
        if run_input:
            # Stored before the run moves on: the paused flow reads it as soon as it sees RUNNING.
            stored = await create(store, flow_run_id, keyset["response"], json.dumps(run_input), clock=clock)

    now = clock()
    if state.state_details.pause_reschedule:
        proposed = ProposedState(type=StateType.SCHEDULED, name="Resuming",
                                 state_details=StateDetails(scheduled_time=now))
    else:
        proposed = ProposedState(type=StateType.RUNNING)
    outcome = await flow_runs.set_state(store, flow_run_id, proposed, cache=cache, clock=clock)
    if outcome is None:
        raise NotFound(RUN_NOT_FOUND)
    view, decision = outcome
    if stored is not None and decision.status is not Status.ACCEPT:
        await delete(store, flow_run_id, stored.key, clock=clock)  # the run did not resume: no input
    return Resumed(decision=decision, state=decision.state or view.state)


__all__ = [
    "INPUT_NOT_FOUND", "KEY_PATTERN", "KeyTaken", "RUN_NOT_FOUND", "Resumed", "check_key", "create", "delete",
    "resume", "validate_input",
]
