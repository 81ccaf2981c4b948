"""Notification subjects and bodies, rendered as Prefect renders them: Jinja in an immutable
sandbox, with Prefect's context names and its ``ui_url`` filter.

Rendering takes plain data (the dicts of the flow, flow run, deployment, work pool and queue,
the triggering event and the automation, as the API shows them), never the database, so the
notifier gathers what a template needs and calls ``render``. The state a message shows is the
one that fired: ``flow_run.state`` is rebuilt from the event's ``prefect.state-*`` labels, as
Prefect does, not taken from the run's current state.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:  # jinja2 is imported when a template is first checked or rendered
    from jinja2 import Template, nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

from runlog.schema.automations import ReceivedEvent

MAX_RANGE = 100
MAX_LOOPS = 10
MAX_LOOP_DEPTH = 2
"""Prefect's bounds on user templates: range() size, for-loops, and their nesting."""

DEFAULT_FLOW_RUN_SUBJECT = "Prefect flow run notification"
DEFAULT_FLOW_RUN_BODY = (
    "Flow run {{ flow.name }}/{{ flow_run.name }} entered state `{{ flow_run.state.name }}` at "
    "{{ flow_run.state.timestamp }}.\n"
    "\n"
    "Flow ID: {{ flow_run.flow_id }}\n"
    "Flow run ID: {{ flow_run.id }}\n"
    "Flow run URL: {{ flow_run|ui_url }}\n"
    "State message: {{ flow_run.state.message }}"
)
"""Prefect's default message for flow-run notifications (its 2.x policies' text, in the Jinja
form its migration to automations gave it): what a rule sends when no --message is given."""

# Prefect's UI paths (prefect/utilities/urls.py); a work pool is addressed by its name.
UI_PATHS = {
    "flow": "flows/flow/{id}",
    "flow-run": "runs/flow-run/{id}",
    "task-run": "runs/task-run/{id}",
    "deployment": "deployments/deployment/{id}",
    "work-pool": "work-pools/work-pool/{name}",
    "work-queue": "work-queues/work-queue/{id}",
    "automation": "automations/automation/{id}",
    "block-document": "blocks/block/{id}",
}


class TemplateInvalid(ValueError):
    """A template that does not parse, or breaks the sandbox's limits; says which field.

    ``reason`` is the problem without the field's name and ``line`` the template's line it is on
    (0 when it is not on one line), as Prefect's template validation answers them."""

    def __init__(self, message: str, *, reason: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.line = line


class TemplateFailed(Exception):
    """A template that parsed but failed to render (an unsafe access refused by the sandbox, say)."""


class Obj(dict):
    """A context object: its fields as the API shows them, and the kind ``ui_url`` links to.

    The kind is an attribute with a leading underscore, which the sandbox never lets a template
    read; templates see only the fields."""

    def __init__(self, kind: str, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        self._kind = kind


def _range(*args: int) -> range:
    bounded = range(*args)
    if len(bounded) > MAX_RANGE:
        raise OverflowError(f"range too big: templates may use ranges of at most {MAX_RANGE} items")
    return bounded


def _environment(ui_base: str) -> ImmutableSandboxedEnvironment:
    from jinja2 import ChainableUndefined, pass_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    @pass_context
    def ui_url(_ctx: Any, obj: Any) -> str | None:
        kind = getattr(obj, "_kind", None)
        path = UI_PATHS.get(kind) if isinstance(kind, str) else None
        if path is None:
            return None
        return f"{ui_base.rstrip('/')}/{path.format(id=obj.get('id'), name=obj.get('name'))}"

    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)
    env.globals["range"] = _range
    env.filters["ui_url"] = ui_url
    return env


@functools.cache
def _checking() -> ImmutableSandboxedEnvironment:
    return _environment("http://localhost")


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    from jinja2 import nodes

    depth += isinstance(node, nodes.For)
    return max([depth, *(_loop_depth(child, depth) for child in node.iter_child_nodes())])


def check(template: str, field: str = "template") -> None:
    """Raises TemplateInvalid when ``template`` does not parse or breaks Prefect's limits."""
    from jinja2 import TemplateError, nodes

    try:
        root = _checking().parse(template)
        _checking().compile(root)  # unknown filters are found when compiling
    except TemplateError as exc:
        lineno = getattr(exc, "lineno", None) or 0
        line = f" (line {lineno})" if lineno else ""
        reason = exc.message or type(exc).__name__
        raise TemplateInvalid(f"{field!r} is not a valid template: {reason}{line}", reason=reason, line=lineno) from None
    loops = list(root.find_all(nodes.For))
    if len(loops) > MAX_LOOPS:
        reason = f"has {len(loops)} for loops; templates may have at most {MAX_LOOPS}"
        raise TemplateInvalid(f"{field!r} {reason}", reason=f"Contains {len(loops)} for loops. Templates can contain no more than {MAX_LOOPS} for loops.")
    if loops and _loop_depth(root) > MAX_LOOP_DEPTH:
        raise TemplateInvalid(f"{field!r} nests for loops deeper than {MAX_LOOP_DEPTH}",
                              reason=f"Templates can nest for loops no more than {MAX_LOOP_DEPTH} loops deep.")


def fired_state(event: ReceivedEvent) -> dict[str, Any] | None:
    """The state an event reports (Prefect's prefect.state-* resource labels), or None."""
    labels = event.resource
    if "prefect.state-name" not in labels:
        return None
    return {
        "name": labels.get("prefect.state-name"),
        "type": labels.get("prefect.state-type"),
        "message": labels.get("prefect.state-message", ""),
        "timestamp": labels.get("prefect.state-timestamp"),
    }


COMPILED_CACHE_SIZE = 256
"""Compiled templates kept by a Renderer (the subjects and bodies of the automations in use)."""


class Renderer:
    """Renders templates with links to the UI at ``ui_base`` (RUNLOG_UI_URL, or the server's own URL).

    Compiling a template costs over a millisecond of the event loop's time and rendering a
    compiled one a hundredth of that, and the same few subjects and bodies are rendered for every
    alert (three channels of a thousand failing runs: three thousand renders of one body), so the
    compiled templates are kept, the least recently used dropped past ``cache_size``. A compiled
    template holds no state between renders; each render gets its own context.
    """

    def __init__(self, ui_base: str, *, cache_size: int = COMPILED_CACHE_SIZE) -> None:
        self._env = _environment(ui_base)
        self._compiled: OrderedDict[str, Template] = OrderedDict()
        self._cache_size = cache_size

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        """Raises TemplateFailed when rendering fails (the sandbox refusing an access, say)."""
        if "{{" not in template and "{%" not in template:
            return template
        try:
            return self._template(template).render(dict(context))
        except Exception as exc:  # a user's template may fail in any way; the caller records why
            raise TemplateFailed(f"{type(exc).__name__}: {exc}") from None

    def _template(self, source: str) -> Template:
        compiled = self._compiled.get(source)
        if compiled is not None:
            self._compiled.move_to_end(source)
            return compiled
        compiled = self._env.from_string(source)  # a syntax error raises here, and is not kept
        self._compiled[source] = compiled
        if len(self._compiled) > self._cache_size:
            self._compiled.popitem(last=False)
        return compiled


def context(
    *,
    event: ReceivedEvent | None = None,
    automation: Mapping[str, Any] | None = None,
    flow: Mapping[str, Any] | None = None,
    flow_run: Mapping[str, Any] | None = None,
    deployment: Mapping[str, Any] | None = None,
    work_pool: Mapping[str, Any] | None = None,
    work_queue: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Prefect's template context from plain data; what is not given renders as empty."""
    run = None
    if flow_run is not None:
        run = Obj("flow-run", flow_run)
        state = fired_state(event) if event is not None else None
        if state is not None:
            run["state"] = {**(flow_run.get("state") or {}), **state}
    return {
        "automation": Obj("automation", automation) if automation is not None else None,
        "event": msgspec.to_builtins(event) if event is not None else None,
        "labels": dict(labels or {}),
        "flow": Obj("flow", flow) if flow is not None else None,
        "flow_run": run,
        "deployment": Obj("deployment", deployment) if deployment is not None else None,
        "work_pool": Obj("work-pool", work_pool) if work_pool is not None else None,
        "work_queue": Obj("work-queue", work_queue) if work_queue is not None else None,
    }


__all__ = [
    "DEFAULT_FLOW_RUN_BODY", "DEFAULT_FLOW_RUN_SUBJECT", "Obj", "Renderer", "TemplateFailed", "TemplateInvalid",
    "check", "context", "fired_state",
]
