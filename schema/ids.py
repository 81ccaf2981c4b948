"""Ids as text, as stream names, text columns and derived ids hold them: ``str(uuid)``, made in C.

``uuid.UUID.__str__`` is Python code (a hex format and five slices), about five times slower
than msgspec's conversion, and an append turns several ids per event into text (the event's
id, its stream's name, a view's columns): an import of 20,000 runs made some 700,000 of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import msgspec

_to_builtins = msgspec.to_builtins


def id_text(value: object) -> str:
    """``str(value)``: a UUID's canonical hyphenated text, converted in C; anything else as str."""
    return _to_builtins(value) if isinstance(value, UUID) else str(value)


def id_texts(values: Iterable[UUID]) -> list[str]:
    """``[str(value) for value in values]`` for UUIDs, in one C call."""
    return _to_builtins(list(values))


__all__ = ["id_text", "id_texts"]
