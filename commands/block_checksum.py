"""A block schema's checksum, computed exactly as the Prefect client computes it.

The client looks a schema up by this checksum before registering it, and a channel made by
``runlog channel create`` must be found by the stock client (and the reverse), so the bytes
hashed are Prefect's: the schema without its ``secret_fields``, with only the definitions that
are not other blocks, dumped by the standard json module with sorted keys inside Prefect's
``hash_objects`` envelope ``[[fields], {}]``, hashed with SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _without(key: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: _without(key, v) for k, v in value.items() if k != key}


def _references(value: Any) -> list[Any]:
    """Every ``$ref`` value anywhere in ``value``."""
    found: list[Any] = []
    if isinstance(value, dict):
        if ref := value.get("$ref"):
            found.append(ref)
        for item in value.values():
            found.extend(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_references(item))
    return found


def _plain_definitions(node: Any, definitions: dict[str, Any], seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The definitions ``node`` reaches that are not blocks (a block's has a block_type_slug)."""
    found: dict[str, Any] = {}
    for ref in _references(node):
        if not isinstance(ref, str):
            continue
        key = ref.replace("#/definitions/", "")
        definition = definitions.get(key)
        if definition and definition.get("block_type_slug") is None and key not in seen:
            found = {**found, key: definition, **_plain_definitions(definition, definitions, seen | {key})}
    return found


def schema_checksum(fields: dict[str, Any]) -> str:
    hashed = _without("secret_fields", fields)
    if hashed.get("definitions"):
        plain = _plain_definitions(hashed, hashed["definitions"])
        if plain:
            hashed["definitions"] = plain
        else:
            hashed.pop("definitions")
    text = json.dumps([[hashed], {}], sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


__all__ = ["schema_checksum"]
