"""Parameter templates: the ``{"__prefect_kind": ...}`` values of a deployment's or a run's
parameters, resolved as Prefect 3.8.8 hydrates them (prefect/utilities/schema_tools/hydration.py)
when a run is created from a deployment or an automation runs one.

Kinds: ``none`` (its ``value``, hydrated in turn), ``json`` (its ``value`` parsed when a string;
without a ``value`` the entry is removed), ``jinja`` (its ``template`` checked and, when rendering,
rendered in Jinja's immutable sandbox), ``workspace_variable`` (the variable's value; without a
``variable_name`` the entry is removed); any other kind is its ``value``. A problem is a
``HydrationError`` with Prefect's message: raised at the first one when ``raise_on_error``, else
left in place of the value (what an automation's check collects). Pure: the variables and the
Jinja context are given; ``variable_names`` finds the variables a first pass needs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jinja2 is imported when a template is first checked or rendered
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment

KIND = "__prefect_kind"

MAX_RANGE = 100
MAX_LOOPS = 10
MAX_LOOP_DEPTH = 2
"""Prefect's bounds on user templates: range() size, for-loops, and their nesting."""


@dataclass(frozen=True)
class Context:
    """What hydration may do: render Jinja (with ``jinja_context``), read ``variables`` (when
    ``render_variables``; else a variable stays a WorkspaceVariable), raise at a problem."""

    raise_on_error: bool = False
    render_jinja: bool = False
    jinja_context: Mapping[str, Any] = field(default_factory=dict)
    render_variables: bool = False
    variables: Mapping[str, Any] = field(default_factory=dict)


class Placeholder:
    """A value hydration could not give (yet): a problem, a template or variable left unrendered."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]


class Removed(Placeholder):
    """An entry hydration drops from its dict or list."""


class ValidJinja(Placeholder):
    def __init__(self, template: str) -> None:
        self.template = template


class WorkspaceVariable(Placeholder):
    def __init__(self, name: Any) -> None:
        self.name = name


class HydrationError(Placeholder, Exception):
    """A problem, with Prefect's message; ``kind`` is the name Prefect's error class has (an
    automation's failed action reports it)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


def _missing(kind: str, key: str) -> HydrationError:
    return HydrationError(kind, f"Missing '{key}' key in __prefect object")


def _invalid(kind: str, what: str, detail: str | None) -> HydrationError:
    return HydrationError(kind, f"{what}: {detail}" if detail else what)


# --- Jinja --------------------------------------------------------------------------------------

def _range(*args: int) -> range:
    bounded = range(*args)
    if len(bounded) > MAX_RANGE:
        raise OverflowError(f"Range too big. The sandbox blocks ranges larger than MAX_TEMPLATE_RANGE={MAX_RANGE}.")
    return bounded


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined)
    env.globals["range"] = _range
    return env


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    from jinja2 import nodes

    depth += isinstance(node, nodes.For)
    return max([depth, *(_loop_depth(child, depth) for child in node.iter_child_nodes())])


def _check_template(template: str) -> str | None:
    """Why Prefect refuses the template (its syntax, or too many or too deeply nested loops), or None."""
    from jinja2 import TemplateSyntaxError, nodes

    try:
        root = _environment().parse(template)
    except TemplateSyntaxError as exc:
        return str(exc)
    loops = list(root.find_all(nodes.For))
    if len(loops) > MAX_LOOPS:
        return f"Contains {len(loops)} for loops. Templates can contain no more than {MAX_LOOPS} for loops."
    depth = _loop_depth(root) if loops else 0
    if depth > MAX_LOOP_DEPTH:
        return (f"Contains nested for loops at a depth of {depth}. Templates can nest for loops no more "
                f"than {MAX_LOOP_DEPTH} loops deep.")
    return None


def render_template(template: str, context: Mapping[str, Any]) -> str:
    """The rendered template; a string without ``{{`` or ``{%`` is itself. Raises HydrationError."""
    if "{{" not in template and "{%" not in template:
        return template
    try:
        return _environment().from_string(template).render(dict(context))
    except Exception as exc:  # a user's template may fail in any way; Prefect reports it so
        raise _invalid("InvalidJinja", "Invalid jinja", f"Failed to render template due to the following error: {exc!r}") from None


# --- the kinds ----------------------------------------------------------------------------------

def _inner(obj: dict[str, Any], key: str, ctx: Context) -> Any:
    value = obj[key]
    return _hydrate(value, ctx) if isinstance(value, dict) else value


def _none(obj: dict[str, Any], ctx: Context) -> Any:
    return _hydrate(obj["value"], ctx) if "value" in obj else _missing("ValueNotFound", "value")


def _json(obj: dict[str, Any], ctx: Context) -> Any:
    if "value" not in obj:
        return Removed()  # what Prefect's UI leaves for an unset JSON field
    value = _inner(obj, "value", ctx)
    if isinstance(value, Placeholder) or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        return _invalid("InvalidJSON", "Invalid JSON", str(exc))


def _jinja(obj: dict[str, Any], ctx: Context) -> Any:
    if "template" not in obj:
        return _missing("TemplateNotFound", "template")
    template = _inner(obj, "template", ctx)
    if isinstance(template, Placeholder):
        return template
    if not isinstance(template, str):
        return _invalid("InvalidJinja", "Invalid jinja", "Can't compile non template nodes")
    problem = _check_template(template)
    if problem is not None:
        return _invalid("InvalidJinja", "Invalid jinja", problem)
    if not ctx.render_jinja:
        return ValidJinja(template)
    try:
        return render_template(template, ctx.jinja_context)
    except HydrationError as exc:
        return exc


def _workspace_variable(obj: dict[str, Any], ctx: Context) -> Any:
    if "variable_name" not in obj:
        return Removed()
    name = _inner(obj, "variable_name", ctx)
    if isinstance(name, Placeholder):
        return name
    if not ctx.render_variables:
        return WorkspaceVariable(name)
    if isinstance(name, str) and name in ctx.variables:
        return ctx.variables[name]
    return HydrationError("WorkspaceVariableNotFound", f"Variable '{name}' not found in workspace.")


_KINDS = {"none": _none, "json": _json, "jinja": _jinja, "workspace_variable": _workspace_variable}


def _hydrate(obj: Any, ctx: Context) -> Any:
    if isinstance(obj, dict):
        if KIND in obj:
            kind = obj[KIND]
            handler = _KINDS.get(kind) if isinstance(kind, str) else None
            if handler is None:
                return obj.get("value")
            result = handler(obj, ctx)
            if ctx.raise_on_error and isinstance(result, HydrationError):
                raise result
            return result
        hydrated = {key: _hydrate(value, ctx) for key, value in obj.items()}
        return {key: value for key, value in hydrated.items() if not isinstance(value, Removed)}
    if isinstance(obj, list):
        return [value for value in (_hydrate(item, ctx) for item in obj) if not isinstance(value, Removed)]
    return obj


def hydrate(parameters: dict[str, Any], ctx: Context) -> Any:
    """``parameters`` with their templates resolved; a removed whole is ``{}``. Raises
    HydrationError at the first problem when ``ctx.raise_on_error``."""
    result = _hydrate(parameters, ctx)
    return {} if isinstance(result, Removed) else result


def placeholders(hydrated: Any) -> list[Placeholder]:
    """Every placeholder a first (unrendered) pass left, depth first."""
    if isinstance(hydrated, Placeholder):
        return [hydrated]
    if isinstance(hydrated, dict):
        return [p for value in hydrated.values() for p in placeholders(value)]
    if isinstance(hydrated, list):
        return [p for value in hydrated for p in placeholders(value)]
    return []


def variable_names(parameters: dict[str, Any]) -> list[str]:
    """The workspace variables ``parameters`` name (what to read before rendering them)."""
    found = placeholders(hydrate(parameters, Context()))
    return list(dict.fromkeys(p.name for p in found if isinstance(p, WorkspaceVariable) and isinstance(p.name, str)))


def has_templates(parameters: dict[str, Any]) -> bool:
    """Whether ``parameters`` hold any ``__prefect_kind`` object (most do not: no work to do)."""
    if isinstance(parameters, dict):
        return KIND in parameters or any(has_templates(v) for v in parameters.values())
    if isinstance(parameters, list):
        return any(has_templates(v) for v in parameters)
    return False


def problems(hydrated: Any, prefix: str = "") -> dict[str, HydrationError]:
    """The problems an unrendered pass left, by their dotted path, as Prefect's check of an
    automation's run-deployment parameters collects them. Prefect's walk never looks inside
    lists (its loop over a list's items swaps index and item), so neither does this one."""
    if isinstance(hydrated, HydrationError):
        return {prefix: hydrated}
    found: dict[str, HydrationError] = {}
    if isinstance(hydrated, dict):
        for key, value in hydrated.items():
            if isinstance(value, dict):
                found.update(problems(value, f"{prefix}{key}."))
            elif isinstance(value, HydrationError):
                found[f"{prefix}{key}"] = value
    return found


def _wrap_v1(template: str) -> dict[str, Any]:
    """A plain string template as Prefect upgrades it: one ``{{ expression }}`` becomes JSON of
    the expression rendered ``| tojson`` (so its value keeps its type); text around
    expressions stays a string template."""
    stripped = template.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        inner = stripped[2:-2].strip()
        return {KIND: "json", "value": {KIND: "jinja", "template": "{{ " + inner + " | tojson }}"}}
    return {KIND: "jinja", "template": template}


def _maybe_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def upgrade_v1_templates(parameters: dict[str, Any]) -> dict[str, Any]:
    """An automation's parameters with their v1 templates (plain strings holding Jinja) made
    ``__prefect_kind`` objects, where Prefect's actions upgrade them: values of dicts without a
    kind, and the strings and dicts directly in their lists."""
    upgraded: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            upgraded[key] = value if KIND in value else upgrade_v1_templates(value)
        elif isinstance(value, list):
            upgraded[key] = [
                upgrade_v1_templates(item) if isinstance(item, dict)
                else _wrap_v1(item) if isinstance(item, str) and _maybe_template(item) else item
                for item in value
            ]
        elif isinstance(value, str) and _maybe_template(value):
            upgraded[key] = _wrap_v1(value)
        else:
            upgraded[key] = value
    return upgraded


__all__ = [
    "Context", "HydrationError", "Placeholder", "Removed", "ValidJinja", "WorkspaceVariable", "has_templates",
    "hydrate", "placeholders", "problems", "render_template", "upgrade_v1_templates", "variable_names",
]
