"""Bytes for domain events: msgpack for storage and the wire, JSON for people and tools.

Both formats round-trip every event exactly. Decoding validates against the event's
schema (types and constraints) and raises :class:`EventDecodeError` naming the
problem, so a corrupt or foreign record never enters the system as a loose dict.
"""

import msgspec

from tapereader.core.events import AnyEvent, DomainEvent


class EventDecodeError(ValueError):
    """Bytes that are not a valid domain event of any known type."""


_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(AnyEvent)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(AnyEvent)


def to_msgpack(event: DomainEvent) -> bytes:
    """Encode one event as msgpack."""
    return _msgpack_encoder.encode(event)


def from_msgpack(data: bytes) -> DomainEvent:
    """Decode one msgpack-encoded event of any known type."""
    try:
        return _msgpack_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"not a valid domain event (msgpack): {exc}") from exc


def to_json(event: DomainEvent) -> bytes:
    """Encode one event as JSON."""
    return _json_encoder.encode(event)


def from_json(data: bytes | str) -> DomainEvent:
    """Decode one JSON-encoded event of any known type."""
    try:
        return _json_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"not a valid domain event (json): {exc}") from exc
