"""The ZeroMQ wire: domain events for subscribers in any language.

A message is three frames (see ``docs/WIRE.md``):

1. topic, UTF-8: ``<EventType>/<key>``, for example ``SignalGenerated/BTCUSDT-PERP.BINANCE``
   (the key is the instrument id, or the stream key for events without one);
   subscribers filter by prefix;
2. header, msgpack array ``[wire_version, publisher, seq, ts_publish_ns]``; ``seq`` counts
   from 1 per publisher and topic, so a subscriber sees exactly how many messages of the
   topics it follows were lost, whatever other topics it filtered out;
3. the event, msgpack map with its ``type`` tag, the same bytes the event store keeps.

Publishing never blocks: a PUB socket drops what a slow subscriber cannot take at its
high-water mark, and the sequence numbers make every drop visible on the subscriber side.
"""

import time
from collections.abc import Iterator, Sequence

import msgspec
import zmq

from tapereader.core.codec import EventDecodeError, from_msgpack, to_msgpack
from tapereader.core.events import DomainEvent

WIRE_VERSION = 1


class WireError(ValueError):
    """A frame sequence that is not a tapereader wire message."""


class WireHeader(msgspec.Struct, frozen=True, array_like=True):
    """The second frame."""

    version: int
    publisher: str
    seq: int
    ts_publish_ns: int


class WireMessage(msgspec.Struct, frozen=True):
    """One received message."""

    topic: str
    header: WireHeader
    event: DomainEvent


class SubscriberStats(msgspec.Struct):
    """What a subscriber received, lost (sequence gaps) and could not decode."""

    received: int = 0
    lost: int = 0
    garbage: int = 0


_header_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(WireHeader)


def topic_for(event: DomainEvent) -> str:
    """``<EventType>/<key>``: the instrument id when the event has one."""
    key = getattr(event, "instrument_id", None) or event.stream_key()
    return f"{type(event).__name__}/{key}"


def encode(event: DomainEvent, topic: str, publisher: str, seq: int) -> list[bytes]:
    """The three frames of one message."""
    header = WireHeader(WIRE_VERSION, publisher, seq, time.time_ns())
    return [topic.encode(), _header_encoder.encode(header), to_msgpack(event)]


def decode(frames: Sequence[bytes]) -> WireMessage:
    """Validate and decode three frames; raises :class:`WireError` naming the problem."""
    if len(frames) != 3:
        raise WireError(f"expected 3 frames, got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode()
        header = _header_decoder.decode(frames[1])
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise WireError(f"bad topic or header frame: {exc}") from exc
    if header.version != WIRE_VERSION:
        raise WireError(f"wire version {header.version}, this reader knows {WIRE_VERSION}")
    try:
        event = from_msgpack(frames[2])
    except EventDecodeError as exc:
        raise WireError(f"topic {topic}, seq {header.seq}: {exc}") from exc
    return WireMessage(topic, header, event)


class WirePublisher:
    """A PUB socket that sends events without ever blocking the caller."""

    def __init__(
        self,
        endpoint: str,
        *,
        name: str,
        sndhwm: int = 100_000,
        context: zmq.Context | None = None,
    ) -> None:
        self.name = name
        self._socket = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._seq: dict[str, int] = {}
        self.published = 0
        self.not_sent = 0

    def publish(self, event: DomainEvent) -> None:
        """Send one event; counted in ``not_sent`` if the socket refused it."""
        topic = topic_for(event)
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        self.published += 1
        try:
            self._socket.send_multipart(encode(event, topic, self.name, seq), flags=zmq.NOBLOCK)
        except zmq.Again:
            self.not_sent += 1

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()


class WireSubscriber:
    """A SUB socket that yields decoded events and counts what it lost."""

    def __init__(
        self,
        endpoint: str,
        topics: Sequence[str] = ("",),
        *,
        rcvhwm: int = 100_000,
        context: zmq.Context | None = None,
    ) -> None:
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        for topic in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._socket.connect(endpoint)
        self._last_seq: dict[tuple[str, str], int] = {}
        self.stats = SubscriberStats()

    def receive(self, timeout_ms: int | None = None) -> WireMessage | None:
        """The next message, or None after ``timeout_ms``; raises :class:`WireError`."""
        if timeout_ms is not None and not self._socket.poll(timeout_ms):
            return None
        frames = self._socket.recv_multipart(copy=True)
        try:
            message = decode(frames)
        except WireError:
            self.stats.garbage += 1
            raise
        self._count(message.topic, message.header)
        return message

    def messages(self, timeout_ms: int = 1000) -> Iterator[WireMessage]:
        """Messages until none arrives for ``timeout_ms``; garbage is counted and skipped."""
        while True:
            try:
                message = self.receive(timeout_ms)
            except WireError:
                continue
            if message is None:
                return
            yield message

    def _count(self, topic: str, header: WireHeader) -> None:
        self.stats.received += 1
        key = (header.publisher, topic)
        last = self._last_seq.get(key)
        if last is not None and header.seq > last + 1:
            self.stats.lost += header.seq - last - 1
        self._last_seq[key] = header.seq

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
