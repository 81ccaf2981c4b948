"""Answers of /api/runlog/deliveries, the notifier's delivery log (runlog's own API)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class DeliveryAttempt(msgspec.Struct, kw_only=True):
    attempt: int
    started: datetime
    finished: datetime
    duration_ms: float
    status_code: int | None
    outcome: str
    """sent, retry, permanent or gone."""
    excerpt: str | None
    """The start of the receiver's answer, redacted."""
    error: str | None
    next_attempt_at: datetime | None


class DeliverySummary(msgspec.Struct, kw_only=True):
    id: UUID
    status: str
    """pending, retrying, sent or dead."""
    rule_id: UUID
    rule_name: str | None
    action_index: int
    channel_id: UUID
    event_id: UUID
    flow_run_id: UUID | None
    subject: str
    attempts: int
    last_status_code: int | None
    next_attempt_at: datetime | None
    created: datetime
    updated: datetime
    sent_at: datetime | None
    dead_reason: str | None


class Delivery(DeliverySummary, kw_only=True):
    body: str
    """The message as rendered, in full (a channel may have sent it truncated)."""
    resolve: bool
    attempt_log: list[DeliveryAttempt]


class RetriedDeliveries(msgspec.Struct, kw_only=True):
    retried: list[UUID]
