"""The ZeroMQ wire on real loopback sockets: round trips, topics, loss accounting."""

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import msgspec
import pytest
import zmq

from tapereader.core.codec import to_msgpack
from tapereader.core.wire import (
    StreamStats,
    SubscriberStats,
    WireError,
    WireHeader,
    WireMessage,
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


def joined(pub: WirePublisher, **kw: int) -> WireSubscriber:
    """A subscriber to everything, proved connected by a warm-up topic it has received.

    Warm-up events go to their own topic, so the topics of the test start at ``seq`` 1
    with the subscriber already there: every later message is received or counted lost.
    """
    sub = WireSubscriber(pub.endpoint, **kw)
    warm_up = signals(1, instrument_id="WARMUP")[0]
    deadline = time.monotonic() + 10
    while sub.receive(timeout_ms=20) is None:
        assert time.monotonic() < deadline, "the subscriber never joined"
        pub.publish(warm_up)
    list(sub.messages(timeout_ms=100))
    return sub


def test_a_slow_subscriber_costs_messages_never_publisher_time() -> None:
    n = 50_000
    publisher = WirePublisher("tcp://127.0.0.1:*", name="flood", sndhwm=100)
    slow = joined(publisher, rcvhwm=100)
    sent = signals(n + 1)  # the last one is sent once the subscriber has drained
    topic = topic_for(sent[0])
    flooding, drained = threading.Event(), threading.Event()
    flooding.set()
    received: list[WireMessage] = []

    def read_slowly() -> None:  # 1 ms per message during the flood: about 1,000 msg/s
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message = slow.receive(timeout_ms=100)
            if message is None:
                if not flooding.is_set():
                    drained.set()
                continue
            if message.topic == topic:
                received.append(message)
                if message.header.seq == n + 1:
                    return
            if flooding.is_set():
                time.sleep(0.001)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    started = time.perf_counter()
    for event in sent[:n]:
        publisher.publish(event)
    publish_s = time.perf_counter() - started
    flooding.clear()
    assert drained.wait(60), "the subscriber never drained"
    publisher.publish(sent[n])
    reader.join(60)
    slow.close()
    publisher.close()

    # Blocked by a 1,000 msg/s reader, 50,000 messages would take tens of seconds.
    assert publish_s < 10, f"{publish_s:.1f} s to publish: the publisher waited"
    assert publisher.not_sent == 0  # a PUB socket drops; it never refuses
    assert publisher.sequences[topic] == n + 1
    # What arrived is what was sent, in order, with its own sequence number.
    assert received[-1].header.seq == n + 1, "the final message did not arrive"
    seqs = [m.header.seq for m in received]
    assert seqs == sorted(set(seqs))
    assert all(m.event == sent[m.header.seq - 1] for m in received)
    # The loss counted from the gaps is exactly what did not arrive.
    stream = slow.streams[("flood", topic)]
    assert (stream.first_seq, stream.last_seq, stream.garbage) == (1, n + 1, 0)
    assert stream.received == len(received)
    assert stream.lost == n + 1 - len(received) > 0
    assert stream.received + stream.lost == n + 1
    assert slow.stats.lost == stream.lost  # the warm-up topic lost nothing


def test_publish_sends_the_frames_of_encode(publisher: WirePublisher) -> None:
    raw = zmq.Context.instance().socket(zmq.SUB)
    raw.setsockopt(zmq.SUBSCRIBE, b"SignalGenerated/BTC")
    raw.connect(publisher.endpoint)
    time.sleep(0.2)
    event = signals(1)[0]
    before = time.time_ns()
    publisher.publish(event)
    assert raw.poll(2000)
    frames = raw.recv_multipart()
    raw.close()
    reference = encode(event, topic_for(event), "test-pub", 1)
    assert frames[0] == reference[0] and frames[2] == reference[2]
    header = msgspec.msgpack.decode(frames[1])
    assert header[:3] == [1, "test-pub", 1] and before <= header[3] <= time.time_ns()


def test_garbage_frames_are_counted_and_skipped(publisher: WirePublisher) -> None:
    sub = connected(publisher)
    # Only one socket can bind the endpoint: send the garbage through the publisher's own.
    publisher._socket.send_multipart([b"SignalGenerated/X", b"\xc1", b"nope"])
    publisher.publish(signals(1)[0])
    got = list(sub.messages(timeout_ms=300))
    sub.close()
    assert len(got) == 1 and sub.stats.garbage == 1


def test_messages_of_other_frame_counts_are_garbage_and_skipped(
    publisher: WirePublisher,
) -> None:
    sub = connected(publisher)
    event = signals(1)[0]
    good = encode(event, topic_for(event), "raw", 1)
    publisher._socket.send_multipart([*good, b"a fourth frame"])
    publisher._socket.send_multipart(encode(event, topic_for(event), "raw", 2))
    publisher._socket.send_multipart(good[:2])  # two frames, and nothing after them
    got = list(sub.messages(timeout_ms=300))
    publisher._socket.send_multipart(good[:1])  # one frame, then a good message
    publisher._socket.send_multipart(encode(event, topic_for(event), "raw", 3))
    publisher._socket.send_multipart(encode(event, topic_for(event), "raw", 4))
    time.sleep(0.3)  # all three queued at the subscriber before it reads the first
    got += list(sub.messages(timeout_ms=300))
    sub.close()
    # The good message after the one-frame message went down with it: a gap, not silence.
    assert [m.header.seq for m in got] == [2, 4]
    assert sub.stats == SubscriberStats(received=2, lost=1, garbage=3)


def test_gaps_garbage_and_restarts_are_accounted_per_stream(publisher: WirePublisher) -> None:
    sub = connected(publisher)
    event = signals(1)[0]
    topic = topic_for(event)
    # Sent through the publisher's socket (only one socket can bind the endpoint) under a
    # publisher name of their own, so the sequence numbers are the test's to choose.
    for seq in (1, 3, 4, 7, 2, 3):  # 2 and 5-6 lost; then back to 2: a restart
        publisher._socket.send_multipart(encode(event, topic, "raw", seq))
    junk_body = [*encode(event, topic, "raw", 8)[:2], b"\x81"]  # 4-7 lost, 8 unreadable
    publisher._socket.send_multipart(junk_body)
    publisher._socket.send_multipart(encode(event, topic, "raw", 10))  # 9 lost
    got = list(sub.messages(timeout_ms=300))
    sub.close()
    assert len(got) == 7
    stream = sub.streams[("raw", topic)]
    assert stream == StreamStats(
        first_seq=2, last_seq=10, received=3, lost=5, garbage=1, restarts=1
    )
    assert stream.received + stream.lost + stream.garbage == 10 - 2 + 1
    assert sub.stats == SubscriberStats(received=7, lost=3 + 5, garbage=1)


def test_the_client_needs_neither_nautilus_nor_the_engine() -> None:
    code = (
        "import sys, tapereader.core.wire\n"
        "print([m for m in sys.modules if m.startswith(('nautilus_trader', 'tapereader.actors'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_subscribe_command_reports_losses_as_it_finds_them(
    publisher: WirePublisher, capsys: pytest.CaptureFixture[str]
) -> None:
    from tapereader.cli import main

    event = signals(1)[0]

    def send_later() -> None:
        time.sleep(0.3)  # after the subscriber has joined
        for seq in (1, 2, 5, 6):
            publisher._socket.send_multipart(encode(event, topic_for(event), "gappy", seq))

    sender = threading.Thread(target=send_later)
    sender.start()
    argv = ["subscribe", "--endpoint", publisher.endpoint, "--count", "4", "--idle-timeout", "5"]
    assert main(argv) == 0
    sender.join()
    err = capsys.readouterr().err
    assert f"lost 2 before gappy#5  {topic_for(event)}" in err
    assert "received 4, lost 2, garbage 0" in err


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
