"""A slow ZeroMQ subscriber costs it messages, never the engine time, in a real backtest."""

import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tapereader.actors import publisher as publisher_module
from tapereader.actors.publisher import PublisherActor, PublisherActorConfig
from tapereader.core.events import DomainEvent
from tapereader.core.wire import WireMessage, WirePublisher, WireSubscriber, topic_for

from ..features.backtest import BTC_FEED, FeedData, ingest_feed, load_feed, run_engine
from .test_journal_and_publisher import Emitter, EmitterConfig, free_port


@pytest.fixture(scope="module")
def feed(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FeedData:
    return load_feed(ingest_feed(market_data / BTC_FEED, tmp_path_factory.mktemp("cat")))


CALLS_NS: list[int] = []  # how long each publish() took, for the running test


class TimedPublisher(WirePublisher):
    """The real publisher, timing every call the engine makes to it."""

    def publish(self, event: DomainEvent) -> None:
        started = time.perf_counter_ns()
        super().publish(event)
        CALLS_NS.append(time.perf_counter_ns() - started)


def test_a_slow_subscriber_loses_messages_and_the_engine_never_waits(
    feed: FeedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "WirePublisher", TimedPublisher)
    CALLS_NS.clear()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    slow = WireSubscriber(endpoint, rcvhwm=100)
    running = threading.Event()
    running.set()
    received: list[WireMessage] = []

    def read_slowly() -> None:  # 5 ms per message while the engine runs: 200 msg/s
        while True:
            message = slow.receive(timeout_ms=500)
            if message is None:
                if not running.is_set():
                    return  # drained
                continue
            received.append(message)
            if running.is_set():
                time.sleep(0.005)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    emitter = Emitter(EmitterConfig(instrument_id=str(feed.instrument.id)))
    actor = PublisherActor(PublisherActorConfig(endpoint=endpoint, name="bt", sndhwm=100))
    try:
        run_engine(feed, [emitter, actor], use_book=False)
    finally:
        running.clear()
        reader.join(120)
        slow.close()

    # The engine's side: everything handed over, nothing refused, the per-topic counts that
    # the actor reports at stop are the true ones, and no call waited on the subscriber.
    sent = Counter(topic_for(e) for e in emitter.emitted)
    assert actor.published == len(emitter.emitted) == len(CALLS_NS)
    assert actor.not_sent == 0
    assert actor.sequences == dict(sent)
    assert f"published {len(emitter.emitted)} events on 2 topics, 0 refused" in actor.report()
    publish_s = sum(CALLS_NS) / 1e9
    # Waiting on a 200 msg/s reader would take over a minute for ~22,000 messages.
    assert publish_s < 15, f"{publish_s:.1f} s inside publish: the engine waited"
    assert statistics.median(CALLS_NS) < 200_000

    # The subscriber's side: what arrived is what was sent, under its own sequence numbers,
    # and the gaps count exactly what did not arrive between its first and last message.
    by_topic: dict[str, list[DomainEvent]] = {}
    for event in emitter.emitted:
        by_topic.setdefault(topic_for(event), []).append(event)
    assert all(m.event == by_topic[m.topic][m.header.seq - 1] for m in received)
    assert slow.stats.received == len(received)
    missed_after_joining = 0
    for (publisher, topic), stream in slow.streams.items():
        assert publisher == "bt" and stream.restarts == 0 and stream.garbage == 0
        seqs = [m.header.seq for m in received if m.topic == topic]
        assert seqs == sorted(set(seqs)) and stream.received == len(seqs)
        span = stream.last_seq - stream.first_seq + 1
        assert stream.lost == span - len(seqs)
        # Before the subscription reached the socket, or after the last message it saw
        # (dropped at the high-water mark or at stop), messages are not gaps; together with
        # the gaps they add up to what the actor reports it sent on the topic.
        head, tail = stream.first_seq - 1, actor.sequences[topic] - stream.last_seq
        assert head + stream.received + stream.lost + tail == sent[topic]
        missed_after_joining += stream.lost + tail
    # The slow subscriber paid for its slowness: once joined, it missed messages, either as
    # gaps or, when the engine outran every buffer and finished first, all after its last
    # one (on a quiet machine the run can end before the socket buffers overflow mid-stream).
    assert missed_after_joining > 0
