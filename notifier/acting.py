"""What the matcher does when an automation's trigger fires: Prefect's ``act`` and its actions
service, in one place.

The firing is recorded as ``prefect.automation.triggered``; then each action, ``actions`` with
the triggering event and ``actions_on_trigger`` with the triggered event (as Prefect passes
them), is carried out under its invocation id, the delivery id the action would have
(commands/deliveries.delivery_id_for of the firing, the automation and the action's index):

- send-notification and call-webhook become deliveries (sent, retried and dead-lettered by the
  dispatcher); their ``action.triggered`` is recorded before the delivery is scheduled, and
  both are idempotent, so a firing matched again makes neither twice; their executed or failed
  event is derived from the delivery's outcome (projections/prefect_events.py);
- the flow-run actions (run_actions.py), the deployment, work pool and work queue actions
  (deployment_actions.py) and do-nothing are claimed first
  (commands/automation_runs.claim) and carried out only by the claimant, then their executed or
  failed event is recorded.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog

from runlog.commands import automation_runs, deliveries
from runlog.commands.clock import Clock
from runlog.commands.executor import Executor
from runlog.eventstore import ConcurrencyError, EventStore
from runlog.projections import automation_events as shapes
from runlog.projections import blocks
from runlog.projections import flows as flow_reads
from runlog.projections.prefect_events import PrefectEvent
from runlog.projections.runs_writer import get_flow_run
from runlog.schema import streams
from runlog.schema.automations import Action, AutomationDefinition, CallWebhook, SendNotification

from . import deployment_actions, run_actions, templates, triggers
from .channels.call_webhook import SLUG as WEBHOOK_SLUG

log = structlog.get_logger("runlog.notifier")

_NAMESPACE = uuid.UUID("3f9d3c52-5a53-4f0e-9a57-6e6f74696679")


class Actor:
    """Carries out a firing's actions (see the module's docstring)."""

    def __init__(self, store: EventStore, *, renderer: templates.Renderer, clock: Clock) -> None:
        self._store = store
        self._renderer = renderer
        self._clock = clock
        # block document id -> what _block read, until a block changes (forget_blocks): a rule
        # sending to three channels read two rows per channel for every alert it fired.
        self._blocks: dict[UUID, asyncio.Future[tuple[str, list[dict[str, str]]] | None]] = {}
        # flow id -> its view, until a record of a flow's stream passes the matcher (forget_flows):
        # a burst of one flow's runs failing read the same flow once per alert.
        self._flows: dict[UUID, asyncio.Future[flow_reads.FlowView | None]] = {}

    def forget_blocks(self) -> None:
        """A block changed (the matcher saw a record of the ``blocks`` stream pass): the
        documents are read again from the next firing on."""
        self._blocks.clear()

    def forget_flows(self) -> None:
        """A flow changed (the matcher saw a record of a flow's stream pass): flows are read
        again from the next firing on."""
        self._flows.clear()

    async def _flow(self, flow_id: UUID) -> flow_reads.FlowView | None:
        """The flow as the log has it, read once until a flow changes (shared by a burst's firings)."""
        reading = self._flows.get(flow_id)
        if reading is None or (reading.done() and (reading.cancelled() or reading.exception() is not None)):
            reading = asyncio.ensure_future(flow_reads.get(self._store, flow_id))
            self._flows[flow_id] = reading
        if reading.done():
            return reading.result()
        # Shielded: one firing cancelled must not cancel the read the others wait on.
        return await asyncio.shield(reading)

    async def fire(
        self, automation_id: UUID, name: str, definition: AutomationDefinition, firing: triggers.Firing,
    ) -> int:
        """Record the firing and carry out its actions; how many deliveries it scheduled."""
        event = firing.event
        # A proactive trigger may fire with no event in its window: the firing itself is then
        # the trigger, identified by the automation and the window's end (not the moment a round
        # noticed it, so a restarted matcher firing the same window again collapses onto it).
        window = (firing.window_end or firing.at).isoformat()
        firing_key = event.id if event is not None else uuid.uuid5(
            _NAMESPACE, f"{automation_id}:{window}:{sorted(firing.labels.items())}"
        )
        posture = definition.trigger.posture
        triggered = shapes.automation_triggered(
            automation_id=automation_id, name=name, posture=posture, labels=firing.labels, triggering=event,
            at=firing.at, firing_key=firing_key,
        )
        assert triggered.event_id is not None
        as_event = PrefectEvent(
            occurred=triggered.occurred, event=triggered.event, resource=triggered.resource,
            related=triggered.related, payload=triggered.payload, id=triggered.event_id, received=firing.at,
        )
        sources: list[tuple[Action, Any]] = [(action, event) for action in definition.actions]
        sources += [(action, as_event) for action in definition.actions_on_trigger]
        automation = {"id": str(automation_id), "name": name}
        trigger_type = str(definition.trigger.__struct_config__.tag)
        resource = shapes.automation_resource(automation_id, name, posture, trigger_type=trigger_type)
        # The template context is read once per source event (the run and its flow), not once
        # per action: a rule with three channels read the same run and flow three times.
        contexts: dict[int, asyncio.Future[dict[str, Any]]] = {}

        def context_of(source: Any) -> asyncio.Future[dict[str, Any]]:
            if id(source) not in contexts:
                reading = asyncio.ensure_future(self._context(source, automation, firing.labels))
                # Its failure is the actions' to report (they await it); never an unretrieved one.
                reading.add_done_callback(lambda done: done.cancelled() or done.exception())
                contexts[id(source)] = reading
            return contexts[id(source)]

        steps = [
            _Step(
                automation_id=automation_id, automation=automation, resource=resource, index=index, action=action,
                source=source, labels=firing.labels, at=firing.at, triggered_event_id=triggered.event_id,
                firing_key=firing_key, invocation=deliveries.delivery_id_for(firing_key, automation_id, index),
                rule_name=name, context=functools.partial(context_of, source),
            )
            for index, (action, source) in enumerate(sources)
        ]
        # The actions are carried out together: each has its own invocation, streams and claim,
        # and none waits for another's outcome (Prefect's actions service takes them as separate
        # messages too). The deliveries' messages are made first; then the firing's event, each
        # delivery's action.triggered and its scheduling are appended in one multi-stream
        # append (one transaction, one group commit: a rule sending to three channels made
        # seven appends before); then the other actions are claimed and carried out.
        try:
            sends = [step for step in steps if isinstance(step.action, (SendNotification, CallWebhook))]
            prepared = await asyncio.gather(*(self._prepare(step) for step in sends))
            scheduled = await self._record_firing(triggered, [p for p in prepared if p.reason is None])
            log.info("automation_triggered", automation_id=str(automation_id), event_id=str(firing_key),
                     event_name=event.event if event is not None else None)
            others = [self._refuse(p) for p in prepared if p.reason is not None]
            others += [self._act(step) for step in steps if not isinstance(step.action, (SendNotification, CallWebhook))]
            await asyncio.gather(*others)
            return scheduled
        finally:
            for context in contexts.values():  # not left reading when an action failed before it
                context.cancel()

    async def _record_firing(self, triggered: Any, prepared: Sequence[_Prepared]) -> int:
        """Record the firing and schedule its deliveries, in one append; how many it scheduled.

        Every record is idempotent (the events by their derived ids, the deliveries by their
        derived streams), so a firing matched again conflicts on a delivery that exists: then
        nothing of the append is stored and each record is made on its own, which writes only
        what is missing (a firing recorded by an older runlog, one record at a time, may have
        been left half made)."""
        commands: list[Any] = [automation_runs.record_command(triggered)]
        for p in prepared:
            commands.append(automation_runs.record_command(p.triggered, stream=streams.triggered_action(p.step.invocation)))
            commands.append(p.schedule)
        try:
            outcomes = await Executor(self._store, clock=self._clock).execute_together(commands, retry_conflicts=False)
        except ConcurrencyError:
            pass
        else:
            return sum(1 for outcome in outcomes[2::2] if outcome.wrote)
        await automation_runs.record_event(self._store, triggered)

        async def one(p: _Prepared) -> int:
            # Recorded first, so that the delivery's outcome always finds the event it follows.
            await automation_runs.record_event(self._store, p.triggered, stream=streams.triggered_action(p.step.invocation))
            _view, created = await deliveries.run_schedule(self._store, p.step.invocation, p.schedule, self._clock)
            return int(created)

        return sum(await asyncio.gather(*(one(p) for p in prepared)))

    async def _act(self, step: _Step) -> None:
        """An action that is not a send: claimed, carried out, its outcome recorded."""
        action = step.action
        related: list[dict[str, str]] = []
        if isinstance(action, run_actions.RUN_ACTIONS):
            run_id = run_actions.target(step.labels, step.source)
            if run_id is not None:
                related.append({"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "target"})
        triggered = step.action_triggered(related)
        if not await automation_runs.claim(self._store, step.invocation, triggered, clock=self._clock):
            return  # carried out (or begun) before: never twice
        details: dict[str, Any] = {}
        reason = None
        resulting: list[dict[str, str]] = []
        if isinstance(action, (*run_actions.RUN_ACTIONS, *deployment_actions.TARGET_ACTIONS)):
            if isinstance(action, run_actions.RUN_ACTIONS):
                outcome = await run_actions.carry_out(
                    self._store, action, automation_id=step.automation_id, labels=step.labels, event=step.source,
                    clock=self._clock,
                )
            else:
                outcome = await deployment_actions.carry_out(
                    self._store, action, automation_id=step.automation_id, invocation=step.invocation,
                    action_index=step.index, event=step.source, clock=self._clock,
                    automation_name=step.rule_name, context=step.context,
                )
                resulting = outcome.related  # the target and what the action made (Prefect's resulting resources)
            reason, details = outcome.reason, outcome.details
            log.info("automation_action", automation_id=str(step.automation_id), action=step.action_type,
                     failed=reason)
        await self._finish(step, triggered, reason, details, resulting)

    async def _finish(
        self, step: _Step, triggered: Any, reason: str | None, details: dict[str, Any],
        resulting: Sequence[dict[str, str]] = (),
    ) -> None:
        finished = shapes.action_finished(triggered, at=self._clock(), reason=reason, details=details)
        if resulting:
            finished = msgspec.structs.replace(finished, related=[*finished.related, *resulting])
        await automation_runs.record_event(self._store, finished, stream=streams.triggered_action(step.invocation))

    async def _prepare(self, step: _Step) -> _Prepared:
        """A send's action.triggered and its delivery's message, or the reason it cannot be sent."""
        action = step.action
        assert isinstance(action, (SendNotification, CallWebhook))
        # Independent reads, made together: a burst of alerts waits on the database's round
        # trips here, once per firing, so two at once rather than one after the other. Both are
        # futures shared by the firing's actions (the block's by every firing until a block
        # changes), mostly done already: awaited in turn, with no gather's tasks around them.
        context_read = step.context()
        block = await self._block(action.block_document_id)
        context = await context_read
        triggered = step.action_triggered(block[1] if block else [])
        reason = None
        if isinstance(action, CallWebhook):
            subject = ""
            if block is not None and block[0] != WEBHOOK_SLUG:
                reason = "The referenced block was not a webhook block"
            try:
                body = self._renderer.render(action.payload, context)
            except templates.TemplateFailed as exc:
                reason = reason or f"The payload's template failed: {exc}"
        else:
            try:
                subject = self._renderer.render(action.subject, context)
                body = self._renderer.render(action.body, context)
            except templates.TemplateFailed as exc:
                # Still delivered, with the reason in place of the text: a rule whose template
                # fails at send time must not go silent.
                subject, body = action.subject, f"(the notification's template failed: {exc})\n\n{action.body}"
        if reason is not None:
            return _Prepared(step=step, triggered=triggered, reason=reason)
        schedule = deliveries.schedule_command(
            rule_id=step.automation_id, rule_name=step.rule_name, action_index=step.index,
            channel_id=action.block_document_id, event_id=step.firing_key, flow_run_id=_flow_run_id(step.source),
            subject=subject, body=body, occurred=step.source.occurred if step.source is not None else step.at,
        )
        return _Prepared(step=step, triggered=triggered, schedule=schedule)

    async def _refuse(self, prepared: _Prepared) -> None:
        """A send that cannot be made: its action is claimed and recorded as failed, once."""
        if await automation_runs.claim(self._store, prepared.step.invocation, prepared.triggered, clock=self._clock):
            await self._finish(prepared.step, prepared.triggered, prepared.reason, {})

    async def _block(self, block_document_id: UUID) -> tuple[str, list[dict[str, str]]] | None:
        """The block's type slug and its related resources (Prefect's block and block-type),
        read once until a block changes (one read shared by the firings of a burst)."""
        reading = self._blocks.get(block_document_id)
        if reading is None or (reading.done() and (reading.cancelled() or reading.exception() is not None)):
            reading = asyncio.ensure_future(self._read_block(block_document_id))
            self._blocks[block_document_id] = reading
        if reading.done():
            return reading.result()
        # Shielded: one firing cancelled must not cancel the read the others wait on.
        return await asyncio.shield(reading)

    async def _read_block(self, block_document_id: UUID) -> tuple[str, list[dict[str, str]]] | None:
        async with self._store.reading() as tx:
            document = await blocks.stored_document(tx, block_document_id)
            block_type = await blocks.block_type(tx, document.block_type_id) if document is not None else None
        if document is None or block_type is None:
            return None
        return block_type.slug, [
            {"prefect.resource.id": f"prefect.block-document.{document.id}", "prefect.resource.role": "block",
             "prefect.resource.name": document.name},
            {"prefect.resource.id": f"prefect.block-type.{block_type.slug}", "prefect.resource.role": "block-type"},
        ]

    async def _context(self, source: Any, automation: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
        return await template_context(self._store, source, automation, labels, flow_of=self._flow)


async def template_context(
    store: EventStore, event: Any | None, automation: dict[str, str], labels: dict[str, str],
    *, flow_of: Callable[[UUID], Awaitable[flow_reads.FlowView | None]] | None = None,
) -> dict[str, Any]:
    """What an action's templates see for EVENT: the event, the automation, the run it is about
    and its flow (as they are now; ``flow_of`` reads the flow, the database by default), the
    firing's labels."""
    run = flow = None
    run_id = _flow_run_id(event)
    if run_id is not None:
        view = await get_flow_run(store, run_id)
        if view is not None:
            run = msgspec.to_builtins(view)
            flow_view = await (flow_of(view.flow_id) if flow_of is not None else flow_reads.get(store, view.flow_id))
            flow = msgspec.to_builtins(flow_view) if flow_view is not None else None
    return templates.context(event=event, automation=automation, flow=flow, flow_run=run, labels=labels)


class _Step(msgspec.Struct, kw_only=True):
    """One action of a firing, with what its events need."""

    automation_id: UUID
    automation: dict[str, str]
    resource: dict[str, str]
    index: int
    action: Action
    source: Any  # the event the action answers (PrefectEvent), None for an empty proactive window
    labels: dict[str, str]
    at: datetime
    triggered_event_id: UUID
    firing_key: UUID
    invocation: UUID
    rule_name: str
    context: Callable[[], Awaitable[dict[str, Any]]]
    """The template context of ``source``, read once and shared by the firing's actions."""

    @property
    def action_type(self) -> str:
        return str(self.action.__struct_config__.tag)

    def action_triggered(self, related: Sequence[dict[str, str]]) -> Any:
        return shapes.action_triggered(
            resource=self.resource, related=related, action_index=self.index, action_type=self.action_type,
            invocation=self.invocation, at=self.at, triggered_event_id=self.triggered_event_id,
            triggering=self.source,
        )


class _Prepared(msgspec.Struct, kw_only=True):
    """A send of a firing, ready to be recorded: its action.triggered and its delivery's
    scheduling, or the reason it failed."""

    step: _Step
    triggered: Any
    schedule: Any = None
    reason: str | None = None


def _flow_run_id(event: Any | None) -> UUID | None:
    """The run the event is about (its own resource), for the template context and the delivery."""
    if event is None:
        return None
    return run_actions.flow_run_of(event.resource.get("prefect.resource.id"))


__all__ = ["Actor", "template_context"]
