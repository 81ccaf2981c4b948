"""Parameter templates (commands/parameter_templates.py) resolve as Prefect 3.8.8's own hydrate
does: each case is run through Prefect's function (installed with the test extra) and ours, and
the results, or the error messages, must agree. No database."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prefect.utilities.schema_tools import hydration as prefect_hydration

from runlog.commands import parameter_templates as templates

VARIABLES = {"greeting": "hello", "limits": {"max": 3}}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("plain values pass through", {"a": 1, "b": [1, "x", {"c": None}]}),
    ("none passes its value on", {"a": {"__prefect_kind": "none", "value": {"b": {"__prefect_kind": "json", "value": "[1, 2]"}}}}),
    ("none without a value", {"a": {"__prefect_kind": "none"}}),
    ("json parses a string", {"a": {"__prefect_kind": "json", "value": '{"x": [1, 2.5, null]}'}}),
    ("json keeps a non-string", {"a": {"__prefect_kind": "json", "value": 7}}),
    ("json hydrates a dict value", {"a": {"__prefect_kind": "json", "value": {"__prefect_kind": "none", "value": "[3]"}}}),
    ("json of bad text", {"a": {"__prefect_kind": "json", "value": "{bad"}}),
    ("json without a value is removed", {"a": {"__prefect_kind": "json"}, "b": [1, {"__prefect_kind": "json"}]}),
    ("a whole json without a value", {"__prefect_kind": "json"}),
    ("jinja renders", {"a": {"__prefect_kind": "jinja", "template": "{{ 6 * 7 }}-{% for i in range(3) %}{{ i }}{% endfor %}"}}),
    ("jinja without markers is itself", {"a": {"__prefect_kind": "jinja", "template": "just text"}}),
    ("jinja undefined names render empty", {"a": {"__prefect_kind": "jinja", "template": "[{{ flow_run.name }}]"}}),
    ("jinja that does not parse", {"a": {"__prefect_kind": "jinja", "template": "{{ x"}}),
    ("jinja without a template", {"a": {"__prefect_kind": "jinja"}}),
    ("jinja failing to render", {"a": {"__prefect_kind": "jinja", "template": "{{ 1 / 0 }}"}}),
    ("jinja with too big a range", {"a": {"__prefect_kind": "jinja", "template": "{% for i in range(1000) %}{% endfor %}"}}),
    ("jinja nesting loops too deep", {"a": {"__prefect_kind": "jinja", "template":
        "{% for a in [1] %}{% for b in [1] %}{% for c in [1] %}{% endfor %}{% endfor %}{% endfor %}"}}),
    ("jinja with too many loops", {"a": {"__prefect_kind": "jinja", "template": "{% for a in [1] %}{% endfor %}" * 11}}),
    ("jinja in the sandbox", {"a": {"__prefect_kind": "jinja", "template": "{{ ''.__class__.__mro__ }}"}}),
    ("json of rendered jinja", {"a": {"__prefect_kind": "json", "value": {"__prefect_kind": "jinja", "template": "[{{ 1 + 1 }}]"}}}),
    ("a variable", {"a": {"__prefect_kind": "workspace_variable", "variable_name": "limits"}}),
    ("a missing variable", {"a": {"__prefect_kind": "workspace_variable", "variable_name": "nope"}}),
    ("a variable without a name is removed", {"a": {"__prefect_kind": "workspace_variable"}, "b": 2}),
    ("an unknown kind is its value", {"a": {"__prefect_kind": "mystery", "value": 5}, "b": {"__prefect_kind": "other"}}),
]


def _prefect(parameters: dict[str, Any], **options: Any) -> Any:
    ctx = prefect_hydration.HydrationContext(workspace_variables=VARIABLES, **options)
    logging.disable(logging.WARNING)  # Prefect logs a failed render with its traceback
    try:
        return prefect_hydration.hydrate(parameters, ctx)
    except prefect_hydration.HydrationError as exc:
        return ("error", type(exc).__name__, str(exc))
    finally:
        logging.disable(logging.NOTSET)


def _ours(parameters: dict[str, Any], **options: Any) -> Any:
    try:
        return templates.hydrate(parameters, templates.Context(variables=VARIABLES, **options))
    except templates.HydrationError as exc:
        return ("error", exc.kind, str(exc))


@pytest.mark.parametrize(("name", "parameters"), CASES, ids=[c[0] for c in CASES])
def test_rendering_and_raising_agrees_with_prefects_hydrate(name: str, parameters: dict[str, Any]) -> None:
    """As a run from a deployment is hydrated: Jinja rendered, variables read, the first problem raised."""
    assert _ours(parameters, raise_on_error=True, render_jinja=True, render_variables=True) == _prefect(
        parameters, raise_on_error=True, render_jinja=True, render_workspace_variables=True,
    )


@pytest.mark.parametrize(("name", "parameters"), CASES, ids=[c[0] for c in CASES])
def test_checking_without_rendering_leaves_the_same_problems_in_place(name: str, parameters: dict[str, Any]) -> None:
    """As an automation's parameters are checked: nothing rendered or raised; each problem stays
    where it was, with Prefect's message."""

    def shown(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shown(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shown(v) for v in value]
        if isinstance(value, prefect_hydration.HydrationError | templates.HydrationError):
            return ("error", str(value))
        if isinstance(value, prefect_hydration.ValidJinja | templates.ValidJinja):
            return ("jinja", value.template)
        if isinstance(value, prefect_hydration.WorkspaceVariable):
            return ("variable", value.variable_name)
        if isinstance(value, templates.WorkspaceVariable):
            return ("variable", value.name)
        return value

    assert shown(_ours(parameters)) == shown(_prefect(parameters))


def test_the_variables_a_first_pass_needs_are_found() -> None:
    parameters = {"a": {"__prefect_kind": "workspace_variable", "variable_name": "x"},
                  "b": [{"__prefect_kind": "none", "value": {"__prefect_kind": "workspace_variable", "variable_name": "y"}}],
                  "c": {"__prefect_kind": "workspace_variable", "variable_name": "x"}}
    assert templates.variable_names(parameters) == ["x", "y"]
    assert templates.has_templates(parameters) and not templates.has_templates({"a": [1, {"b": 2}]})


V1_CASES = [
    {"a": "{{ event.id }}", "b": "Hello {{ flow_run.name }}", "c": "no template", "d": 3},
    {"nested": {"x": "{{ 1 + 1 }}", "kind": {"__prefect_kind": "jinja", "template": "{{ y }}"}}},
    {"items": ["{{ a }}", "plain", {"x": "{% if a %}1{% endif %}"}, {"__prefect_kind": "jinja", "template": "{{ z }}"}]},
]


@pytest.mark.parametrize("parameters", V1_CASES)
def test_v1_templates_are_upgraded_as_prefects_run_deployment_upgrades_them(parameters: dict[str, Any]) -> None:
    import copy

    from prefect.server.events.actions import RunDeployment

    theirs = copy.deepcopy(parameters)
    RunDeployment._upgrade_v1_templates(theirs)
    assert templates.upgrade_v1_templates(parameters) == theirs


def test_an_automations_parameters_have_the_problems_prefect_finds() -> None:
    from prefect.server.events.actions import RunDeployment

    parameters = {"a": {"__prefect_kind": "json", "value": "{"}, "b": {"c": {"__prefect_kind": "jinja", "template": "{{"}},
                  "d": [{"__prefect_kind": "json", "value": "{"}], "e": {"__prefect_kind": "none"}, "f": "{{ ok }}"}
    upgraded = templates.upgrade_v1_templates(parameters)
    ours = templates.problems(templates.hydrate(upgraded, templates.Context()))
    theirs = RunDeployment._collect_errors(prefect_hydration.hydrate(upgraded, prefect_hydration.HydrationContext()))
    assert {k: str(v) for k, v in ours.items()} == {k: str(v) for k, v in theirs.items()}
    assert set(ours) == {"a", "b.c", "e"}
