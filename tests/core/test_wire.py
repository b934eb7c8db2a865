"""The ZeroMQ wire on real loopback sockets: round trips, topics, loss accounting."""

import time
from collections.abc import Iterator

import msgspec
import pytest

from tapereader.core.codec import to_msgpack
from tapereader.core.wire import (
    WireError,
    WireHeader,
    WirePublisher,
    WireSubscriber,
    decode,
    encode,
    topic_for,
)

from .samples import sample_events
from .store_testcase import signals


@pytest.fixture
def publisher() -> Iterator[WirePublisher]:
    pub = WirePublisher("tcp://127.0.0.1:*", name="test-pub")
    yield pub
    pub.close()


def connected(pub: WirePublisher, topics: tuple[str, ...] = ("",), **kw: int) -> WireSubscriber:
    """A subscriber whose subscription has reached the publisher (slow-joiner safe)."""
    sub = WireSubscriber(pub.endpoint, topics, **kw)
    time.sleep(0.2)
    return sub


def test_every_event_type_round_trips_through_the_frames() -> None:
    for seq, event in enumerate(sample_events(), start=1):
        message = decode(encode(event, topic_for(event), "p", seq))
        assert message.event == event and message.header.seq == seq
        assert message.topic == topic_for(event)


def test_topics_name_the_event_type_and_instrument() -> None:
    events = sample_events()
    assert topic_for(events[0]) == "SignalGenerated/BTCUSDT-PERP.BINANCE"
    assert topic_for(events[12]).startswith("TradeMonitorAlert/")


def test_publish_and_receive_on_loopback(publisher: WirePublisher) -> None:
    sub = connected(publisher)
    sent = signals(500)
    for event in sent:
        publisher.publish(event)
    got = [m.event for m in sub.messages(timeout_ms=500)]
    sub.close()
    assert got == sent
    assert sub.stats.received == 500 and sub.stats.lost == 0


def test_prefix_subscription_filters_and_does_not_count_filtered_topics_as_lost(
    publisher: WirePublisher,
) -> None:
    sub = connected(publisher, ("SignalGenerated/ETH",))
    btc = signals(50)
    eth = signals(50, instrument_id="ETHUSDT-PERP.BINANCE")
    for a, b in zip(btc, eth, strict=True):
        publisher.publish(a)
        publisher.publish(b)
    got = [m.event for m in sub.messages(timeout_ms=500)]
    sub.close()
    assert got == eth and sub.stats.lost == 0


def test_a_slow_subscriber_never_blocks_the_publisher_and_sees_its_losses() -> None:
    publisher = WirePublisher("tcp://127.0.0.1:*", name="small-hwm", sndhwm=100)
    slow = connected(publisher, rcvhwm=10)
    events = signals(50_000)
    started = time.perf_counter()
    for event in events:
        publisher.publish(event)
    publish_s = time.perf_counter() - started
    time.sleep(0.3)
    received = list(slow.messages(timeout_ms=300))
    slow.close()
    publisher.close()
    assert len(received) < len(events), "small HWMs and kernel buffers cannot hold 50,000"
    assert slow.stats.lost > 0
    # Every message is either received or accounted as lost, up to the last one seen.
    assert slow.stats.received + slow.stats.lost == received[-1].header.seq
    assert publish_s < 10  # never waited on the subscriber


def test_garbage_frames_are_counted_and_skipped(publisher: WirePublisher) -> None:
    sub = connected(publisher)
    # Only one socket can bind the endpoint: send the garbage through the publisher's own.
    publisher._socket.send_multipart([b"SignalGenerated/X", b"\xc1", b"nope"])
    publisher.publish(signals(1)[0])
    got = list(sub.messages(timeout_ms=300))
    sub.close()
    assert len(got) == 1 and sub.stats.garbage == 1


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([b"t", b"h"], "expected 3 frames"),
        ([b"\xff", msgspec.msgpack.encode(WireHeader(1, "p", 1, 0)), b""], "bad topic"),
        ([b"t", msgspec.msgpack.encode(WireHeader(9, "p", 1, 0)), b""], "wire version 9"),
        ([b"t", msgspec.msgpack.encode(WireHeader(1, "p", 7, 0)), b"\x81"], "seq 7"),
    ],
)
def test_bad_frames_name_the_problem(frames: list[bytes], message: str) -> None:
    with pytest.raises(WireError, match=message):
        decode(frames)


def test_the_event_frame_is_the_stored_bytes() -> None:
    event = signals(1)[0]
    assert encode(event, topic_for(event), "p", 1)[2] == to_msgpack(event)


def test_the_subscribe_command_prints_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    import threading

    from tapereader.cli import main

    publisher = WirePublisher("tcp://127.0.0.1:*", name="cli-pub")
    sent = signals(5)

    def publish_later() -> None:
        time.sleep(0.3)  # after the subscriber has joined
        for event in sent:
            publisher.publish(event)

    threading.Thread(target=publish_later).start()
    argv = [
        "subscribe",
        "--endpoint",
        publisher.endpoint,
        "--topic",
        "SignalGenerated/",
        "--count",
        "5",
        "--idle-timeout",
        "5",
    ]
    assert main(argv) == 0
    publisher.close()
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 5 and lines[0].startswith("cli-pub#1  SignalGenerated/BTCUSDT")
    assert "received 5, lost 0, garbage 0" in captured.err
