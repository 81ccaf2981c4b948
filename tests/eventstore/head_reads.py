"""Counting a store's head reads, for the tests of when following the log reads the head."""

from __future__ import annotations

from typing import Any


def counting_head_reads(store: Any, monkeypatch: Any) -> list[int]:
    """The heads ``store.head`` returns from now on, one per read."""
    reads: list[int] = []
    head = store.head

    async def counted() -> int:
        reads.append(await head())
        return reads[-1]

    monkeypatch.setattr(store, "head", counted)
    return reads
