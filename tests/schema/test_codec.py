"""The event codec (schema/events.py): MessagePack with binary ids, JSON still readable."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
import pytest

from runlog.schema import events as catalogue

WHEN = datetime(2026, 11, 21, 12, 30, 5, 123456, tzinfo=UTC)


def state_changed(**overrides: object) -> catalogue.FlowRunStateChanged:
    run_id = uuid4()
    fields: dict = dict(
        flow_run_id=run_id,
        state=catalogue.State(
            id=uuid4(), type=catalogue.StateType.COMPLETED, name="Completed", timestamp=WHEN,
            message="All states completed.",
            state_details=catalogue.StateDetails(flow_run_id=run_id, transition_id=uuid4(), retriable=False),
            data={"type": "reference", "storage_key": "results/x.json", "sizes": [1, 2.5, None, True]},
        ),
        initial_state_type=catalogue.StateType.RUNNING,
        empirical_policy={"retries": 2, "retry_delay": [5, 10]},
    )
    fields.update(overrides)
    return catalogue.FlowRunStateChanged(**fields)


def test_encode_writes_messagepack_with_ids_as_16_bytes_and_decode_reads_it_back():
    event = state_changed()
    stored = catalogue.encode(event)
    raw = msgspec.msgpack.decode(stored)
    assert raw["kind"] == "flow_run.state_changed"
    assert raw["flow_run_id"] == event.flow_run_id.bytes
    assert raw["state"]["state_details"]["transition_id"] == event.state.state_details.transition_id.bytes
    assert catalogue.decode(stored) == event


def test_json_payloads_written_before_the_switch_still_decode_to_the_same_event():
    event = state_changed()
    as_json = msgspec.json.encode(event)
    assert as_json.startswith(b"{")
    assert catalogue.decode(as_json) == event


def test_values_under_any_read_back_as_the_json_the_client_sent_would():
    parameters = {"n": 3, "ratio": 0.25, "names": ["a", "b"], "when": "2026-11-21T00:00:00Z",
                  "id": "1c8d5e0a-0000-4000-8000-000000000000", "nested": {"ok": True, "none": None}}
    event = catalogue.FlowRunCreated(flow_run_id=uuid4(), flow_id=uuid4(), name="r", parameters=parameters,
                                     created=WHEN)
    decoded = catalogue.decode(catalogue.encode(event))
    assert decoded.parameters == parameters
    assert decoded.parameters == msgspec.json.decode(msgspec.json.encode(parameters))


def test_an_integer_beyond_64_bits_falls_back_to_json_for_that_event():
    event = catalogue.FlowRunCreated(flow_run_id=uuid4(), flow_id=uuid4(), name="big",
                                     parameters={"huge": 2**70}, created=WHEN)
    stored = catalogue.encode(event)
    assert stored.startswith(b"{")
    assert catalogue.decode(stored).parameters == {"huge": 2**70}


@pytest.mark.parametrize("data", [b"", b"\x00\xffbinary", b"not json", b'{"kind": "no.such.kind"}'])
def test_anything_that_is_not_a_stored_event_raises_decode_error(data):
    with pytest.raises(msgspec.DecodeError):
        catalogue.decode(data)


def test_to_json_shows_ids_as_text_and_keeps_fields_this_version_does_not_know():
    event = state_changed()
    raw = msgspec.msgpack.decode(catalogue.encode(event))
    raw["added_by_a_newer_runlog"] = {"x": 1}
    stored = msgspec.msgpack.encode(raw)

    shown = msgspec.json.decode(catalogue.to_json(stored))
    assert shown["flow_run_id"] == str(event.flow_run_id)
    assert shown["state"]["state_details"]["transition_id"] == str(event.state.state_details.transition_id)
    assert shown["state"]["timestamp"] == "2026-11-21T12:30:05.123456Z"
    assert shown["added_by_a_newer_runlog"] == {"x": 1}
    # The JSON form is itself a valid stored payload that decodes to the same event.
    assert catalogue.decode(catalogue.to_json(stored)) == event


def test_to_json_refuses_payloads_that_are_not_runlog_events():
    with pytest.raises(msgspec.DecodeError):
        catalogue.to_json(msgspec.msgpack.encode({"kind": "no.such.kind"}))
    with pytest.raises(msgspec.DecodeError):
        catalogue.to_json(msgspec.msgpack.encode(5))


def _bytes_fields(tp: msgspec.inspect.Type, seen: set[type]) -> list[str]:
    if isinstance(tp, msgspec.inspect.BytesType | msgspec.inspect.ByteArrayType | msgspec.inspect.MemoryViewType):
        return ["<bytes>"]
    if isinstance(tp, msgspec.inspect.StructType):
        if tp.cls in seen:
            return []
        seen.add(tp.cls)
        return [f"{tp.cls.__name__}.{f.name}" for f in tp.fields for _ in _bytes_fields(f.type, seen)]
    if isinstance(tp, msgspec.inspect.UnionType):
        return [hit for t in tp.types for hit in _bytes_fields(t, seen)]
    return [hit for attr in ("item_type", "key_type", "value_type") if hasattr(tp, attr)
            for hit in _bytes_fields(getattr(tp, attr), seen)]


def test_no_catalogue_field_is_bytes_so_binary_in_a_payload_is_always_an_id():
    # to_json turns every 16-byte binary value into an id; a bytes field would break that.
    assert _bytes_fields(msgspec.inspect.type_info(catalogue.AnyEvent), set()) == []

    class WithBlob(msgspec.Struct):
        blobs: dict[str, list[bytes]]

    assert _bytes_fields(msgspec.inspect.type_info(WithBlob), set()) == ["WithBlob.blobs"]
