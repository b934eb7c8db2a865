"""The tick-feed wire: trades, quotes and book deltas on ZeroMQ, for publishers in any language.

A message is two ZeroMQ frames (see ``docs/FEED.md``):

1. topic, UTF-8: ``<instrument_id>/<type>``, for example ``BTCUSDT-PERP.BINANCE/trade``;
   a subscriber takes every kind of one instrument with the prefix ``<instrument_id>/``;
2. the message, a msgpack map tagged by its ``type`` field (``trade``, ``quote``, ``book``).

Prices and sizes are decimal strings (``"64123.10"``): exact in every language without
agreeing on a scale first, and checked here against a strict pattern so a receiver never
sees a float, an exponent or an empty string. Timestamps are integer nanoseconds since the
Unix epoch. Each message carries the wire version ``v``; a receiver rejects a version it
does not know, and ignores map keys it does not know (minor additions need no new version).
"""

from typing import Annotated, Literal

import msgspec

WIRE_VERSION = 1

DecimalText = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]+(\.[0-9]+)?$", max_length=40)]
SizeText = Annotated[str, msgspec.Meta(pattern=r"^[0-9]+(\.[0-9]+)?$", max_length=40)]
Nanos = Annotated[int, msgspec.Meta(ge=0)]
InstrumentIdText = Annotated[str, msgspec.Meta(min_length=3, max_length=128)]


class TickWireError(ValueError):
    """Frames that are not a tick-feed message of a version this code understands."""


class _Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    v: int = WIRE_VERSION
    instrument_id: InstrumentIdText
    ts_event: Nanos
    ts_init: Nanos
    # When the publisher sent the message (wall clock, 0: not stamped): a node on the same
    # clock measures the feed's transit and publish-to-order latency from it.
    ts_sent: Nanos = 0


class Trade(_Message, tag="trade", kw_only=True):
    """One trade; ``aggressor`` is the side that took liquidity."""

    price: DecimalText
    size: SizeText
    aggressor: Literal["buyer", "seller", "none"] = "none"
    trade_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]


class Quote(_Message, tag="quote", kw_only=True):
    """Best bid and ask with their sizes."""

    bid: DecimalText
    ask: DecimalText
    bid_size: SizeText
    ask_size: SizeText


class BookDelta(msgspec.Struct, frozen=True, kw_only=True):
    """One price-level change; ``clear`` empties the book (its other fields are ignored)."""

    action: Literal["add", "update", "delete", "clear"]
    side: Literal["bid", "ask"] = "bid"
    price: DecimalText = "0"
    size: SizeText = "0"


class Book(_Message, tag="book", kw_only=True):
    """The price-level changes of one venue update, applied together.

    ``snapshot`` marks a batch that rebuilds the book (it usually starts with ``clear``);
    ``sequence`` is the venue's update id when it has one, else 0.
    """

    deltas: Annotated[list[BookDelta], msgspec.Meta(min_length=1)]
    snapshot: bool = False
    sequence: Nanos = 0


TickMessage = Trade | Quote | Book

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(TickMessage)


def topic_for(message: TickMessage) -> str:
    """``<instrument_id>/<type>``."""
    return f"{message.instrument_id}/{message.__struct_config__.tag}"


def instrument_prefix(instrument_id: str) -> str:
    """The subscription prefix that selects every message of one instrument."""
    return f"{instrument_id}/"


def encode(message: TickMessage) -> list[bytes]:
    """The two frames of one message."""
    return [topic_for(message).encode(), _encoder.encode(message)]


def decode(frames: list[bytes]) -> TickMessage:
    """Validate and decode two frames; raises :class:`TickWireError` naming the problem."""
    if len(frames) != 2:
        raise TickWireError(f"expected 2 frames (topic, message), got {len(frames)}")
    try:
        message = _decoder.decode(frames[1])
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise TickWireError(f"bad message: {exc}") from None
    if message.v != WIRE_VERSION:
        raise TickWireError(f"wire version {message.v} not supported (this is {WIRE_VERSION})")
    topic = bytes(frames[0])
    expected = topic_for(message)
    if topic != expected.encode():
        raise TickWireError(f"topic {topic[:80]!r} does not match the message ({expected!r})")
    return message
