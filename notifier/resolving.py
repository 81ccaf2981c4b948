"""Resolving alerts when their run completes: the matcher's second duty.

A rule tagged ``runlog.resolve-on-completed`` (rules.RESOLVE_TAG; ``runlog notification create
--resolve-on-completed``) asks for it. When the matcher reaches a flow run's state change into a
COMPLETED state (Completed, Cached), it looks up the deliveries that run's earlier events caused
(the deliveries projection, so what it finds comes from the log, not from memory) and schedules
one resolve per delivery that:

- was made by an enabled, unmuted rule that asks for it (a paused or muted rule sends nothing,
  resolves included; a deleted rule resolves nothing);
- went to a channel that can resolve (PagerDuty, Opsgenie: channels.RESOLVABLE);
- answers an event that occurred before this completion (a run re-run after completing may
  fail again; that alert is not resolved by the older completion);
- opened an alert, or may still: a dead letter opened nothing, so it is left alone.

The resolve is a delivery like any other (commands/deliveries.schedule_resolve): recorded before
anything is sent, sent at least once, retried and dead-lettered by the dispatcher. Its id is
derived from the original's, so a completion matched again after a crash, or a second one,
collapses onto it; its alert key (PagerDuty ``dedup_key``, Opsgenie ``alias``) is the
original's id, the key the alert was opened under. The dispatcher holds a resolve back while its
original is still waiting to be sent, so an alert is never closed before it is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import structlog

from runlog.commands import deliveries
from runlog.commands.clock import Clock
from runlog.eventstore import EventStore
from runlog.projections import blocks
from runlog.projections import deliveries as model
from runlog.projections.prefect_events import PrefectEvent
from runlog.schema.automations import AutomationDefinition, SendNotification

from . import rules, run_actions, templates
from .acting import template_context
from .channels import RESOLVABLE

log = structlog.get_logger("runlog.notifier")

COMPLETED = "COMPLETED"


def completes_a_run(event: PrefectEvent) -> UUID | None:
    """The flow run EVENT shows entering a COMPLETED state, or None."""
    if not event.event.startswith("prefect.flow-run.") or event.resource.get("prefect.state-type") != COMPLETED:
        return None
    return run_actions.flow_run_of(event.resource.get("prefect.resource.id"))


def asks_to_resolve(definition: AutomationDefinition) -> bool:
    return rules.resolves_on_completed(definition.tags)


class Resolver:
    """Schedules the resolves a run's completion calls for (see the module's docstring)."""

    def __init__(self, store: EventStore, *, renderer: templates.Renderer, clock: Clock) -> None:
        self._store = store
        self._renderer = renderer
        self._clock = clock

    async def completed(
        self, event: PrefectEvent, automations: Iterable[tuple[UUID, str, AutomationDefinition]],
    ) -> int:
        """Resolve what EVENT's run alerted about through the given AUTOMATIONS (those that may
        act now); how many resolves this call scheduled."""
        run_id = completes_a_run(event)
        asking = {automation_id: (name, definition) for automation_id, name, definition in automations
                  if asks_to_resolve(definition)}
        if run_id is None or not asking:
            return 0
        async with self._store.reading() as tx:
            found = await model.of_flow_run(tx, run_id)
        created = 0
        for original in found:
            first = original.scheduled
            if first.resolve or first.rule_id not in asking or original.status == model.DEAD:
                continue
            if first.occurred is not None and first.occurred >= event.occurred:
                continue  # an alert of a later state (the run ran again): not this completion's
            if await self._kind(first.channel_id) not in RESOLVABLE:
                continue
            name, definition = asking[first.rule_id]
            subject, body = await self._message(event, first.rule_id, name, definition, first.action_index)
            _view, made = await deliveries.schedule_resolve(
                self._store, original, event_id=event.id, subject=subject, body=body, occurred=event.occurred,
                clock=self._clock,
            )
            if made:
                log.info("alert_resolve_scheduled", delivery_id=str(original.id), flow_run_id=str(run_id),
                         automation_id=str(first.rule_id))
            created += int(made)
        return created

    async def _kind(self, channel_id: UUID) -> str | None:
        async with self._store.reading() as tx:
            document = await blocks.stored_document(tx, channel_id)
            block_type = await blocks.block_type(tx, document.block_type_id) if document is not None else None
        return block_type.slug if block_type is not None else None

    async def _message(
        self, event: PrefectEvent, automation_id: UUID, name: str, definition: AutomationDefinition, index: int,
    ) -> tuple[str, str]:
        """The rule's own message rendered for the completion (Prefect's default says "entered
        state `Completed`"); Opsgenie keeps it as the closing note, PagerDuty needs none."""
        actions = definition.actions
        action = actions[index] if index < len(actions) else None
        if not isinstance(action, SendNotification):
            return "", f"Flow run {event.resource.get('prefect.resource.name', '')} completed."
        context = await template_context(self._store, event, {"id": str(automation_id), "name": name}, {})
        try:
            return self._renderer.render(action.subject, context), self._renderer.render(action.body, context)
        except templates.TemplateFailed as exc:
            return action.subject, f"(the notification's template failed: {exc})\n\n{action.body}"


__all__ = ["Resolver", "asks_to_resolve", "completes_a_run"]
