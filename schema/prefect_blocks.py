"""The block types and schemas Prefect 3.8.8's server registers when it starts, which runlog
registers too (commands/block_catalogue.py), so that the UI's Blocks catalogue is as full on a new
runlog as on a new Prefect server.

prefect_blocks.json is what a fresh Prefect server's /block_types/filter and
/block_schemas/filter answer, without ids and times: each type's name, slug, logo and
documentation URLs, description, code example and is_protected (Prefect protects Secret, Webhook
and Local File System), and each schema's type slug, checksum, fields, capabilities and version,
oldest first. Written by tools/prefect_block_catalogue.py (which says how to regenerate it);
tests/compat/test_block_catalogue.py compares a fresh runlog with a fresh Prefect server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class BuiltinType:
    name: str
    slug: str
    logo_url: str | None
    documentation_url: str | None
    description: str | None
    code_example: str | None
    is_protected: bool


@dataclass(frozen=True)
class BuiltinSchema:
    block_type_slug: str
    checksum: str
    fields: dict[str, Any]
    capabilities: list[str]
    version: str


@dataclass(frozen=True)
class BuiltinBlocks:
    types: tuple[BuiltinType, ...]
    schemas: tuple[BuiltinSchema, ...]
    """Oldest first: in the order to register them."""


@cache
def builtin_blocks() -> BuiltinBlocks:
    raw = json.loads(resources.files(__package__).joinpath("prefect_blocks.json").read_text(encoding="utf-8"))
    return BuiltinBlocks(
        types=tuple(BuiltinType(**entry) for entry in raw["block_types"]),
        schemas=tuple(BuiltinSchema(**entry) for entry in raw["block_schemas"]),
    )


__all__ = ["BuiltinBlocks", "BuiltinSchema", "BuiltinType", "builtin_blocks"]
