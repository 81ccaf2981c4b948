"""Bodies of /flow_runs/{id}/input and /flow_runs/{id}/resume, with Prefect 3.8's names."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from .filters import NonNegative


class FlowRunInputCreate(msgspec.Struct, kw_only=True):
    key: str
    value: str
    sender: str | None = None


class FlowRunInputFilter(msgspec.Struct, kw_only=True):
    prefix: str
    limit: NonNegative = 1
    exclude_keys: list[str] = msgspec.field(default_factory=list)


class FlowRunInput(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    flow_run_id: UUID
    key: str
    value: str
    sender: str | None


class ResumeFlowRun(msgspec.Struct, kw_only=True):
    run_input: dict[str, Any] | None = None
