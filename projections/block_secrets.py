"""A block document's values and its secrets: sealing at rest, masking on read, keeping on update.

A document's own values (nested documents excluded) are stored as one Fernet token of their JSON,
in the log's event and in the read model alike, so no value, secret or not, is ever in clear in
the database. The schema's ``secret_fields`` name the secret values by dotted path; a ``*`` stands
for every key below that point (``secrets.*``). Reads show each as ``********`` unless secrets
are asked for, and an update that sends ``********`` back for a secret keeps the stored value
(so a form that round-trips a masked document never overwrites its secrets with stars).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken

MASK = "********"
"""Prefect's obfuscate(): eight stars, whatever the value (its tails are not shown)."""

Path = tuple[str, ...]


class SealBroken(Exception):
    """A stored token that the configured key cannot open: a different key than the data's."""


def seal(cipher: Fernet, values: dict[str, Any]) -> str:
    return cipher.encrypt(msgspec.json.encode(values)).decode()


def unseal(cipher: Fernet, token: str) -> dict[str, Any]:
    try:
        return msgspec.json.decode(cipher.decrypt(token.encode()))
    except InvalidToken:
        # No detail: the token's text says nothing useful and must not travel in messages.
        raise SealBroken(
            "a block document cannot be decrypted with the configured encryption key "
            "(RUNLOG_SERVER_ENCRYPTION_KEY, or the key stored in the database, differs from the key the "
            "data was written with; after a restore, put the old key back with "
            "`runlog database encryption-key --set KEY`)"
        ) from None


def flatten(values: dict[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Nested dicts as {path: leaf}; an empty dict is a leaf (Prefect's dict_to_flatdict)."""
    flat: dict[Path, Any] = {}
    for key, value in values.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


def unflatten(flat: dict[Path, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path, value in flat.items():
        node = values
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return values


def _secret_paths(flat: dict[Path, Any], secret_fields: Iterable[str]) -> set[Path]:
    """The paths of ``flat`` that hold secrets: a field named exactly, or anything under the part
    of a wildcard path before its ``*`` (an empty ``secrets`` dict included, as in Prefect)."""
    found: set[Path] = set()
    for field in secret_fields:
        secret = tuple(field.split("."))
        if flat.get(secret) is not None:
            found.add(secret)
        elif "*" in secret:
            head = secret[: secret.index("*")]
            found.update(path for path in flat if path[: len(head)] == head)
    return found


def mask(values: dict[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """``values`` with every secret shown as ``********``."""
    flat = flatten(values)
    for path in _secret_paths(flat, secret_fields):
        flat[path] = MASK
    return unflatten(flat)


def keep_masked_secrets(sent: dict[str, Any], current: dict[str, Any], secret_fields: Iterable[str]) -> dict[str, Any]:
    """``sent`` with each secret that came back as ``********`` replaced by the stored value."""
    flat_sent, flat_current = flatten(sent), flatten(current)
    for path in _secret_paths(flat_sent, secret_fields) | _secret_paths(flat_current, secret_fields):
        if flat_sent.get(path) == MASK and path in flat_current:
            flat_sent[path] = flat_current[path]
    return unflatten(flat_sent)


__all__ = ["MASK", "SealBroken", "flatten", "keep_masked_secrets", "mask", "seal", "unflatten", "unseal"]
