"""Bodies of /logs (Prefect 3.8 shapes): LogCreate, LogFilter and its sort, and Log.

Numbers are bounded to what a 64-bit integer column holds, so no value a client can send
reaches the database as an overflow. Filters forbid unknown fields, as Prefect's do.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from runlog.commands.run_logs import CopiedLogLine, Int64, LogLine

MAX_LIMIT = 200  # Prefect's PREFECT_SERVER_API_DEFAULT_LIMIT, which is also its maximum


class LogCreate(LogLine, kw_only=True, forbid_unknown_fields=True):
    # The client sends it only to Prefect Cloud; accepted (and not kept) so a worker's logs
    # are never refused for it.
    worker_id: UUID | None = None


class LogFilterLevel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ge_: Int64 | None = None
    le_: Int64 | None = None


class LogFilterTimestamp(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    before_: datetime | None = None
    after_: datetime | None = None


class LogFilterFlowRunId(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    any_: list[UUID] | None = None


class LogFilterTaskRunId(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class LogFilterTextSearch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: Annotated[str, msgspec.Meta(max_length=200)]


class LogFilter(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    operator: Literal["and_", "or_"] = "and_"
    level: LogFilterLevel | None = None
    timestamp: LogFilterTimestamp | None = None
    flow_run_id: LogFilterFlowRunId | None = None
    task_run_id: LogFilterTaskRunId | None = None
    text: LogFilterTextSearch | None = None


class LogSort(enum.Enum):
    TIMESTAMP_ASC = "TIMESTAMP_ASC"
    TIMESTAMP_DESC = "TIMESTAMP_DESC"


class LogFilterRequest(msgspec.Struct, kw_only=True):
    """POST /logs/filter. Like Prefect's body parameters, unknown keys are ignored."""

    logs: LogFilter | None = None
    limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_LIMIT)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    sort: LogSort = LogSort.TIMESTAMP_ASC


class Log(msgspec.Struct, kw_only=True):
    id: UUID
    created: datetime
    updated: datetime
    name: str
    level: int
    message: str
    timestamp: datetime
    flow_run_id: UUID | None
    task_run_id: UUID | None


class ExportedLog(CopiedLogLine, kw_only=True, tag_field="record", tag="log"):
    """A stored log line as ``runlog events export`` writes it and push and import read it.

    It keeps its id, so importing it twice stores it once, and its ``created``, so a copy reads
    back as the original did; a line written by hand may leave ``created`` out (import time is
    used). The ``"record": "log"`` tag tells it apart from an event in an export file.
    """
