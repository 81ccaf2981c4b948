"""``{{ name }}`` placeholders in a custom webhook's URL, params, body, headers and cookies,
substituted the way Prefect's ``apply_values`` does for ``CustomWebhookNotificationBlock``.

A string that is exactly one placeholder becomes the value itself (a number stays a number,
and an unknown name drops the key); anywhere else each placeholder is replaced by ``str(value)``.
Unlike Prefect, a ``{{ $NAME }}`` placeholder never reads the server's environment: ``check``
refuses it, as Prefect's block refuses it at save time. ``prefect.blocks.*`` and
``prefect.variables.*`` references are left as written, as Prefect leaves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .base import ChannelConfigError

# Prefect's PLACEHOLDER_CAPTURE_REGEX.
PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")
_LEFT_AS_IS = ("prefect.blocks.", "prefect.variables.")
UNSET = object()


def placeholders(template: Any) -> Iterator[str]:
    """Every placeholder name in TEMPLATE (a string, or dicts and lists of them)."""
    if isinstance(template, str):
        for _, name in PLACEHOLDER.findall(template):
            yield name
    elif isinstance(template, Mapping):
        for value in template.values():
            yield from placeholders(value)
    elif isinstance(template, list):
        for value in template:
            yield from placeholders(value)


def check(templates: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse a placeholder that names no known value, naming the field and the placeholder
    (never a value): Prefect's block raises the same at initialization."""
    for field, template in templates.items():
        for name in placeholders(template):
            if name not in allowed:
                raise ChannelConfigError(f"the channel's {field!r} uses an unknown placeholder {{{{ {name} }}}}")


def apply(template: Any, values: Mapping[str, Any]) -> Any:
    """TEMPLATE with VALUES substituted; UNSET for a lone placeholder with no value."""
    if isinstance(template, str):
        found = PLACEHOLDER.findall(template)
        if not found:
            return template
        if len(found) == 1 and found[0][0] == template and not found[0][1].startswith(("$", *_LEFT_AS_IS)):
            return values.get(found[0][1], UNSET)
        for full, name in found:
            if name.startswith(_LEFT_AS_IS):
                continue
            value = values.get(name, UNSET)
            template = template.replace(full, "" if value is UNSET else str(value))
        return template
    if isinstance(template, Mapping):
        applied = {key: apply(value, values) for key, value in template.items()}
        return {key: value for key, value in applied.items() if value is not UNSET}
    if isinstance(template, list):
        return [v for v in (apply(item, values) for item in template) if v is not UNSET]
    return template
