"""Bodies of /automations, with Prefect 3.8's names and defaults, and the check that turns a
body into a definition runlog can carry out.

As in Prefect, create and update bodies forbid unknown top-level fields, while triggers and
actions ignore fields they do not know (the client sends a trigger's ``id``, which the server
replaces). Triggers and actions are decoded in two steps, so that a kind runlog does not
support is refused by name (422) rather than as a shape that did not fit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec

from runlog.commands import parameter_templates
from runlog.commands.errors import Unprocessable
from runlog.notifier import templates
from runlog.schema import automations as definition

from .filters import NonNegative, Operator

AutomationSort = Literal["CREATED_DESC", "UPDATED_DESC", "NAME_ASC", "NAME_DESC"]


class AutomationUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    description: str = ""
    enabled: bool = True
    tags: list[str] = msgspec.field(default_factory=list)
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    actions_on_trigger: list[dict[str, Any]] = msgspec.field(default_factory=list)
    actions_on_resolve: list[dict[str, Any]] = msgspec.field(default_factory=list)


class AutomationCreate(AutomationUpdate, kw_only=True, forbid_unknown_fields=True):
    owner_resource: str | None = None


class AutomationPartialUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True


class AutomationMute(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """runlog's own: no action fires before ``until``; null lifts the mute."""

    until: datetime | None = None


class Automation(msgspec.Struct, kw_only=True):
    """Prefect's Automation as the API answers it, plus runlog's ``muted_until`` (which the
    Prefect client ignores, as it ignores every field it does not know)."""

    id: UUID
    created: datetime
    updated: datetime
    name: str
    description: str
    enabled: bool
    tags: list[str]
    trigger: dict[str, Any]
    actions: list[dict[str, Any]]
    actions_on_trigger: list[dict[str, Any]]
    actions_on_resolve: list[dict[str, Any]]
    muted_until: datetime | None = None


class _Filter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class AutomationFilterId(_Filter, kw_only=True):
    any_: list[UUID] | None = None


class AutomationFilterName(_Filter, kw_only=True):
    any_: list[str] | None = None


class AutomationFilterCreated(_Filter, kw_only=True):
    before_: datetime | None = None


class AutomationFilterTags(_Filter, kw_only=True):
    operator: Operator = "and_"
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class AutomationFilter(_Filter, kw_only=True):
    operator: Operator = "and_"
    id: AutomationFilterId | None = None
    name: AutomationFilterName | None = None
    created: AutomationFilterCreated | None = None
    tags: AutomationFilterTags | None = None


class AutomationCountRequest(msgspec.Struct, kw_only=True):
    """A top-level ``null`` means the default, as FastAPI treats it."""

    automations: AutomationFilter | None = None


class AutomationFilterRequest(AutomationCountRequest, kw_only=True):
    limit: int | None = None
    offset: NonNegative | None = None
    sort: AutomationSort | None = None


# -- from a body to a definition ----------------------------------------------------------------


class InvalidAutomation(Unprocessable):
    """A trigger, action or template runlog cannot carry out: answered with 422."""


def _convert(value: Any, kind: type, where: str) -> Any:
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidAutomation(f"invalid {where}: {exc}") from None


def _trigger(data: dict[str, Any]) -> definition.EventTrigger:
    kind = data.get("type", "event")
    if not isinstance(kind, str):
        raise InvalidAutomation("invalid trigger: `type` must be a string such as 'event'")
    if kind in ("compound", "sequence"):
        raise InvalidAutomation(
            f"{kind} triggers are not supported by runlog yet; use an event trigger (type 'event')"
        )
    if kind != "event":
        raise InvalidAutomation(f"trigger type {kind!r} is not supported; use an event trigger (type 'event')")
    within = data.get("within", 0)
    if within is None:
        raise InvalidAutomation("invalid trigger: `within` should be a valid timedelta")
    if isinstance(within, str) and within.startswith(("P", "-P")):
        # Prefect reads an ISO 8601 duration as well as seconds.
        data = {**data, "within": _convert(within, timedelta, "trigger.within").total_seconds()}
    trigger = _convert({**data, "type": "event", "id": data.get("id") or str(UUID(int=0))}, definition.EventTrigger,
                       "trigger")
    if trigger.within < 0:
        raise InvalidAutomation("invalid trigger: `within` must be at least 0 seconds")
    if trigger.posture == "Proactive":
        # Prefect's rule: a proactive trigger looks at least 10 s ahead; 0 means 10 s.
        if trigger.within == 0:
            trigger = msgspec.structs.replace(trigger, within=definition.MIN_PROACTIVE_WITHIN)
        elif trigger.within < definition.MIN_PROACTIVE_WITHIN:
            raise InvalidAutomation(
                "invalid trigger: `within` for Proactive triggers must be greater than or equal to 10 seconds"
            )
    return trigger


def _action(data: dict[str, Any], where: str) -> definition.Action:
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidAutomation(f"{where}: `type` must be a string such as 'send-notification'")
    if kind in definition.TARGET_FIELDS:
        # Prefect's check: a selected target needs its id, an inferred one must not have one.
        field = definition.TARGET_FIELDS[kind]
        selected = data.get("source", "selected") == "selected"
        if selected != bool(data.get(field)):
            raise InvalidAutomation(f"{where}: {field} is " + ("not allowed" if data.get(field) else "required"))
    if kind not in definition.ACTION_TYPES:
        raise InvalidAutomation(f"{where}: action type {kind!r} is not supported by runlog")
    if kind == "call-webhook" and isinstance(data.get("payload"), dict):
        # Prefect's older clients send the payload as an object; it is kept as its JSON text.
        data = {**data, "payload": msgspec.json.encode(data["payload"]).decode()}
    action = _convert(data, definition.Action, where)
    if isinstance(action, definition.RunDeployment) and action.parameters:
        # Prefect's check of RunDeployment.parameters: their templates hydrated unrendered
        found = parameter_templates.problems(parameter_templates.hydrate(
            parameter_templates.upgrade_v1_templates(action.parameters), parameter_templates.Context(),
        ))
        if found:
            raise InvalidAutomation(f"{where}: Invalid parameters: \n" + "\n  ".join(
                f"{path + ':' if path else ''} {problem.message}" for path, problem in found.items()
            ))
    for field in definition.TEMPLATED_FIELDS.get(kind, ()):
        try:
            templates.check(getattr(action, field), field)
        except templates.TemplateInvalid as exc:
            raise InvalidAutomation(f"{where}: {exc}") from None
    return action


def definition_of(body: AutomationUpdate) -> definition.AutomationDefinition:
    """The definition a create or update body asks for; InvalidAutomation says what runlog
    cannot carry out (a compound trigger, a deployment action, a template that does not parse)."""
    def actions(items: list[dict[str, Any]], field: str) -> list[definition.Action]:
        return [_action(item, f"{field}[{index}]") for index, item in enumerate(items)]

    return definition.AutomationDefinition(
        name=body.name, description=body.description, enabled=body.enabled, tags=body.tags,
        trigger=_trigger(body.trigger), actions=actions(body.actions, "actions"),
        actions_on_trigger=actions(body.actions_on_trigger, "actions_on_trigger"),
        actions_on_resolve=actions(body.actions_on_resolve, "actions_on_resolve"),
    )
