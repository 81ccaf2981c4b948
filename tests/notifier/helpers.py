"""Shared by the notifier tests: a fixed "now", a delivery id, and a send with both filled in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID


from runlog.notifier.http import Attempt, Message, Session, send

NOW = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
DELIVERY = UUID("0b9d2f7e-56f3-4c1e-9a8e-0d6c1c7b2a10")
MESSAGE = Message(body='Flow run etl/brave-fox entered state `Failed`.\nState message: "boom" ✓', subject="Run failed")


async def deliver(session: Session, kind: str, data: dict[str, Any], base: str | None = None,
                  message: Message = MESSAGE, **kwargs: Any) -> Attempt:
    from runlog.notifier.channels import channel_kind

    base_urls = {channel_kind(kind).slug: base} if base else None
    return await send(session, kind, data, message, delivery_id=DELIVERY, now=NOW, base_urls=base_urls, **kwargs)
