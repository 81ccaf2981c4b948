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
    parts_sent: int = 0
    """For a channel that sends one request per recipient (Twilio, Mattermost): how many
    recipients had the message after this attempt (a retry skips them)."""


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
    """The message resolves an alert (PagerDuty, Opsgenie) rather than opening one."""
    resolves: UUID | None = None
    """For a resolve: the delivery that opened the alert (its id is the alert's key)."""
    attempt_log: list[DeliveryAttempt]


class RetriedDeliveries(msgspec.Struct, kw_only=True):
    retried: list[UUID]
