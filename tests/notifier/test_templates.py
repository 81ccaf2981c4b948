"""Notification templates: Prefect's default message for a sample run, the state that fired,
the ui_url filter, the sandbox, and templates refused when they do not parse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from runlog.notifier import templates
from runlog.schema.automations import ReceivedEvent

RUN_ID = "5c2f3c2a-1b7e-4d1e-9f3a-0a6b7c8d9e01"
FLOW_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def failed_event(message: str = "Flow run encountered an exception: ValueError('boom')") -> ReceivedEvent:
    return ReceivedEvent(
        occurred=datetime(2026, 3, 1, 12, 0, tzinfo=UTC), event="prefect.flow-run.Failed",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{RUN_ID}", "prefect.resource.name": "brave-otter",
            "prefect.state-name": "Failed", "prefect.state-type": "FAILED", "prefect.state-message": message,
            "prefect.state-timestamp": "2026-03-01T12:00:00.000000Z", "prefect.run-count": "1",
        },
        related=[{"prefect.resource.id": f"prefect.flow.{FLOW_ID}", "prefect.resource.role": "flow"}],
        id=uuid.uuid4(),
    )


def sample(**overrides) -> dict:
    run = {"id": RUN_ID, "name": "brave-otter", "flow_id": FLOW_ID, "tags": ["daily-etl"],
           # The run has moved on since (a retry made it Running): the message shows the state that fired.
           "state": {"name": "Running", "type": "RUNNING", "message": "", "timestamp": "2026-03-01T12:00:05Z"}}
    return templates.context(event=failed_event(), flow={"id": FLOW_ID, "name": "nightly-etl"}, flow_run=run,
                             automation={"id": "a1", "name": "etl failures"}, **overrides)


def test_prefects_default_message_renders_for_a_sample_run_with_the_state_that_fired() -> None:
    rendered = templates.Renderer("http://runlog.example:4200").render(templates.DEFAULT_FLOW_RUN_BODY, sample())
    assert rendered == (
        "Flow run nightly-etl/brave-otter entered state `Failed` at 2026-03-01T12:00:00.000000Z.\n"
        "\n"
        f"Flow ID: {FLOW_ID}\n"
        f"Flow run ID: {RUN_ID}\n"
        f"Flow run URL: http://runlog.example:4200/runs/flow-run/{RUN_ID}\n"
        "State message: Flow run encountered an exception: ValueError('boom')"
    )


@pytest.mark.parametrize(("template", "expected"), [
    ("{{ flow|ui_url }}", f"http://ui/flows/flow/{FLOW_ID}"),
    ("{{ automation|ui_url }}", "http://ui/automations/automation/a1"),
    ("{{ deployment|ui_url }}", "None"),  # none given: nothing to link to
    ("{{ event.event }} {{ event.resource['prefect.state-type'] }}", "prefect.flow-run.Failed FAILED"),
    ("{{ labels['prefect.resource.id'] }}", "x"),
    ("{{ work_queue.name }}|{{ nothing.at.all }}|", "||"),  # missing values render empty, as in Prefect
    ("{% for tag in flow_run.tags %}#{{ tag }}{% endfor %}", "#daily-etl"),
    ("no template at all", "no template at all"),
])
def test_context_names_and_filters(template: str, expected: str) -> None:
    rendered = templates.Renderer("http://ui/").render(template, sample(labels={"prefect.resource.id": "x"}))
    assert rendered == expected


@pytest.mark.parametrize("template", [
    "{{ flow_run.tags.append('x') }}",  # immutable: no mutating methods
    "{{ flow_run.state.update({'name': 'Completed'}) }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for i in range(1000) %}{% endfor %}",
])
def test_the_sandbox_refuses_unsafe_access(template: str) -> None:
    with pytest.raises(templates.TemplateFailed):
        templates.Renderer("http://ui").render(template, sample())


def test_private_attributes_are_not_readable() -> None:
    assert templates.Renderer("http://ui").render("[{{ flow._kind }}][{{ flow.__class__ }}]", sample()) == "[][]"


@pytest.mark.parametrize(("template", "words"), [
    ("{{ flow_run.name", "not a valid template"),
    ("{% if %}x{% endif %}", "not a valid template"),
    ("{{ x | no_such_filter }}", "No filter named 'no_such_filter'"),
    ("{% for a in b %}{% for c in d %}{% for e in f %}{% endfor %}{% endfor %}{% endfor %}", "nests for loops"),
    ("{% for a in b %}{% endfor %}" * 11, "at most 10"),
])
def test_templates_that_do_not_parse_are_refused(template: str, words: str) -> None:
    with pytest.raises(templates.TemplateInvalid, match="'body'") as raised:
        templates.check(template, "body")
    assert words in str(raised.value)


def test_the_default_message_parses() -> None:
    templates.check(templates.DEFAULT_FLOW_RUN_BODY)
    templates.check(templates.DEFAULT_FLOW_RUN_SUBJECT)


def test_a_template_rendered_again_uses_each_renders_own_context() -> None:
    renderer = templates.Renderer("http://ui")
    first = renderer.render("{{ flow_run.name }} in {{ flow.name }}", sample())
    other = templates.context(flow={"id": FLOW_ID, "name": "other-flow"}, flow_run={"id": RUN_ID, "name": "calm-heron"})
    assert renderer.render("{{ flow_run.name }} in {{ flow.name }}", other) == "calm-heron in other-flow"
    assert first == "brave-otter in nightly-etl"


def test_compiled_templates_are_kept_up_to_the_cache_size_and_still_render_once_dropped() -> None:
    renderer = templates.Renderer("http://ui", cache_size=2)
    sources = [f"{n}: {{{{ flow_run.name }}}}" for n in range(3)]
    for source in sources * 2:
        assert renderer.render(source, sample()) == source.replace("{{ flow_run.name }}", "brave-otter")
    assert len(renderer._compiled) == 2


def test_a_template_that_fails_to_compile_fails_every_time_and_is_not_kept() -> None:
    renderer = templates.Renderer("http://ui")
    for _ in range(2):
        with pytest.raises(templates.TemplateFailed):
            renderer.render("{{ flow_run.name", sample())
    assert not renderer._compiled
