"""JournalActor and PublisherActor in a real BacktestEngine over the real BTCUSDT feed."""

import socket
import time
from pathlib import Path

import pytest
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import TradeTick

from tapereader.actors.bus import event_topic, publish_event
from tapereader.actors.journal import JournalActor, JournalActorConfig
from tapereader.actors.publisher import PublisherActor, PublisherActorConfig
from tapereader.core.events import DecisionMade, SignalGenerated, Source
from tapereader.core.store import EventStore
from tapereader.core.wire import WireSubscriber

from ..features.backtest import BTC_FEED, FeedData, ingest_feed, load_feed, run_engine


class EmitterConfig(ActorConfig, frozen=True):
    instrument_id: str


class Emitter(Actor):
    """Emits a signal per trade and a decision per 20th, as the real chain will."""

    def __init__(self, config: EmitterConfig) -> None:
        super().__init__(config)
        self.emitted: list = []
        self.trades = 0
        self._source = Source(component="Emitter", run_id="test")

    def on_start(self) -> None:
        from nautilus_trader.model.identifiers import InstrumentId

        self.subscribe_trade_ticks(InstrumentId.from_str(self.config.instrument_id))

    def on_trade_tick(self, tick: TradeTick) -> None:
        signal = SignalGenerated(
            ts_event=tick.ts_event,
            ts_init=tick.ts_init,
            source=self._source,
            instrument_id=str(tick.instrument_id),
            model_version="m",
            feature_spec_hash="h",
            horizon="50 events",
            p_up=0.5,
            p_down=0.3,
            p_flat=0.2,
            confidence=0.6,
        )
        events = [signal]
        self.trades += 1
        if self.trades % 20 == 1:
            events.append(
                DecisionMade(
                    ts_event=tick.ts_event,
                    ts_init=tick.ts_init,
                    source=self._source,
                    causation_id=signal.event_id,
                    instrument_id=str(tick.instrument_id),
                    action="HOLD",
                    target_position=0.0,
                    reference_price=tick.price.as_double(),
                )
            )
        for event in events:
            publish_event(self, event)
            self.emitted.append(event)


@pytest.fixture(scope="module")
def feed(market_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FeedData:
    return load_feed(ingest_feed(market_data / BTC_FEED, tmp_path_factory.mktemp("cat")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_every_emitted_event_is_journaled_in_order(
    feed: FeedData, tmp_path: Path, writer: str
) -> None:
    store = tmp_path / "events.db"
    emitter = Emitter(EmitterConfig(instrument_id=str(feed.instrument.id)))
    journal = JournalActor(JournalActorConfig(store=str(store), max_batch=500, writer=writer))
    run_engine(feed, [emitter, journal], use_book=False)
    assert len(emitter.emitted) == 21_313 + 1_066  # a decision for trades 1, 21, ... 21,301
    with EventStore.open(store) as s:
        assert [r.event for r in s.read()] == emitter.emitted
    assert journal.unwritten == [] and journal.journaled == len(emitter.emitted)


def test_a_failing_store_keeps_every_event_for_the_caller(feed: FeedData, tmp_path: Path) -> None:
    # A store on a path that becomes a directory after start: every append fails.
    store = tmp_path / "events.db"
    emitter = Emitter(EmitterConfig(instrument_id=str(feed.instrument.id)))
    journal = JournalActor(
        JournalActorConfig(store=str(store), max_batch=100, max_delay_ms=0, writer="thread")
    )

    class Saboteur(Actor):
        def on_start(self) -> None:
            journal._store._recorder.datastore.close()  # type: ignore[union-attr]
            journal._store._recorder.datastore.pool.db_name = str(tmp_path)  # a directory

    run_engine(feed, [emitter, journal, Saboteur()], use_book=False)
    with EventStore.open(store) as s:
        stored = [r.event for r in s.read()]
    assert stored + journal.unwritten == emitter.emitted
    assert journal.unwritten, "the sabotage did not bite: the test proved nothing"


def test_a_writer_process_killed_mid_run_loses_nothing(feed: FeedData, tmp_path: Path) -> None:
    store = tmp_path / "events.db"
    emitter = Emitter(EmitterConfig(instrument_id=str(feed.instrument.id)))
    journal = JournalActor(JournalActorConfig(store=str(store), max_batch=100, max_delay_ms=0))

    class Saboteur(Actor):
        def on_start(self) -> None:
            self.subscribe_trade_ticks(feed.instrument.id)
            self.seen = 0

        def on_trade_tick(self, tick: TradeTick) -> None:
            self.seen += 1
            if self.seen == 10_000:
                journal.flush()  # some stored for sure, then the child dies
                journal._writer._process.kill()  # type: ignore[union-attr]

    run_engine(feed, [emitter, journal, Saboteur(ActorConfig(component_id="S"))], use_book=False)
    with EventStore.open(store) as s:
        stored = [r.event for r in s.read()]
        assert stored == emitter.emitted[: len(stored)] and len(stored) >= 10_000
        # What the journal kept starts at or before the first event not stored (a batch
        # committed just before the kill may be in both): appending it completes the store.
        kept = journal.unwritten
        assert kept and kept == emitter.emitted[len(emitter.emitted) - len(kept) :]
        assert len(emitter.emitted) - len(kept) <= len(stored)
        s.append(kept)
        assert [r.event for r in s.read()] == emitter.emitted


def test_signals_and_decisions_reach_a_zeromq_subscriber(feed: FeedData) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    subscriber = WireSubscriber(endpoint, ("SignalGenerated/", "DecisionMade/"))
    emitter = Emitter(EmitterConfig(instrument_id=str(feed.instrument.id)))
    publisher = PublisherActor(PublisherActorConfig(endpoint=endpoint, name="bt"))
    run_engine(feed, [emitter, publisher], use_book=False)
    time.sleep(0.2)
    got = [m.event for m in subscriber.messages(timeout_ms=500)]
    subscriber.close()
    # The subscription races the start of the run (ZeroMQ's slow joiner), and each topic's
    # subscription reaches the publisher at its own moment: what arrives is a gap-free tail
    # of what was sent, per topic, and most of it.
    assert publisher.published == len(emitter.emitted)
    for kind in (SignalGenerated, DecisionMade):
        sent = [e for e in emitter.emitted if type(e) is kind]
        received = [e for e in got if type(e) is kind]
        assert received and received == sent[-len(received) :]
    assert subscriber.stats.lost == 0 and len(got) > len(emitter.emitted) // 2


def test_topics_carry_category_and_type() -> None:
    event = SignalGenerated(
        ts_event=0,
        ts_init=0,
        source=Source(component="c", run_id="r"),
        instrument_id="X",
        model_version="m",
        feature_spec_hash="h",
        horizon="h",
        p_up=0.1,
        p_down=0.1,
        p_flat=0.8,
        confidence=0.5,
    )
    assert event_topic(event) == "tapereader.events.signals.SignalGenerated"
