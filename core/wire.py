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
high-water mark, without telling the publisher, and the sequence numbers make every drop
visible on the subscriber side (:class:`WireSubscriber` counts them per stream).
"""

import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

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
    """What a subscriber received, lost (sequence gaps) and could not decode, in total."""

    received: int = 0
    lost: int = 0
    garbage: int = 0


class StreamStats(msgspec.Struct):
    """One (publisher, topic) stream as a subscriber saw it.

    ``received + garbage + lost == last_seq - first_seq + 1``: every sequence number from
    the first seen to the last seen is accounted for. Messages after ``last_seq`` are
    unknown until a later one arrives (compare with the publisher's last ``seq``).
    """

    first_seq: int
    last_seq: int
    received: int = 0
    lost: int = 0
    garbage: int = 0
    restarts: int = 0


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


def _decode_head(frames: Sequence[bytes]) -> tuple[str, WireHeader]:
    if len(frames) != 3:
        raise WireError(f"expected 3 frames, got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode()
        header = _header_decoder.decode(frames[1])
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise WireError(f"bad topic or header frame: {exc}") from exc
    if header.version != WIRE_VERSION:
        raise WireError(f"wire version {header.version}, this reader knows {WIRE_VERSION}")
    return topic, header


def _decode_event(topic: str, header: WireHeader, data: bytes) -> DomainEvent:
    try:
        return from_msgpack(data)
    except EventDecodeError as exc:
        raise WireError(f"topic {topic}, seq {header.seq}: {exc}") from exc


def decode(frames: Sequence[bytes]) -> WireMessage:
    """Validate and decode three frames; raises :class:`WireError` naming the problem."""
    topic, header = _decode_head(frames)
    return WireMessage(topic, header, _decode_event(topic, header, frames[2]))


_MORE = zmq.NOBLOCK | zmq.SNDMORE


class WirePublisher:
    """A PUB socket that sends events without ever blocking the caller.

    ``published`` counts every event handed to :meth:`publish`; ``not_sent`` those the
    socket refused (``EAGAIN`` under ``NOBLOCK``). A PUB socket never refuses: at a
    subscriber's high-water mark it drops that subscriber's copy silently, so per-subscriber
    loss is only known to the subscriber (sequence gaps); ``sequences`` gives the last
    ``seq`` of every topic, to compare with what a subscriber saw last.
    """

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
        self._send = self._socket.send
        self._seq: dict[str, int] = {}
        self._topic_bytes: dict[str, bytes] = {}
        self.published = 0
        self.not_sent = 0

    @property
    def sequences(self) -> dict[str, int]:
        """The last ``seq`` published on each topic (= messages published on it)."""
        return dict(self._seq)

    def publish(self, event: DomainEvent) -> None:
        """Send one event; counted in ``not_sent`` if the socket refused it."""
        # The frames of encode(), sent one by one: send_multipart costs twice as much.
        topic = topic_for(event)
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        topic_bytes = self._topic_bytes.get(topic)
        if topic_bytes is None:
            topic_bytes = self._topic_bytes[topic] = topic.encode()
        header = _header_encoder.encode(WireHeader(WIRE_VERSION, self.name, seq, time.time_ns()))
        body = to_msgpack(event)
        self.published += 1
        try:
            # A multipart message is accepted or refused whole, at its first frame.
            self._send(topic_bytes, _MORE)
            self._send(header, _MORE)
            self._send(body, zmq.NOBLOCK)
        except zmq.Again:
            self.not_sent += 1

    def close(self) -> None:
        """Close the socket (messages still queued for subscribers are dropped)."""
        self._socket.close()


class WireSubscriber:
    """A SUB socket that yields decoded events and counts what it lost.

    ``stats`` holds the totals; ``streams`` the same per (publisher, topic), where the
    sequence numbers live. A gap in ``seq`` is counted in ``lost`` when the next message of
    that stream arrives. The first message seen starts a stream (joining late is not
    loss); a ``seq`` that goes back (the publisher restarted) starts it again.
    """

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
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self.streams: dict[tuple[str, str], StreamStats] = {}
        self.stats = SubscriberStats()

    def receive(self, timeout_ms: int | None = None) -> WireMessage | None:
        """The next message, or None after ``timeout_ms``; raises :class:`WireError`."""
        if timeout_ms is not None and not self._poller.poll(timeout_ms):
            return None
        frames = self._recv_frames()
        try:
            topic, header = _decode_head(frames)
        except WireError:
            self.stats.garbage += 1
            raise
        try:
            event = _decode_event(topic, header, frames[2])
        except WireError:
            # The header is sound: its seq is accounted for, as garbage rather than loss.
            self.stats.garbage += 1
            self._count(topic, header).garbage += 1
            raise
        self.stats.received += 1
        self._count(topic, header).received += 1
        return WireMessage(topic, header, event)

    def _recv_frames(self) -> list[bytes]:
        # Three reads and one RCVMORE check: recv_multipart (a check per frame) and
        # Socket.poll (a new poller per call) would double the cost of a message. ZeroMQ
        # delivers a message's frames together, so the other two are already there.
        recv = self._socket.recv
        frames = [recv()]
        try:
            frames.append(recv(zmq.NOBLOCK))
            frames.append(recv(zmq.NOBLOCK))
        except zmq.Again:
            self.stats.garbage += 1
            raise WireError(f"expected 3 frames, got {len(frames)}") from None
        if self._socket.get(zmq.RCVMORE):
            # More than three frames, or a short message followed by another: skip to the
            # end of the message (a good message swallowed here shows up as a seq gap).
            while self._socket.get(zmq.RCVMORE):
                frames.append(recv())
            self.stats.garbage += 1
            raise WireError(f"expected 3 frames, got {len(frames)} or a short message")
        return frames

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

    def _count(self, topic: str, header: WireHeader) -> StreamStats:
        key = (header.publisher, topic)
        seq = header.seq
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = StreamStats(first_seq=seq, last_seq=seq)
        elif seq <= stream.last_seq:
            stream = self.streams[key] = StreamStats(seq, seq, restarts=stream.restarts + 1)
        else:
            gap = seq - stream.last_seq - 1
            stream.lost += gap
            self.stats.lost += gap
            stream.last_seq = seq
        return stream

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
