"""Events and log lines as JSON lines: the format of ``runlog events export/import/push``.

An export holds the events first, one stored event per line, then the run log lines, one per
line, each marked ``"record": "log"`` (schemas/logs.py ExportedLog); a line without that mark
is an event, so files written before log lines were exported read as they always did.

Events are written with the payload inline as JSON when it is JSON or a runlog event
(stored as MessagePack, rendered by ``schema.events.to_json``) and base64 otherwise. Imported
JSON payloads are stored as the JSON they are; the event codec reads both forms. Readers accept lines without position, version or recorded_at, so a
hand-written file can be imported too.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from runlog.eventstore import NewEvent, RecordedEvent
from runlog.schema import events as catalogue

from .errors import RunlogError
from .schemas.logs import ExportedLog


# What base64.b64decode(validate=True) takes: whole quads, padded.
Base64 = Annotated[str, msgspec.Meta(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]


class ExportedEvent(msgspec.Struct, omit_defaults=True):
    """One line of an export file."""

    stream_id: str
    id: UUID
    type: str
    position: int | None = None
    version: int | None = None
    recorded_at: datetime | None = None
    data: msgspec.Raw = msgspec.Raw(b"")  # empty: absent (a JSON payload is never empty)
    data_base64: Base64 | None = None


_line_encoder = msgspec.json.Encoder()
_line_decoder = msgspec.json.Decoder(ExportedEvent)
_log_decoder = msgspec.json.Decoder(ExportedLog)


class _Record(msgspec.Struct):
    """Just the mark that tells a log line from an event."""

    record: str = "event"


_record_decoder = msgspec.json.Decoder(_Record)


def to_line(event: RecordedEvent) -> bytes:
    line = ExportedEvent(
        stream_id=event.stream_id, id=event.id, type=event.type, position=event.position,
        version=event.version, recorded_at=event.recorded_at,
    )
    as_json = _as_json(event.data)
    if as_json is None:
        line.data_base64 = base64.b64encode(event.data).decode("ascii")
    else:
        line.data = msgspec.Raw(as_json)
    return _line_encoder.encode(line) + b"\n"


def _as_json(data: bytes) -> bytes | None:
    """The payload as JSON when it can be written as JSON without losing anything."""
    try:
        msgspec.json.decode(data)
        return data
    except msgspec.DecodeError:
        pass
    try:
        return catalogue.to_json(data)
    except msgspec.DecodeError:  # includes ValidationError: not an event runlog knows
        return None


def log_to_line(log: ExportedLog) -> bytes:
    return _line_encoder.encode(log) + b"\n"


def read_line(line: bytes, number: int) -> ExportedEvent | ExportedLog:
    """One line of an export file: an event or a log line."""
    # Only a line that mentions the mark is decoded twice; an event line that mentions it
    # (in its payload, say) is still read as an event, since the mark is looked up at the top.
    if b'"record"' in line:
        try:
            record = _record_decoder.decode(line).record
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RunlogError(f"line {number}: not an exported event or log line: {exc}") from None
        if record == "log":
            try:
                return _log_decoder.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise RunlogError(f"line {number}: not an exported log line: {exc}") from None
        if record != "event":
            raise RunlogError(f"line {number}: unknown record {record!r}; expected 'log' or none (an event)")
    return from_line(line, number)


def from_line(line: bytes, number: int) -> ExportedEvent:
    try:
        event = _line_decoder.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RunlogError(f"line {number}: not an exported event: {exc}") from None
    if bool(len(event.data)) == (event.data_base64 is not None):
        raise RunlogError(f"line {number}: needs exactly one of 'data' and 'data_base64'")
    return event


def as_new_event(event: ExportedEvent, number: int) -> NewEvent:
    return NewEvent(type=event.type, data=payload(event, number), id=event.id)


def payload(event: ExportedEvent, number: int) -> bytes:
    if len(event.data):
        return bytes(event.data)
    try:
        return base64.b64decode(event.data_base64 or "", validate=True)
    except ValueError as exc:
        raise RunlogError(f"line {number}: data_base64 is not base64: {exc}") from None
