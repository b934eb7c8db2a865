"""Domain events: exact round trips, tagged decoding, validation, schema evolution."""

import uuid

import msgspec
import pytest
from hypothesis import given, settings

from tapereader.core import codec
from tapereader.core.events import (
    EVENT_TYPES,
    AnyEvent,
    DomainEvent,
    ScannerBoundariesDetected,
    SignalGenerated,
    Source,
    new_event_id,
    stream_name,
)

from .samples import sample_events
from .strategies import any_event

settings.register_profile("tapereader", max_examples=300, deadline=None)
settings.load_profile("tapereader")


@given(any_event)
def test_msgpack_round_trip_is_exact(event: DomainEvent) -> None:
    assert codec.from_msgpack(codec.to_msgpack(event)) == event


@given(any_event)
def test_json_round_trip_is_exact(event: DomainEvent) -> None:
    decoded = codec.from_json(codec.to_json(event))
    assert decoded == event
    assert type(decoded) is type(event)


def test_every_event_type_is_in_the_union_and_has_a_sample() -> None:
    assert set(AnyEvent.__args__) == set(EVENT_TYPES)
    assert {type(e) for e in sample_events()} == set(EVENT_TYPES)
    tags = [cls.__struct_config__.tag for cls in EVENT_TYPES]
    assert len(set(tags)) == len(tags)


def test_decoding_needs_no_type_beforehand() -> None:
    for event in sample_events():
        data = codec.to_msgpack(event)
        assert type(codec.from_msgpack(data)) is type(event)


def test_every_event_field_is_keyword_only() -> None:
    # msgspec applies kw_only per class: a subclass that forgot it takes positionals.
    for cls in EVENT_TYPES:
        with pytest.raises(TypeError, match="positional"):
            cls("positional")


def test_events_are_immutable() -> None:
    event = sample_events()[0]
    with pytest.raises(AttributeError):
        event.ts_event = 0  # type: ignore[misc]


def test_decoding_validates_constraints() -> None:
    bad = msgspec.structs.replace(sample_events()[0], p_up=1.5)
    with pytest.raises(codec.EventDecodeError, match=r"p_up"):
        codec.from_msgpack(codec.to_msgpack(bad))
    nan = msgspec.structs.replace(sample_events()[0], p_up=float("nan"))
    with pytest.raises(codec.EventDecodeError):
        codec.from_msgpack(codec.to_msgpack(nan))


@pytest.mark.parametrize("data", [b"", b"\x81\xa4type\xa7Unknown", b"not msgpack \xc1"])
def test_garbage_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(codec.EventDecodeError, match="not a valid domain event"):
        codec.from_msgpack(data)


def test_old_event_without_a_new_field_still_decodes() -> None:
    # A v1 writer did not know `provider` (added later with a default) nor `members`.
    v1 = {
        "type": "SignalGenerated",
        "event_id": str(uuid.uuid4()),
        "ts_event": 1,
        "ts_init": 2,
        "source": {"component": "SignalActor", "run_id": "r"},
        "instrument_id": "EUR/USD.OANDA",
        "model_version": "m1",
        "feature_spec_hash": "f",
        "horizon": "50ev",
        "p_up": 0.2,
        "p_down": 0.3,
        "p_flat": 0.5,
        "confidence": 0.4,
        "schema_version": 1,
    }
    event = codec.from_msgpack(msgspec.msgpack.encode(v1))
    assert isinstance(event, SignalGenerated)
    assert event.provider == "CPUExecutionProvider" and event.members == {}
    assert event.schema_version == 1


def test_a_schema_1_boundary_event_decodes_under_schema_2() -> None:
    (sample,) = [e for e in sample_events() if isinstance(e, ScannerBoundariesDetected)]
    v1 = msgspec.to_builtins(sample)
    v1["schema_version"] = 1
    for boundary in v1["scanners"]:
        del boundary["confidence"], boundary["needs_review"]
    event = codec.from_msgpack(msgspec.msgpack.encode(v1))
    assert event.schema_version == 1
    assert event.scanners[0].confidence is None and event.scanners[0].needs_review is False


def test_newer_event_with_unknown_field_still_decodes() -> None:
    event = sample_events()[0]
    data = msgspec.json.decode(codec.to_json(event))
    data["field_from_the_future"] = 42
    assert codec.from_json(msgspec.json.encode(data)) == event


def test_streams_partition_by_category_key_and_utc_day() -> None:
    src = Source(component="c", run_id="r")
    ts = 1723161599_999_999_999  # 2024-08-08 23:59:59.999999999 UTC
    a = SignalGenerated(
        ts_event=ts,
        ts_init=ts,
        source=src,
        instrument_id="BTCUSDT-PERP.BINANCE",
        model_version="m",
        feature_spec_hash="h",
        horizon="h",
        p_up=0.1,
        p_down=0.1,
        p_flat=0.8,
        confidence=0.5,
    )
    b = msgspec.structs.replace(a, ts_event=ts + 1)
    assert a.stream == "signals/BTCUSDT-PERP.BINANCE/2024-08-08"
    assert b.stream == "signals/BTCUSDT-PERP.BINANCE/2024-08-09"
    assert stream_name("x", "k", 0) == "x/k/1970-01-01"


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 for i in ids[:10])
    # The 48-bit millisecond prefix never goes backwards.
    prefixes = [i.int >> 80 for i in ids]
    assert prefixes == sorted(prefixes)
