"""A channel kind's fields as command-line options, and their values as block document data.

Options come from the kind's block schema (schema/notification_blocks.py): ``--url``,
``--webhook-token``, ``--to-emails`` (repeatable), ``--include-image/--no-include-image``, and
``--secrets KEY=VALUE`` (repeatable) or ``--json-data '{...}'`` for dict fields. Every option is
optional to click and checked here, so a bad value or a missing field is one ``Error:`` line
naming it, not a usage screen. Values never appear in an error: some are secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

from runlog.schema.notification_blocks import ChannelKind

from ..errors import RunlogError

URL_FIELDS = frozenset({"url", "clickable_url", "avatar_url"})
"""Fields that are URLs a notification is sent to or links to: http(s) only."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string, boolean, integer, number, array, object
    required: bool
    default: Any
    has_default: bool
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")


def _type_of(spec: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The field's JSON type (the first that is not null) and its enum, if any."""
    for candidate in [spec, *spec.get("anyOf", [])]:
        kind = candidate.get("type")
        if kind and kind != "null":
            return kind, tuple(candidate.get("enum", ()))
    return "string", ()


def fields_of(kind: ChannelKind) -> list[Field]:
    required = set(kind.fields.get("required", []))
    properties = kind.fields.get("properties", {})
    found = []
    for name, spec in sorted(properties.items(), key=lambda item: item[1].get("position", 0)):
        json_type, choices = _type_of(spec)
        found.append(Field(
            name=name, kind=json_type, required=name in required, default=spec.get("default"),
            has_default="default" in spec, choices=choices, help=spec.get("description", ""),
        ))
    return found


def options(kind: ChannelKind) -> list[click.Option]:
    made = []
    for field in fields_of(kind):
        text = field.help.split("\n")[0]
        if field.choices:
            text += f" One of: {', '.join(field.choices)}."
        if field.required:
            text += " (required)"
        if field.kind == "boolean":
            flags = f"{field.option}/--no-{field.option[2:]}"
            made.append(click.Option([flags, field.name], default=None, help=text))
        elif field.kind in ("array", "object"):
            if field.kind == "object":
                text += " KEY=VALUE, repeatable, or one JSON object."
            else:
                text += " Repeatable."
            made.append(click.Option([field.option, field.name], multiple=True, help=text))
        else:
            made.append(click.Option([field.option, field.name], default=None, help=text))
    return made


def _convert(field: Field, raw: Any) -> Any:
    where = f"{field.option}"
    if field.kind == "boolean":
        return bool(raw)
    if field.kind == "integer":
        try:
            return int(raw)
        except ValueError:
            raise RunlogError(f"{where} must be a whole number") from None
    if field.kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise RunlogError(f"{where} must be a number") from None
    if field.kind == "array":
        return [item for value in raw for item in ([value] if value else [])]
    if field.kind == "object":
        return _object(where, raw)
    if field.choices and raw not in field.choices:
        raise RunlogError(f"{where} must be one of {', '.join(field.choices)}")
    if field.name in URL_FIELDS and not str(raw).lower().startswith(("http://", "https://")):
        raise RunlogError(f"{where} must be an http:// or https:// URL")
    return raw


def _object(where: str, raw: tuple[str, ...]) -> dict[str, Any]:
    if len(raw) == 1 and raw[0].lstrip().startswith("{"):
        try:
            value = json.loads(raw[0])
        except ValueError:
            raise RunlogError(f"{where} is not a valid JSON object") from None
        if not isinstance(value, dict):
            raise RunlogError(f"{where} is not a valid JSON object")
        return value
    pairs: dict[str, Any] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RunlogError(f"{where} takes KEY=VALUE (or one JSON object)")
        pairs[key] = value
    return pairs


def data_for(kind: ChannelKind, given: dict[str, Any], *, name: str) -> dict[str, Any]:
    """The document's data for the options given; defaults filled in, as the Prefect client
    saves a block with every field. Raises RunlogError naming a missing or bad field."""
    data: dict[str, Any] = {}
    for field in fields_of(kind):
        raw = given.get(field.name)
        sent = raw not in (None, ())
        if sent:
            data[field.name] = _convert(field, raw)
        elif field.name == "name" and kind.kind == "webhook":
            data[field.name] = name  # the custom webhook's own name: the channel's, unless given
        elif field.required:
            raise RunlogError(f"{kind.kind} channels need {field.option}")
        elif field.has_default:
            data[field.name] = field.default
        elif field.kind == "object":
            data[field.name] = {}  # a SecretDict's default: an empty dict
    return data


__all__ = ["Field", "data_for", "fields_of", "options"]
